//! The buyer's pages of auction night's end: the reoffer list (`/reoffer`) and buying
//! without JavaScript (confirmation, then the purchase, once even when sent twice), the
//! item page after bidding closed (final price, winning paddles, "You won" to the winner
//! only), and "Your wins and purchases" on the account page.
// Money literals are written dollars_cents (`125_00` is $125.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use std::time::Duration as StdDuration;

use auuction::{
    clock::ManualClock,
    domain::{ItemId, Role},
    local_time::LocalTime,
};
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{
    app_on_manual_clock, auction_in_bidding, auction_in_reoffer, paddle, Browser, TestApp,
};

/// A published fixed-price item of `units` at `price_cents` each, loaded by the engine.
async fn item_for_sale(
    app: &TestApp,
    auction: i64,
    title: &str,
    units: i32,
    price_cents: i64,
) -> i64 {
    let donor: i64 =
        match sqlx::query_scalar("SELECT id FROM users WHERE email = 'donor@example.org'")
            .fetch_optional(&app.db)
            .await
            .unwrap()
        {
            Some(id) => id,
            None => app.create_user("donor@example.org", &[Role::Donor]).await,
        };
    let item: i64 = sqlx::query_scalar(
        "INSERT INTO items (auction_id, donor_id, type, title, category_id, opening_min_bid, quantity_total, status)
         VALUES ($1, $2, 'fixed_price_item', $3, 3, $4, $5, 'published') RETURNING id",
    )
    .bind(auction)
    .bind(donor)
    .bind(title)
    .bind(price_cents)
    .bind(units)
    .fetch_one(&app.db)
    .await
    .unwrap();
    app.state.engine.item_changed(ItemId(item)).await;
    item
}

/// (quantity, price each) of every reoffer purchase of an item.
async fn purchases(db: &PgPool, item: i64) -> Vec<(i32, i64)> {
    sqlx::query_as(
        "SELECT quantity, price_each FROM commitments WHERE item_id = $1 AND source = 'reoffer' ORDER BY id",
    )
    .bind(item)
    .fetch_all(db)
    .await
    .unwrap()
}

async fn page(b: &Browser, path: &str) -> String {
    let (status, html) = b.html(path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {html}");
    html
}

/// The value of the hidden field `name` in a page's form.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in:\n{html}"))
        + marker.len();
    html[start..].chars().take_while(|c| *c != '"').collect()
}

/// Opens the confirmation for `quantity` units and returns the form's idempotency key.
async fn confirmation(b: &Browser, item: i64, quantity: u32) -> (String, String) {
    let html = page(
        b,
        &format!("/reoffer/items/it_{item}/buy?quantity={quantity}"),
    )
    .await;
    (hidden(&html, "idempotency_key"), html)
}

