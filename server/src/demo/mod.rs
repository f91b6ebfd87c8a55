//! `auuction demo`: a fresh demo database with an auction whose bidding window is open,
//! demo logins of every role, then the server. It grows as the product does.
//!
//! catalog.rs holds the demo's items, pictures.rs draws their pictures.

pub mod catalog;
pub mod pictures;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use url::Url;

use crate::{
    config::Config,
    domain::{Calendar, Role, Roles},
    passwords,
    store::{self, auctions, users},
    Application,
};

/// Every demo account uses this password (printed at start; demo only).
pub const DEMO_PASSWORD: &str = "demo-password";

/// The demo logins: (email, name, roles).
pub const DEMO_USERS: &[(&str, &str, &[Role])] = &[
    (
        "admin@demo.auuction.org",
        "Ada Admin",
        &[Role::Admin, Role::Bidder],
    ),
    (
        "manager@demo.auuction.org",
        "Martin Manager",
        &[Role::Manager, Role::Bidder],
    ),
    (
        "host@demo.auuction.org",
        "Hannah Host",
        &[Role::Donor, Role::Bidder],
    ),
    (
        "finance@demo.auuction.org",
        "Frank Finance",
        &[Role::Finance],
    ),
    ("bidder@demo.auuction.org", "Betty Bidder", &[Role::Bidder]),
    ("bidder2@demo.auuction.org", "Bob Bidder", &[Role::Bidder]),
];

/// Derives the demo database's URL: same server, database `auuction_demo`.
fn demo_database_url(config: &Config, explicit: Option<String>) -> anyhow::Result<String> {
    if let Some(url) = explicit {
        return Ok(url);
    }
    let mut url = Url::parse(&config.database_url).context("DATABASE_URL")?;
    url.set_path("/auuction_demo");
    Ok(url.to_string())
}

/// Drops and recreates the demo database so every demo starts the same.
async fn reset_database(url: &str) -> anyhow::Result<()> {
    use sqlx::migrate::MigrateDatabase;
    if sqlx::Postgres::database_exists(url).await? {
        sqlx::Postgres::force_drop_database(url)
            .await
            .context("dropping the old demo database")?;
    }
    Ok(())
}

/// How the demo's auction night runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeline {
    /// Bidding open for two more hours, the reoffer an hour after: time to look around.
    Evening,
    /// The whole night in half an hour (`--fast`): bidding closes 5 minutes after the start,
    /// the reoffer runs from 7 to 27 minutes, settlement opens at 28.
    Fast,
}

impl Timeline {
    /// The demo auction's calendar and hard deadline, from `now`.
    pub fn calendar(self, now: DateTime<Utc>) -> (Calendar, DateTime<Utc>) {
        let (close, hard, reoffer_open, reoffer_close, settlement) = match self {
            Timeline::Evening => (
                Duration::hours(2),
                Duration::minutes(150),
                Duration::hours(3),
                Duration::days(2),
                Duration::days(3),
            ),
            Timeline::Fast => (
                Duration::minutes(5),
                Duration::minutes(6),
                Duration::minutes(7),
                Duration::minutes(27),
                Duration::minutes(28),
            ),
        };
        let calendar = Calendar {
            registration_open_at: now - Duration::days(14),
            catalog_publish_at: now - Duration::days(7),
            bidding_open_at: now - Duration::hours(1),
            bidding_close_at: now + close,
            reoffer_open_at: now + reoffer_open,
            reoffer_close_at: now + reoffer_close,
            settlement_open_at: now + settlement,
        };
        (calendar, now + hard)
    }

    fn soft_close_seconds(self) -> i32 {
        match self {
            Timeline::Evening => 120,
            Timeline::Fast => 60,
        }
    }
}

