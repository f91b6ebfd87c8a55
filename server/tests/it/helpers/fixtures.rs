//! The data tests start from: request bodies, images made on the spot, and auctions and
//! items written straight to the database as the catalog would have published them.

use auuction::domain::Role;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;

use super::TestApp;

// ---- request bodies ---------------------------------------------------------------------

/// A calendar JSON with bidding opening `bidding_open_offset_hours` from now (real clock).
pub fn calendar_json(year: i32, bidding_open_offset_hours: i64) -> Value {
    let open = Utc::now() + Duration::hours(bidding_open_offset_hours);
    json!({
        "year": year,
        "name": format!("Auction {year}"),
        "registrationOpenAt": open - Duration::days(14),
        "catalogPublishAt": open - Duration::days(7),
        "biddingOpenAt": open,
        "biddingCloseAt": open + Duration::hours(3),
        "reofferOpenAt": open + Duration::hours(4),
        "reofferCloseAt": open + Duration::days(2),
        "settlementOpenAt": open + Duration::days(3),
    })
}

/// A valid item body: a competitive item in Goods (`cat_3`) opening at 50.00.
pub fn item_body(title: &str) -> Value {
    json!({
        "type": "competitive",
        "title": title,
        "description": "A lovely thing.",
        "categoryId": "cat_3",
        "openingBid": 50,
        "tags": ["handmade"],
    })
}

/// A hosted event body with a full address and the given privacy.
pub fn event_body(privacy: &str) -> Value {
    json!({
        "datetimeStart": "2026-06-12T18:00:00Z",
        "datetimeEnd": "2026-06-12T21:00:00Z",
        "locationLabel": "The Smiths' home",
        "addressLine1": "12 Elm Street",
        "addressLine2": "Apt 3",
        "city": "Knoxville",
        "state": "TN",
        "postalCode": "37919",
        "addressPrivacy": privacy,
        "capacity": 8,
        "accessibilityNotes": "Three steps at the door",
        "ageRestrictions": "Adults only",
        "dietaryNotes": "Vegetarian menu",
        "hostNotes": "Door code 4321",
    })
}

// ---- images (made here: no binary fixtures) ---------------------------------------------

/// A PNG of `w`×`h` pixels.
pub fn png_bytes(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    encode(image::DynamicImage::ImageRgb8(img), image::ImageFormat::Png)
}

/// A JPEG of `w`×`h` red pixels.
pub fn jpeg_bytes(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]));
    encode(
        image::DynamicImage::ImageRgb8(img),
        image::ImageFormat::Jpeg,
    )
}

pub fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

// ---- auctions and items, written directly ---------------------------------------------

impl TestApp {
    /// Creates the current auction directly (bidding opened an hour ago, closes in two);
    /// returns its public id (`a_<n>`).
    pub async fn create_auction(&self) -> String {
        let body = calendar_json(2026, -1);
        let cal: auuction::domain::Calendar = serde_json::from_value(json!({
            "registrationOpenAt": body["registrationOpenAt"],
            "catalogPublishAt": body["catalogPublishAt"],
            "biddingOpenAt": body["biddingOpenAt"],
            "biddingCloseAt": body["biddingCloseAt"],
            "reofferOpenAt": body["reofferOpenAt"],
            "reofferCloseAt": body["reofferCloseAt"],
            "settlementOpenAt": body["settlementOpenAt"],
        }))
        .unwrap();
        let row = auuction::store::auctions::insert(
            &self.db,
            &auuction::store::auctions::AuctionFields {
                year: 2026,
                name: "Auction 2026".into(),
                calendar: cal,
                soft_close_seconds: 120,
                hard_close_at: None,
            },
            auuction::domain::AuctionState::Bidding,
        )
        .await
        .unwrap()
        .unwrap();
        format!("a_{}", row.id)
    }

    /// The numeric id of a public id such as `it_7`.
    pub fn num(id: &Value) -> i64 {
        id.as_str()
            .and_then(|s| s.rsplit('_').next())
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("not a public id: {id}"))
    }

    /// Where most bidding tests start: the donor `donor@example.org`, an auction whose
    /// bidding opened an hour ago and closes in `closes_in` (soft close 120 s, no hard
    /// deadline), and one published competitive item of theirs opening at `opening_cents`.
    /// Returns the auction's and the item's numeric ids.
    pub async fn item_up_for_bids(&self, opening_cents: i64, closes_in: Duration) -> (i64, i64) {
        let donor = self.create_user("donor@example.org", &[Role::Donor]).await;
        let auction = auction_in_bidding(&self.db, closes_in, 120, None).await;
        let item = published_item(&self.db, auction, donor, opening_cents, "competitive").await;
        (auction, item)
    }
}