/// Sends the confirmation form as the browser does; asserts the answer is "back to the list".
async fn confirm(b: &Browser, item: i64, quantity: u32, key: &str) {
    let (status, location, body) = b
        .submit_form(
            &format!("/reoffer/items/it_{item}/buy"),
            &[
                ("quantity", &quantity.to_string()),
                ("idempotency_key", key),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location, "/reoffer");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_list_shows_what_is_left_and_hides_what_is_sold(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let auction = auction_in_reoffer(&db).await;
    let pies = item_for_sale(&app, auction, "Pie of the Month", 3, 25_00).await;
    let seats = item_for_sale(&app, auction, "Choir Concert Seat", 1, 40_00).await;

    // A guest reads the list, and is asked to sign in to buy.
    let html = page(&app.browser(), "/reoffer").await;
    assert!(html.contains("Buying is open"), "{html}");
    assert!(html.contains(&format!("href=\"/items/it_{pies}\">Pie of the Month</a>")));
    assert!(html.contains("$25.00") && html.contains("<span data-left>3</span> left"));
    assert!(html.contains("Choir Concert Seat") && html.contains("$40.00"));
    assert!(html.contains("Sign in to buy") && !html.contains("Buy now"));
    assert!(
        html.contains("href=\"/reoffer\" aria-current=\"page\">Reoffer</a>"),
        "nav link"
    );

    // A signed-in bidder gets a Buy now button per line, and a choice of how many for pies.
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let html = page(&ann, "/reoffer").await;
    assert!(!html.contains("Sign in to buy"));
    assert_eq!(html.matches(">Buy now</button>").count(), 2, "{html}");
    assert!(html.contains("name=\"quantity\"") && html.contains("<option value=\"3\">3</option>"));

    // The last seat sells: the list no longer shows it.
    let r = app
        .api_client(&app.bearer_token("ann@example.org").await)
        .post(
            &format!("/api/items/it_{seats}/buy"),
            json!({ "quantity": 1 }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let html = page(&ann, "/reoffer").await;
    assert!(!html.contains("Choir Concert Seat"), "{html}");
    assert!(html.contains("Pie of the Month"));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn buying_without_javascript_confirms_then_buys_once_even_when_sent_twice(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let auction = auction_in_reoffer(&db).await;
    let pies = item_for_sale(&app, auction, "Pie of the Month", 3, 25_00).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;

    // Buy now → the question, with a fresh key and the CSRF token in the form.
    let (key, html) = confirmation(&ann, pies, 2).await;
    assert!(
        html.contains("Buy 2 × <a href=\"/items/it_")
            && html.contains("Pie of the Month</a> for $50.00?"),
        "{html}"
    );
    assert!(html.contains("Confirm purchase") && html.contains(">Back</a>"));
    assert!(key.len() >= 16, "{key}");
    assert_eq!(hidden(&html, "csrf_token"), ann.csrf.clone().unwrap());
    let (other_key, _) = confirmation(&ann, pies, 2).await;
    assert_ne!(key, other_key, "each confirmation has its own key");
    assert!(purchases(&db, pies).await.is_empty(), "asking buys nothing");

    // Confirm, then the same form again (a double click, a reload): one purchase.
    confirm(&ann, pies, 2, &key).await;
    confirm(&ann, pies, 2, &key).await;
    assert_eq!(purchases(&db, pies).await, vec![(2, 25_00)]);
    let html = page(&ann, "/reoffer").await;
    assert!(
        html.contains("You bought it: 2 × Pie of the Month for $50.00. It is in your account."),
        "{html}"
    );
    assert!(html.contains("<span data-left>1</span> left"));

    // It is in the account, in words, with the total.
    let html = page(&ann, "/account").await;
    assert!(html.contains("Your wins and purchases"));
    assert!(html.contains("Bought in the reoffer") && html.contains("Pie of the Month"));
    assert!(html.contains("data-commitments-total>$50.00<"), "{html}");

    // More than are left: said plainly, nothing bought.
    let html = page(&ann, &format!("/reoffer/items/it_{pies}/buy?quantity=2")).await;
    assert!(html.contains("Only 1 left"), "{html}");
    let html = page(&ann, &format!("/reoffer/items/it_{pies}/buy?quantity=many")).await;
    assert!(
        html.contains("Please choose a number from 1 to 1."),
        "{html}"
    );
    assert_eq!(purchases(&db, pies).await.len(), 1);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn sold_out_is_said_plainly_and_nothing_is_charged(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let auction = auction_in_reoffer(&db).await;
    let seat = item_for_sale(&app, auction, "Choir Concert Seat", 1, 40_00).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let bob = app.login_as("bob@example.org", &[Role::Bidder]).await;

    // Both are asked; Ann confirms first and gets the last seat.
    let (ann_key, _) = confirmation(&ann, seat, 1).await;
    let (bob_key, _) = confirmation(&bob, seat, 1).await;
    confirm(&ann, seat, 1, &ann_key).await;
    confirm(&bob, seat, 1, &bob_key).await;
    let html = page(&bob, "/reoffer").await;
    assert!(
        html.contains("Sold out: someone bought the last one first. Nothing was charged."),
        "{html}"
    );
    assert!(!html.contains("Choir Concert Seat"), "no longer listed");
    assert!(html.contains("Everything has been sold."));
    assert_eq!(purchases(&db, seat).await, vec![(1, 40_00)]);
    let html = page(&bob, "/account").await;
    assert!(!html.contains("Choir Concert Seat"), "Bob owes nothing");
    assert!(html.contains("Nothing yet."));

    // Asking again says so at once.
    let html = page(&bob, &format!("/reoffer/items/it_{seat}/buy")).await;
    assert!(html.contains("sold out"), "{html}");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn outside_the_phase_the_page_says_when_it_opens_or_that_it_closed(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let auction = auction_in_bidding(&db, Duration::hours(1), 120, None).await;
    let pies = item_for_sale(&app, auction, "Pie of the Month", 3, 25_00).await;
    let opens_at: DateTime<Utc> =
        sqlx::query_scalar("SELECT reoffer_open_at FROM auctions WHERE id = $1")
            .bind(auction)
            .fetch_one(&db)
            .await
            .unwrap();

    // Before: when it opens, in the auction's zone, named.
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let html = page(&ann, "/reoffer").await;
    assert!(html.contains("Buying is not open yet."), "{html}");
    let when = LocalTime::default().long(opens_at);
    assert!(
        html.contains(&format!(
            "It opens on <time datetime=\"{}\">{when}</time>",
            opens_at.to_rfc3339()
        )),
        "{when}: {html}"
    );
    assert!(!html.contains("Buy now"));
    let html = page(&ann, &format!("/reoffer/items/it_{pies}/buy")).await;
    assert!(html.contains("Buying is not open right now."), "{html}");
    // A form sent anyway (an old tab) is refused in plain words.
    confirm(&ann, pies, 1, "old-tab-1").await;
    let html = page(&ann, "/reoffer").await;
    assert!(html.contains("Buy-it-now has not opened yet."), "{html}");
    assert!(purchases(&db, pies).await.is_empty());

    // A manager closes the auction: the page says buying has closed.
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let r = manager
        .post(
            &format!("/api/auctions/a_{auction}/reoffer/state"),
            json!({ "state": "close", "reason": "end of the evening" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let html = page(&app.browser(), "/reoffer").await;
    assert!(html.contains("Buying has closed"), "{html}");
    assert!(!html.contains("Sign in to buy"));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_purchase_needs_the_csrf_token_and_a_signed_in_buyer(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let auction = auction_in_reoffer(&db).await;
    let pies = item_for_sale(&app, auction, "Pie of the Month", 3, 25_00).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let (key, _) = confirmation(&ann, pies, 1).await;
    let path = format!("/reoffer/items/it_{pies}/buy");

    // A form from another site (no token, or a wrong one): refused, nothing bought.
    let r = ann
        .form(&path, &[("quantity", "1"), ("idempotency_key", &key)])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = ann
        .form(
            &path,
            &[
                ("csrf_token", "forged"),
                ("quantity", "1"),
                ("idempotency_key", &key),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(purchases(&db, pies).await.is_empty());

    // A guest is sent to log in, from the confirmation and from the purchase.
    let guest = app.browser();
    let r = guest.get(&path).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?next="));
    let csrf = guest.page_csrf("/reoffer").await;
    let r = guest
        .form(&path, &[("csrf_token", &csrf), ("quantity", "1")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));
    assert!(purchases(&db, pies).await.is_empty());
}

// ---- the item page after the close ------------------------------------------------------

async fn bid(app: &TestApp, token: &str, item: i64, amount: f64) {
    let r = app
        .api_client(token)
        .post(
            &format!("/api/items/it_{item}/bids"),
            json!({ "amount": amount }),
        )
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Moves the clock to the auction's bidding close and waits (real time) until `item`'s
/// close is recorded; the engine looks at its clock every second.
async fn close_bidding(app: &TestApp, clock: &ManualClock, auction: i64, item: i64) {
    let close: DateTime<Utc> =
        sqlx::query_scalar("SELECT bidding_close_at FROM auctions WHERE id = $1")
            .bind(auction)
            .fetch_one(&app.db)
            .await
            .unwrap();
    clock.set(close + Duration::seconds(1));
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        let closed: Option<bool> =
            sqlx::query_scalar("SELECT closed_at IS NOT NULL FROM item_bidding WHERE item_id = $1")
                .bind(item)
                .fetch_optional(&app.db)
                .await
                .unwrap();
        if closed == Some(true) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the close was not recorded"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_closed_item_shows_the_winning_paddle_and_you_won_only_to_the_winner(db: PgPool) {
    let (app, clock) = app_on_manual_clock(db.clone()).await;
    let (auction, item) = app.item_up_for_bids(100_00, Duration::minutes(30)).await;
    let bidders = app.bidders(2).await;
    let (ann, bob) = (&bidders[0], &bidders[1]);
    bid(&app, &bob.1, item, 110.0).await;
    bid(&app, &ann.1, item, 150.0).await;
    close_bidding(&app, &clock, auction, item).await;
    let ann_paddle = paddle(&db, ann.0).await;
    let bob_paddle = paddle(&db, bob.0).await;

    let path = format!("/items/it_{item}");
    let ann_page = page(&app.log_in("bidder0@example.org").await, &path).await;
    let bob_page = page(&app.log_in("bidder1@example.org").await, &path).await;
    let guest_page = page(&app.browser(), &path).await;
    for html in [&ann_page, &bob_page, &guest_page] {
        assert!(html.contains("Bidding closed."), "{html}");
        assert!(
            html.contains(&format!(
                "Final price: <strong>$150.00</strong>. Won by paddle <strong>#{ann_paddle}</strong>."
            )),
            "{html}"
        );
        assert!(!html.contains("data-bid-form"), "no bid form once closed");
    }
    assert!(
        ann_page.contains("You won this item for $150.00."),
        "{ann_page}"
    );
    assert!(!bob_page.contains("You won"), "{bob_page}");
    assert!(!guest_page.contains("You won"));
    assert!(!bob_page.contains(&format!("#{bob_paddle}</strong>.")));
    // Nobody's name is on the page but the signed-in viewer's own.
    assert!(!bob_page.contains("User bidder0@example.org"));
    assert!(!guest_page.contains("User bidder"));

    // The win is on Ann's account, in words, with the total.
    let html = page(&app.log_in("bidder0@example.org").await, "/account").await;
    assert!(
        html.contains("Won at auction") && html.contains("Handmade Quilt"),
        "{html}"
    );
    assert!(html.contains("data-commitments-total>$150.00<"));
    let html = page(&app.log_in("bidder1@example.org").await, "/account").await;
    assert!(!html.contains("Won at auction"));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn each_winner_of_a_several_unit_item_sees_their_own_amount(db: PgPool) {
    let (app, clock) = app_on_manual_clock(db.clone()).await;
    let (auction, item) = app.item_up_for_bids(100_00, Duration::minutes(30)).await;
    sqlx::query("UPDATE items SET quantity_total = 2 WHERE id = $1")
        .bind(item)
        .execute(&db)
        .await
        .unwrap();
    app.state.engine.item_changed(ItemId(item)).await;
    let bidders = app.bidders(3).await;
    bid(&app, &bidders[1].1, item, 120.0).await;
    bid(&app, &bidders[0].1, item, 150.0).await;
    close_bidding(&app, &clock, auction, item).await;
    let winners: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT user_id, amount FROM winners WHERE item_id = $1 ORDER BY amount DESC",
    )
    .bind(item)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(winners.len(), 2, "{winners:?}");
    let (top, second) = (
        paddle(&db, winners[0].0).await,
        paddle(&db, winners[1].0).await,
    );

    let path = format!("/items/it_{item}");
    let first = page(&app.log_in("bidder0@example.org").await, &path).await;
    let other = page(&app.log_in("bidder1@example.org").await, &path).await;
    let loser = page(&app.log_in("bidder2@example.org").await, &path).await;
    assert!(
        first.contains(&format!(
            "You won this item for ${}.",
            auuction::domain::Cents(winners[0].1)
        )),
        "{first}"
    );
    assert!(
        other.contains(&format!(
            "You won this item for ${}.",
            auuction::domain::Cents(winners[1].1)
        )),
        "{other}"
    );
    assert!(!loser.contains("You won"));
    assert!(
        loser.contains(&format!(
            "Won by paddle <strong>#{top}</strong>; also won by paddle #{second}."
        )),
        "{loser}"
    );
}
