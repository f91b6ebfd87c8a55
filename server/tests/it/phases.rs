//! The phases after bidding, driven by the calendar (the scheduler) or a manager: paused at
//! bidding's close, the reoffer announced once to every registered bidder when it opens
//! (whatever restarts, retries and managers do), the unsold items closed when it ends.

use std::time::Duration as StdDuration;

use auuction::domain::Role;
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{app_on_manual_clock, auction_in_bidding, published_item, TestApp};

async fn announcements(db: &PgPool) -> Vec<(i64, Value)> {
    sqlx::query_as(
        "SELECT user_id, payload FROM notifications WHERE type = 'reoffer_announcement' ORDER BY user_id",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

async fn calendar(db: &PgPool, auction: i64) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
    sqlx::query_as(
        "SELECT bidding_close_at, reoffer_open_at, reoffer_close_at FROM auctions WHERE id = $1",
    )
    .bind(auction)
    .fetch_one(db)
    .await
    .unwrap()
}

/// Waits (real time) for the scheduler's next passes until `check` holds.
async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..60 {
        if check().await {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    false
}

async fn state_of(app: &TestApp) -> String {
    let v: Value = app.anonymous().json("/api/auctions/current").await;
    v["state"].as_str().unwrap_or_default().to_string()
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_calendar_pauses_then_opens_the_reoffer_and_announces_it_once(db: PgPool) {
    let (app, clock) = app_on_manual_clock(db.clone()).await;
    let donor = app.create_user("donor@example.org", &[Role::Donor]).await;
    let auction = auction_in_bidding(&db, Duration::minutes(5), 0, None).await;
    let unsold = published_item(&db, auction, donor, 10_00, "competitive").await;
    app.state
        .engine
        .item_changed(auuction::domain::ItemId(unsold))
        .await;
    let bidders = app.bidders(3).await;
    // Neither a donor without the bidder role nor an unverified registration is told.
    let r = app.register("new@example.org").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (close, reoffer_open, reoffer_close) = calendar(&db, auction).await;

    clock.set(close + Duration::minutes(1));
    assert!(eventually(|| async { state_of(&app).await == "paused" }).await);
    assert!(announcements(&db).await.is_empty());

    clock.set(reoffer_open);
    assert!(eventually(|| async { announcements(&db).await.len() == 3 }).await);
    assert_eq!(state_of(&app).await, "reoffer");
    let told = announcements(&db).await;
    let mut expected: Vec<i64> = bidders.iter().map(|b| b.0).collect();
    expected.sort();
    assert_eq!(told.iter().map(|t| t.0).collect::<Vec<_>>(), expected);
    assert_eq!(
        told[0].1,
        json!({ "auctionId": format!("a_{auction}"),
                "opensAt": reoffer_open.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                "closesAt": reoffer_close.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true) })
    );

    // A manager opening it again, and a restart, tell nobody twice.
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let r = manager
        .post(
            &format!("/api/auctions/a_{auction}/reoffer/state"),
            json!({ "state": "open" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    drop(app);
    let again = TestApp::builder()
        .with_clock(clock.clone())
        .spawn(db.clone())
        .await;
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    assert_eq!(announcements(&db).await, told);

    // The reoffer's end closes what is still unsold (the manager gives the calendar back).
    manager_auto(&again, auction).await;
    clock.set(reoffer_close + Duration::seconds(1));
    assert!(
        eventually(|| async {
            sqlx::query_scalar::<_, String>("SELECT status FROM items WHERE id = $1")
                .bind(unsold)
                .fetch_one(&db)
                .await
                .unwrap()
                == "closed"
        })
        .await
    );
}

async fn manager_auto(app: &TestApp, auction: i64) {
    let manager = app.log_in("manager@example.org").await;
    let r = manager
        .post(
            &format!("/api/auctions/a_{auction}/state"),
            json!({ "state": "auto" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_crash_between_the_flip_and_the_announcement_is_caught_up_at_start(db: PgPool) {
    let setup = TestApp::spawn(db.clone()).await;
    let bidders = setup.bidders(2).await;
    drop(setup);
    // The reoffer opened a minute ago and its state was written, but the server died before
    // the announcement.
    let now = Utc::now();
    sqlx::query(
        "INSERT INTO auctions (year, name, registration_open_at, catalog_publish_at, bidding_open_at, bidding_close_at,
             reoffer_open_at, reoffer_close_at, settlement_open_at, state)
         VALUES (2026, 'Crashed', $1, $1, $1, $2, $3, $4, $5, 'reoffer')",
    )
    .bind(now - Duration::days(3))
    .bind(now - Duration::hours(1))
    .bind(now - Duration::minutes(1))
    .bind(now + Duration::days(1))
    .bind(now + Duration::days(2))
    .execute(&db)
    .await
    .unwrap();
    let _app = TestApp::spawn(db.clone()).await;
    assert!(eventually(|| async { announcements(&db).await.len() == bidders.len() }).await);
}