/// The app on a clock the test moves, set to now (the fixtures write real times).
pub async fn app_on_manual_clock(
    db: PgPool,
) -> (TestApp, std::sync::Arc<auuction::clock::ManualClock>) {
    let clock = std::sync::Arc::new(auuction::clock::ManualClock::new(Utc::now()));
    let app = TestApp::builder().with_clock(clock.clone()).spawn(db).await;
    (app, clock)
}

/// A user's paddle number (given at registration).
pub async fn paddle(db: &PgPool, user: i64) -> i32 {
    sqlx::query_scalar("SELECT paddle_number FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(db)
        .await
        .unwrap()
}

/// An auction in its reoffer phase: bidding closed an hour ago, the reoffer opened a minute
/// ago and closes tomorrow.
pub async fn auction_in_reoffer(db: &PgPool) -> i64 {
    let now = Utc::now();
    sqlx::query_scalar(
        "INSERT INTO auctions (year, name, registration_open_at, catalog_publish_at, bidding_open_at, bidding_close_at,
             reoffer_open_at, reoffer_close_at, settlement_open_at, soft_close_seconds, state)
         VALUES (2026, 'Spring Auction', $1, $1, $2, $3, $4, $5, $6, 0, 'reoffer') RETURNING id",
    )
    .bind(now - Duration::days(10))
    .bind(now - Duration::days(1))
    .bind(now - Duration::hours(1))
    .bind(now - Duration::minutes(1))
    .bind(now + Duration::days(1))
    .bind(now + Duration::days(2))
    .fetch_one(db)
    .await
    .unwrap()
}

/// An auction whose bidding window is open: opened an hour ago, closes in `closes_in`.
pub async fn auction_in_bidding(
    db: &PgPool,
    closes_in: Duration,
    soft_close_seconds: i32,
    hard_close_in: Option<Duration>,
) -> i64 {
    let now = Utc::now();
    let close = now + closes_in;
    let reoffer = close + Duration::hours(2);
    sqlx::query_scalar(
        "INSERT INTO auctions (year, name, registration_open_at, catalog_publish_at, bidding_open_at, bidding_close_at,
             reoffer_open_at, reoffer_close_at, settlement_open_at, soft_close_seconds, hard_close_at, state)
         VALUES (2026, 'Test auction', $1, $1, $2, $3, $4, $4 + interval '1 day', $4 + interval '2 days', $5, $6, 'bidding')
         RETURNING id",
    )
    .bind(now - Duration::days(2))
    .bind(now - Duration::hours(1))
    .bind(close)
    .bind(reoffer)
    .bind(soft_close_seconds)
    .bind(hard_close_in.map(|h| now + h))
    .fetch_one(db)
    .await
    .unwrap()
}

/// A published item of `kind` (`competitive`, `fixed_price_event`...) with an opening bid
/// in cents.
pub async fn published_item(
    db: &PgPool,
    auction: i64,
    donor: i64,
    opening_cents: i64,
    kind: &str,
) -> i64 {
    let increment: Option<i64> = None;
    sqlx::query_scalar(
        "INSERT INTO items (auction_id, donor_id, type, title, category_id, opening_min_bid, bid_increment, status)
         VALUES ($1, $2, $3, 'Handmade Quilt', 3, $4, $5, 'published') RETURNING id",
    )
    .bind(auction)
    .bind(donor)
    .bind(kind)
    .bind(opening_cents)
    .bind(increment)
    .fetch_one(db)
    .await
    .unwrap()
}

/// The bids of an item as stored, in seq order: (seq, bidder, amount, max, at).
pub async fn stored_bids(
    db: &PgPool,
    item: i64,
) -> Vec<(i64, i64, i64, Option<i64>, DateTime<Utc>)> {
    sqlx::query_as("SELECT seq, bidder_id, amount, max_proxy_amount, created_at FROM bids WHERE item_id = $1 ORDER BY seq")
        .bind(item)
        .fetch_all(db)
        .await
        .unwrap()
}
