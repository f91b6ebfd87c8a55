//! The managers' console for auction night: `/manage/auctions` (calendars in the auction's
//! zone, admins edit, managers pin states and open the reoffer, each confirmed first and
//! audited), `/manage/live` (the live close numbers) and the hall's projector (`GET
//! /display`, and its public `display:` topic).
// Money literals are written dollars_cents (`125_00` is $125.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use std::{sync::Arc, time::Duration as StdDuration};

use auuction::{clock::ManualClock, domain::Role, local_time::LocalTime};
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{calendar_json, TestApp, Ws};

/// The calendar form, filled as an admin types it (wall times in the auction's zone).
fn calendar_form<'a>(year: &'a str, bidding_close: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("year", year),
        ("name", "Spring Auction"),
        ("registrationOpenAt", "2026-04-01T09:00"),
        ("catalogPublishAt", "2026-04-15T09:00"),
        ("biddingOpenAt", "2026-05-01T18:00"),
        ("biddingCloseAt", bidding_close),
        ("reofferOpenAt", "2026-05-03T20:30"),
        ("reofferCloseAt", "2026-05-03T21:30"),
        ("settlementOpenAt", "2026-05-04T09:00"),
        ("softCloseSeconds", "120"),
        ("hardCloseAt", ""),
    ]
}

/// The app in Chicago time, so a time shown in New York's (the default) would be caught.
async fn chicago_app(db: PgPool) -> TestApp {
    TestApp::builder()
        .with_config(|c| c.time_zone = LocalTime::parse("America/Chicago").unwrap())
        .spawn(db)
        .await
}

async fn audit_actions(db: &PgPool) -> Vec<(String, Option<i64>)> {
    sqlx::query_as("SELECT action, actor_id FROM audit_log ORDER BY id")
        .fetch_all(db)
        .await
        .unwrap()
}

async fn state_override(db: &PgPool, auction: i64) -> Option<String> {
    sqlx::query_scalar("SELECT state_override FROM auctions WHERE id = $1")
        .bind(auction)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn bidding_close(db: &PgPool) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT bidding_close_at FROM auctions")
        .fetch_one(db)
        .await
        .unwrap()
}