pub async fn run(
    mut config: Config,
    database_url: Option<String>,
    timeline: Timeline,
) -> anyhow::Result<()> {
    let url = demo_database_url(&config, database_url)?;
    reset_database(&url).await?;
    config.database_url = url;
    let db = store::connect_and_migrate(&config.database_url).await?;
    seed(&db, &config.media_dir, timeline).await?;
    let app = Application::build_with_pool(config, db).await?;
    spawn_bot(app.state().clone());
    let base = app.state().config.base_url.clone();
    println!("\n  auuction demo is running at {base}\n");
    {
        let zone = app.state().config.time_zone;
        let (calendar, _) = timeline.calendar(Utc::now());
        println!(
            "  Bidding closes {}.\n  The reoffer (buy it now) runs from {} to {}.",
            zone.long(calendar.bidding_close_at),
            zone.long(calendar.reoffer_open_at),
            zone.long(calendar.reoffer_close_at)
        );
        if timeline == Timeline::Evening {
            println!("  To see the close, the reoffer and settlement in half an hour: scripts/demo.sh --fast");
        }
        println!();
    }
    println!("  Log in with any of these (password: {DEMO_PASSWORD}):");
    for (email, name, roles) in DEMO_USERS {
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        println!("    {email:<30} {name:<16} {}", roles.join(", "));
    }
    println!(
        "\n  Emails are written to {}\n  Press Ctrl-C to stop.\n",
        app.state().config.mail_dir.display()
    );
    app.run(true).await
}

/// Loads the demo data into an empty, migrated database; pictures go under `media_dir`.
pub async fn seed(
    db: &sqlx::PgPool,
    media_dir: &std::path::Path,
    timeline: Timeline,
) -> anyhow::Result<()> {
    let hash = passwords::hash(DEMO_PASSWORD.to_string()).await?;
    for (email, name, roles) in DEMO_USERS {
        users::insert(
            db,
            users::NewUser {
                email,
                name,
                password_hash: &hash,
                roles: &Roles::new(roles.to_vec()),
                preferences: users::Preferences {
                    email: true,
                    sms: false,
                },
                verified: true,
            },
        )
        .await?;
    }
    // Bidding opened an hour ago, so the demo is live right away.
    let now = Utc::now();
    let (calendar, hard_close_at) = timeline.calendar(now);
    let fields = auctions::AuctionFields {
        year: chrono::Datelike::year(&now),
        name: "Spring Fundraising Auction (demo)".into(),
        soft_close_seconds: timeline.soft_close_seconds(),
        hard_close_at: Some(hard_close_at),
        calendar,
    };
    let auction = auctions::insert(db, &fields, fields.calendar.state_at(now))
        .await?
        .context("the demo auction's year is taken")?;
    let host: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'host@demo.auuction.org'")
            .fetch_one(db)
            .await?;
    for (n, (title, description, category, opening)) in DEMO_LOTS.iter().enumerate() {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO items (auction_id, donor_id, type, title, description, category_id, opening_min_bid, status)
             VALUES ($1, $2, 'competitive', $3, $4, $5, $6, 'published') RETURNING id",
        )
        .bind(auction.id)
        .bind(host)
        .bind(title)
        .bind(description)
        .bind(category)
        .bind(opening)
        .fetch_one(db)
        .await?;
        crate::demo::catalog::add_picture(db, media_dir, crate::domain::ItemId(id), title, n)
            .await?;
    }
    // The quilt and the cabin are the home page's first featured lots.
    sqlx::query("UPDATE items SET featured = true WHERE title IN ('Handmade Quilt', 'Week at the Mountain Cabin')")
        .execute(db)
        .await?;
    crate::demo::catalog::load(
        db,
        auction.auction_id(),
        crate::domain::UserId(host),
        media_dir,
    )
    .await?;
    Ok(())
}

/// Lots the demo's bidders leave alone, so they are offered again in the reoffer.
const LEFT_FOR_THE_REOFFER: &[&str] = &["Signed Hymnal Collection", "Woodworked Cutting Board"];

/// Competitive lots of the demo: (title, description, category id, opening bid in cents,
/// written dollars_cents).
#[allow(clippy::inconsistent_digit_grouping)]
const DEMO_LOTS: &[(&str, &str, i64, i64)] = &[
    (
        "Handmade Quilt",
        "A queen-size quilt in blues and greens, pieced by the Tuesday sewing circle.",
        3,
        150_00,
    ),
    (
        "Lakeside Dinner for Six",
        "A three-course summer dinner on the Okafors' porch by the lake.",
        1,
        300_00,
    ),
    (
        "Week at the Mountain Cabin",
        "Seven nights in a two-bedroom cabin with a wood stove and a view.",
        2,
        500_00,
    ),
    (
        "Piano Lessons (Ten Weeks)",
        "Ten half-hour lessons for any age with our music director.",
        4,
        200_00,
    ),
    (
        "Homemade Pies, One a Month",
        "A pie of the season every month for a year, delivered.",
        3,
        120_00,
    ),
];