/// A page as a person reads it: minijinja escapes `/` and `'` even in text.
fn unescaped(html: String) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().into()
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn staff_read_the_calendars_in_the_auction_zone_and_only_admins_edit_them(db: PgPool) {
    let app = chicago_app(db).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let r = admin.post("/api/auctions", calendar_json(2026, 2)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let auction: Value = r.json().await.unwrap();
    let id = auction["id"].as_str().unwrap();
    let close: DateTime<Utc> = serde_json::from_value(auction["biddingCloseAt"].clone()).unwrap();
    let zone = LocalTime::parse("America/Chicago").unwrap();

    // Strangers log in first; bidders are refused with a page.
    let r = app.browser().get("/manage/auctions").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?next="));
    let bidder = app.login_as("ann@example.org", &[Role::Bidder]).await;
    for path in ["/manage/auctions", "/manage/auctions/new", "/manage/live"] {
        let (status, html) = bidder.html(path).await;
        let html = unescaped(html);
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(html.contains("<html"), "a page, not JSON: {path}");
    }

    // A manager reads the calendar, in Chicago time and named so, with the state controls
    // but no way to edit the dates (the spec gives that to admins).
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let (status, html) = manager.html("/manage/auctions").await;
    let html = unescaped(html);
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Auction 2026"), "{html}");
    assert!(html.contains("America/Chicago"));
    assert!(html.contains(&zone.long(close)), "{}", zone.long(close));
    assert!(zone.long(close).contains("C"), "a Central time");
    assert!(html.contains("Catalog preview"), "the current state");
    assert!(html.contains("Open the reoffer now"));
    assert!(!html.contains("/edit\""), "no edit link for managers");
    assert!(!html.contains("href=\"/manage/auctions/new\""));
    assert_eq!(
        manager.html("/manage/auctions/new").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        manager.html(&format!("/manage/auctions/{id}/edit")).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _, _) = manager
        .submit_form(
            &format!("/manage/auctions/{id}/edit"),
            &calendar_form("2026", "2026-05-03T20:00"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(bidding_close(&app.db).await, close, "nothing changed");

    // The admin's edit form holds the dates as Chicago wall times.
    let (status, html) = admin.html(&format!("/manage/auctions/{id}/edit")).await;
    let html = unescaped(html);
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("value=\"{}\"", zone.input_value(close))));
    assert!(html.contains("type=\"datetime-local\""));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn an_admin_creates_and_edits_a_calendar_read_in_the_zone_with_errors_beside_the_fields(
    db: PgPool,
) {
    let app = chicago_app(db).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let admin_id: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'admin@example.org'")
            .fetch_one(&app.db)
            .await
            .unwrap();

    // Out of order: the error is beside "Bidding closes", in plain words, and what was
    // typed is kept.
    let (status, _, html) = admin
        .submit_form(
            "/manage/auctions/new",
            &calendar_form("2026", "2026-05-01T17:00"),
        )
        .await;
    let html = unescaped(html);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"biddingCloseAt-error\""), "{html}");
    assert!(html.contains("Bidding must close after it opens."));
    assert!(html.contains("value=\"2026-05-01T17:00\""));
    let mut typo = calendar_form("2026", "2026-05-03T20:00");
    typo[6] = ("reofferOpenAt", "tomorrow evening");
    let (status, _, html) = admin.submit_form("/manage/auctions/new", &typo).await;
    let html = unescaped(html);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"reofferOpenAt-error\""));
    assert!(html.contains("like 2026-06-12 18:00"));
    let mut early = calendar_form("2026", "2026-05-03T20:00");
    early[7] = ("reofferCloseAt", "2026-05-03T20:15");
    let (status, _, html) = admin.submit_form("/manage/auctions/new", &early).await;
    let html = unescaped(html);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"reofferCloseAt-error\""));
    assert!(html.contains("Buy-it-now must close after it opens."));
    assert!(audit_actions(&app.db).await.is_empty(), "nothing written");

    // Right: 8 PM in Chicago (daylight time) is 1 AM UTC the next day.
    let (status, location, _) = admin
        .submit_form(
            "/manage/auctions/new",
            &calendar_form("2026", "2026-05-03T20:00"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/manage/auctions");
    assert_eq!(bidding_close(&app.db).await, utc("2026-05-04T01:00:00Z"));
    let (_, html) = admin.html("/manage/auctions").await;
    let html = unescaped(html);
    assert!(html.contains("“Spring Auction” is created."), "flash");
    assert!(html.contains("Sunday, May 3, 2026, 8:00 PM CDT"));
    let id: i64 = sqlx::query_scalar("SELECT id FROM auctions")
        .fetch_one(&app.db)
        .await
        .unwrap();

    // The hard deadline must lie between bidding's close and the reoffer: plain words.
    let mut hard = calendar_form("2026", "2026-05-03T20:00");
    hard[10] = ("hardCloseAt", "2026-05-03T19:00");
    let (status, _, html) = admin
        .submit_form(&format!("/manage/auctions/a_{id}/edit"), &hard)
        .await;
    let html = unescaped(html);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"hardCloseAt-error\""));
    assert!(html.contains("between the close of bidding and the opening of buy-it-now"));

    let (status, _, _) = admin
        .submit_form(
            &format!("/manage/auctions/a_{id}/edit"),
            &calendar_form("2026", "2026-05-03T20:10"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(bidding_close(&app.db).await, utc("2026-05-04T01:10:00Z"));
    assert_eq!(
        audit_actions(&app.db).await,
        vec![
            ("auction.created".to_string(), Some(admin_id)),
            ("auction.updated".to_string(), Some(admin_id)),
        ]
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn opening_the_reoffer_and_pinning_a_state_ask_first_then_are_audited(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (auction, _) = app.item_up_for_bids(10_00, Duration::hours(1)).await;
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let manager_id: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'manager@example.org'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let reoffer = format!("/manage/auctions/a_{auction}/reoffer");

    // The button asks first, and nothing happens until the answer.
    let (status, _, html) = manager.submit_form(&reoffer, &[("state", "open")]).await;
    let html = unescaped(html);
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Open the reoffer now? Every registered bidder will be told."));
    assert!(html.contains("Yes, open it"));
    assert!(html.contains("name=\"confirm\" value=\"yes\""));
    assert!(html.contains("href=\"/manage/auctions\">Cancel"));
    assert!(html.contains("name=\"csrf_token\""));
    assert_eq!(state_override(&app.db, auction).await, None);
    assert!(audit_actions(&app.db).await.is_empty());

    // Without the CSRF token the answer is refused.
    let r = manager
        .form(&reoffer, &[("state", "open"), ("confirm", "yes")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(state_override(&app.db, auction).await, None);

    // Yes: done, audited, and the console says so.
    let (status, location, _) = manager
        .submit_form(
            &reoffer,
            &[
                ("state", "open"),
                ("confirm", "yes"),
                ("reason", "The hall is ready"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/manage/auctions");
    assert_eq!(
        state_override(&app.db, auction).await.as_deref(),
        Some("reoffer")
    );
    assert_eq!(
        audit_actions(&app.db).await,
        vec![("auction.state_overridden".to_string(), Some(manager_id))]
    );
    let reason: Option<String> =
        sqlx::query_scalar("SELECT after->>'reason' FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("The hall is ready"));
    let (_, html) = manager.html("/manage/auctions").await;
    let html = unescaped(html);
    assert!(
        html.contains("The reoffer of “Test auction” is open."),
        "flash"
    );
    assert!(html.contains("Buy-it-now is open"));
    assert!(html.contains("Follow the calendar again"));

    // Back to the calendar, the same way: asked, then done and audited.
    let state = format!("/manage/auctions/a_{auction}/state");
    let (status, _, html) = manager.submit_form(&state, &[("state", "auto")]).await;
    let html = unescaped(html);
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Give “Test auction” back to its calendar?"));
    assert_eq!(
        state_override(&app.db, auction).await.as_deref(),
        Some("reoffer")
    );
    let (status, _, _) = manager
        .submit_form(&state, &[("state", "auto"), ("confirm", "yes")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(state_override(&app.db, auction).await, None);
    assert_eq!(audit_actions(&app.db).await.len(), 2);

    // A made-up state is refused with a page; bidders may not act at all.
    let (status, _, _) = manager
        .submit_form(&state, &[("state", "party"), ("confirm", "yes")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let bidder = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let (status, _, _) = bidder
        .submit_form(&reoffer, &[("state", "open"), ("confirm", "yes")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(state_override(&app.db, auction).await, None);
    assert_eq!(audit_actions(&app.db).await.len(), 2);
}

/// Waits (real time) until the item's close is recorded.
async fn closed_within(db: &PgPool, item: i64, within: StdDuration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        let closed: Option<bool> =
            sqlx::query_scalar("SELECT closed_at IS NOT NULL FROM item_bidding WHERE item_id = $1")
                .bind(item)
                .fetch_optional(db)
                .await
                .unwrap();
        if closed == Some(true) {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    false
}

async fn bid(app: &TestApp, token: &str, item: i64, dollars: f64) {
    let r = app
        .api_client(token)
        .post(
            &format!("/api/items/it_{item}/bids"),
            json!({ "amount": dollars }),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_live_close_page_shows_the_committed_numbers_without_javascript(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (auction, item) = app.item_up_for_bids(100_00, Duration::minutes(5)).await;
    let bidders = app.bidders(2).await;
    bid(&app, &bidders[0].1, item, 120.00).await;
    bid(&app, &bidders[1].1, item, 150.00).await;

    assert_eq!(
        app.browser().get("/manage/live").await.status(),
        StatusCode::SEE_OTHER
    );
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let (status, html) = manager.html("/manage/live").await;
    let html = unescaped(html);
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Live close: Test auction"));
    assert!(
        html.contains("data-field=\"committedTotal\">$150.00<"),
        "{html}"
    );
    assert!(html.contains("data-field=\"bidsTotal\">2<"));
    assert!(html.contains("data-field=\"itemsOpen\">1<"));
    assert!(html.contains("Handmade Quilt"), "items named, not numbered");
    assert!(html.contains("data-list=\"closingSoon\""));
    assert!(html.contains("/js/dashboard.js"));
    assert!(html.contains("data-auction-id=\"a_"));
    // The same page for a chosen auction; an unknown one is a 404 page.
    let (status, _) = manager
        .html(&format!("/manage/live?auction=a_{auction}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = manager.html("/manage/live?auction=a_999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_projector_shows_paddles_and_prices_never_names_or_emails(db: PgPool) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = TestApp::builder().with_clock(clock.clone()).spawn(db).await;
    let (auction, sold) = app.item_up_for_bids(100_00, Duration::minutes(30)).await;
    let bidders = app.bidders(2).await;
    bid(&app, &bidders[0].1, sold, 120.00).await;
    let winner_paddle: i32 = sqlx::query_scalar("SELECT paddle_number FROM users WHERE id = $1")
        .bind(bidders[0].0)
        .fetch_one(&app.db)
        .await
        .unwrap();

    // The item closes and is won.
    let close: DateTime<Utc> =
        sqlx::query_scalar("SELECT bidding_close_at FROM auctions WHERE id = $1")
            .bind(auction)
            .fetch_one(&app.db)
            .await
            .unwrap();
    clock.set(close + Duration::seconds(1));
    assert!(closed_within(&app.db, sold, StdDuration::from_secs(5)).await);

    let (status, html) = app.anonymous().html("/display").await;

    let html = unescaped(html);
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Raised so far"));
    assert!(html.contains(&format!("Paddle {winner_paddle}")), "{html}");
    assert!(html.contains("Handmade Quilt"));
    assert!(html.contains("$120.00"));
    assert!(html.contains("/js/projector.js"));
    for (user, _) in &bidders {
        let (name, email): (String, String) =
            sqlx::query_as("SELECT name, email FROM users WHERE id = $1")
                .bind(user)
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert!(!html.contains(&name), "no bidder's name on the screen");
        assert!(!html.contains(&email), "no bidder's email on the screen");
    }
    assert!(
        !html.contains("name=\"csrf_token\""),
        "no forms on the screen"
    );
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn anyone_follows_the_display_topic_which_carries_no_staff_numbers(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (auction, item) = app.item_up_for_bids(100_00, Duration::minutes(5)).await;
    let bidders = app.bidders(2).await;
    bid(&app, &bidders[0].1, item, 130.00).await;

    // A guest may not follow the dashboard, but may follow the display.
    let mut guest = Ws::connect(&app.base, None).await;
    guest
        .send(json!({ "type": "subscribe", "topics": [format!("dashboard:a_{auction}")] }))
        .await;
    let refused = guest.next_of("error").await;
    assert_eq!(refused["error"], "forbidden");
    guest
        .send(json!({ "type": "subscribe", "topics": [format!("display:a_{auction}")] }))
        .await;
    let first = guest.next_of("display").await;
    assert_eq!(
        keys(&first),
        [
            "auctionId",
            "closingSoon",
            "itemsOpen",
            "latestWinners",
            "serverTime",
            "state",
            "totalRaised",
            "type"
        ]
    );
    assert_eq!(first["totalRaised"], json!(130.0));
    assert_eq!(
        keys(&first["closingSoon"][0]),
        ["bidCount", "closesAt", "currentBid", "extended", "itemId"]
    );
    // Then a frame every half second, with the next bid in it.
    bid(&app, &bidders[1].1, item, 160.00).await;
    let mut later = guest.next_of("display").await;
    for _ in 0..10 {
        if later["totalRaised"] == json!(160.0) {
            break;
        }
        later = guest.next_of("display").await;
    }
    assert_eq!(later["totalRaised"], json!(160.0));
    let text = later.to_string();
    for staff_only in [
        "watchers",
        "errors",
        "bidsPerMinute",
        "bidders",
        "@example.org",
    ] {
        assert!(!text.contains(staff_only), "{staff_only} in {text}");
    }

    // Staff get the dashboard on the same socket protocol.
    let manager_email = "manager@example.org";
    app.create_user(manager_email, &[Role::Manager]).await;
    let mut desk = app.ws_as(manager_email).await;
    desk.send(json!({ "type": "subscribe", "topics": [format!("dashboard:a_{auction}")] }))
        .await;
    let dashboard = desk.next_of("dashboard").await;
    assert_eq!(dashboard["committedTotal"], json!(160.0));
}

/// Bids the write limit refuses over REST count on the dashboard's "slowed down", like the
/// socket's; other refused writes do not.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn rest_bids_refused_by_the_rate_limit_count_on_the_dashboard(db: PgPool) {
    let app = TestApp::builder()
        .with_config(|c| c.rate_limits.write_per_account = 2)
        .spawn(db)
        .await;
    let (_, item) = app.item_up_for_bids(100_00, Duration::minutes(30)).await;
    let bidder = app.login_as("quick@example.org", &[Role::Bidder]).await;
    let before = app.state.engine.tally().rate_limited;
    let mut statuses = Vec::new();
    for amount in [100, 110, 120, 130] {
        let r = bidder
            .post(
                &format!("/api/items/it_{item}/bids"),
                json!({ "amount": amount }),
            )
            .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![201, 201, 429, 429]);
    assert_eq!(app.state.engine.tally().rate_limited - before, 2);
    // A refused write that is not a bid is not the dashboard's business.
    let r = bidder
        .put("/api/users/me", json!({ "household": "Doe" }))
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(app.state.engine.tally().rate_limited - before, 2);
}