/// Makes the demo look alive: every few seconds a demo bidder bids the next minimum on a
/// random lot, through the same engine as everyone else, until the lot passes a cap.
pub fn spawn_bot(state: crate::AppState) {
    tokio::spawn(async move {
        let bidders: Vec<(i64, i32)> = match sqlx::query_as(
            "SELECT id, paddle_number FROM users WHERE email IN ('bidder@demo.auuction.org', 'bidder2@demo.auuction.org')",
        )
        .fetch_all(&state.db)
        .await
        {
            Ok(b) => b,
            Err(e) => return tracing::warn!(error = %e, "demo bot cannot start"),
        };
        // A few lots get no bids, so the reoffer has something to sell.
        let items: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM items WHERE type = 'competitive' AND status = 'published' AND title <> ALL($1)",
        )
        .bind(LEFT_FOR_THE_REOFFER)
        .fetch_all(&state.db)
        .await
        .unwrap_or_default();
        let auction: Option<i64> = sqlx::query_scalar("SELECT id FROM auctions LIMIT 1")
            .fetch_optional(&state.db)
            .await
            .ok()
            .flatten();
        let (Some(auction), false, false) = (auction, bidders.is_empty(), items.is_empty()) else {
            return;
        };
        let auction = crate::domain::AuctionId(auction);
        let mut turn = 0usize;
        loop {
            let pause = 3 + (rand::random::<u64>() % 4);
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(pause)) => {}
            }
            turn += 1;
            let (bidder, paddle) = bidders[turn % bidders.len()];
            match state.engine.auction_state(auction) {
                Some(crate::domain::AuctionState::Bidding) => {
                    let item = crate::domain::ItemId(items[rand::random::<usize>() % items.len()]);
                    let Some(live) = state.engine.live_state(item).await else {
                        continue;
                    };
                    if live.next_minimum.0 > live.opening.0 * 4 {
                        continue;
                    }
                    let _ = state
                        .engine
                        .place_bid(crate::engine::BidInput {
                            item,
                            bidder: crate::domain::UserId(bidder),
                            paddle,
                            amount: live.next_minimum,
                            max_proxy: None,
                            idempotency_key: None,
                        })
                        .await;
                }
                // Now and then a demo bidder buys a unit, never an item's last: that one
                // is left for whoever is trying the demo.
                Some(crate::domain::AuctionState::Reoffer) if turn.is_multiple_of(4) => {
                    let Ok(listing) = crate::services::reoffer::listing(&state, auction).await
                    else {
                        continue;
                    };
                    let offered: Vec<_> = listing
                        .items
                        .iter()
                        .filter(|i| i.quantity_remaining > 1)
                        .collect();
                    if offered.is_empty() {
                        continue;
                    }
                    let item = offered[rand::random::<usize>() % offered.len()].id;
                    let _ = state
                        .engine
                        .buy(crate::engine::BuyInput {
                            item,
                            buyer: crate::domain::UserId(bidder),
                            quantity: 1,
                            idempotency_key: None,
                        })
                        .await;
                }
                _ => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_timelines_are_valid_calendars_with_the_hard_close_in_its_window() {
        let now = Utc::now();
        for timeline in [Timeline::Evening, Timeline::Fast] {
            let (calendar, hard) = timeline.calendar(now);
            calendar.validate().unwrap();
            assert_eq!(calendar.state_at(now), crate::domain::AuctionState::Bidding);
            assert!(hard >= calendar.bidding_close_at && hard <= calendar.reoffer_open_at);
        }
        // --fast reaches settlement within half an hour.
        let (fast, _) = Timeline::Fast.calendar(now);
        assert!(fast.settlement_open_at - now <= Duration::minutes(30));
        assert_eq!(
            fast.state_at(now + Duration::minutes(6)),
            crate::domain::AuctionState::Paused
        );
        assert_eq!(
            fast.state_at(now + Duration::minutes(8)),
            crate::domain::AuctionState::Reoffer
        );
        assert_eq!(
            fast.state_at(now + Duration::minutes(29)),
            crate::domain::AuctionState::Settlement
        );
    }
}
