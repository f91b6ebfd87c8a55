//! Auctions: the current one, the admin's calendar, manager overrides, calendar flips.

use crate::helpers::{assert_error, calendar_json, TestApp};
use std::sync::Arc;

use auuction::{
    clock::{Clock, ManualClock},
    domain::Role,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn an_admin_creates_an_auction_whose_state_follows_the_calendar(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let anon = app.anonymous();
    assert_error(anon.get("/api/auctions/current").await, 404, "not_found").await;

    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let r = admin.post("/api/auctions", calendar_json(2026, -1)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert!(created["id"].as_str().unwrap().starts_with("a_"));
    assert_eq!(created["state"], "bidding");
    assert_eq!(created["stateOverridden"], false);
    assert_eq!(created["nextMilestone"]["name"], "bidding_close");
    assert_eq!(created["softCloseSeconds"], 120);

    let current: Value = anon
        .get("/api/auctions/current")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["id"], created["id"]);
    assert_eq!(current["year"], 2026);
    assert!(current["serverTime"].is_string());
    let by_id: Value = anon
        .get(&format!(
            "/api/auctions/{}",
            created["id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_id["name"], "Auction 2026");
    assert_error(anon.get("/api/auctions/a_999").await, 404, "not_found").await;
    assert_error(anon.get("/api/auctions/banana").await, 404, "not_found").await;

    // The stored state is persisted on create; the audit log records the creation.
    let stored: String = sqlx::query_scalar("SELECT state FROM auctions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, "bidding");
    let audit: Value = admin
        .get("/api/audit?entityType=auction")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["entries"][0]["action"], "auction.created");

    // An auction whose registration opens later does not displace the running one.
    assert_eq!(
        admin
            .post("/api/auctions", calendar_json(2027, 24 * 300))
            .await
            .status(),
        StatusCode::CREATED
    );
    let current: Value = anon
        .get("/api/auctions/current")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["year"], 2026);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn auction_writes_refuse_bad_calendars_wrong_roles_and_duplicates(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    assert_error(
        app.anonymous()
            .post("/api/auctions", calendar_json(2026, 1))
            .await,
        401,
        "unauthenticated",
    )
    .await;
    assert_error(
        manager.post("/api/auctions", calendar_json(2026, 1)).await,
        403,
        "forbidden",
    )
    .await;

    let mut bad = calendar_json(2026, 1);
    bad["biddingCloseAt"] = bad["biddingOpenAt"].clone();
    let body = assert_error(
        admin.post("/api/auctions", bad).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("bidding must close after it opens"));
    let mut bad = calendar_json(2026, 1);
    bad["reofferOpenAt"] = bad["biddingOpenAt"].clone();
    assert_error(
        admin.post("/api/auctions", bad).await,
        422,
        "validation_failed",
    )
    .await;
    let mut bad = calendar_json(2026, 1);
    bad["reofferCloseAt"] = bad["reofferOpenAt"].clone();
    assert_error(
        admin.post("/api/auctions", bad).await,
        422,
        "validation_failed",
    )
    .await;
    let mut bad = calendar_json(2026, 1);
    bad["biddingOpenAt"] = json!("next tuesday");
    assert_error(
        admin.post("/api/auctions", bad).await,
        422,
        "validation_failed",
    )
    .await;
    let mut bad = calendar_json(2026, 1);
    bad.as_object_mut().unwrap().remove("settlementOpenAt");
    assert_error(
        admin.post("/api/auctions", bad).await,
        422,
        "validation_failed",
    )
    .await;
    let mut bad = calendar_json(2026, 1);
    bad["name"] = json!("n".repeat(201));
    assert_error(
        admin.post("/api/auctions", bad).await,
        422,
        "validation_failed",
    )
    .await;
    let mut bad = calendar_json(1999, 1);
    bad["softCloseSeconds"] = json!(30);
    assert_error(
        admin.post("/api/auctions", bad).await,
        422,
        "validation_failed",
    )
    .await;
    let mut bad = calendar_json(2026, 1);
    bad["hardCloseAt"] = bad["biddingOpenAt"].clone();
    assert_error(
        admin.post("/api/auctions", bad).await,
        422,
        "validation_failed",
    )
    .await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM auctions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing half-written");

    assert_eq!(
        admin
            .post("/api/auctions", calendar_json(2026, 1))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_error(
        admin.post("/api/auctions", calendar_json(2026, 5)).await,
        409,
        "year_taken",
    )
    .await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn an_admin_edits_the_calendar_and_the_change_is_audited(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let created: Value = admin
        .post("/api/auctions", calendar_json(2026, 24))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["state"], "catalog");
    let path = format!("/api/auctions/{}", created["id"].as_str().unwrap());

    let mut edit = calendar_json(2026, -2);
    edit["name"] = json!("Spring Auction");
    edit["softCloseSeconds"] = json!(300);
    let r = admin.put(&path, edit.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let after: Value = r.json().await.unwrap();
    assert_eq!(after["state"], "bidding");
    assert_eq!(after["name"], "Spring Auction");
    assert_eq!(after["softCloseSeconds"], 300);

    let audit: Value = admin
        .get("/api/audit?entityType=auction")
        .await
        .json()
        .await
        .unwrap();
    let entry = &audit["entries"][0];
    assert_eq!(entry["action"], "auction.updated");
    assert_eq!(entry["before"]["name"], "Auction 2026");
    assert_eq!(entry["after"]["name"], "Spring Auction");

    let bidder = app.login_as("bidder@example.org", &[Role::Bidder]).await;
    assert_error(bidder.put(&path, edit.clone()).await, 403, "forbidden").await;
    assert_error(
        admin.put("/api/auctions/a_404", edit).await,
        404,
        "not_found",
    )
    .await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_manager_overrides_the_state_and_releases_it_with_audit_entries(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let bidder = app.login_as("bidder@example.org", &[Role::Bidder]).await;
    let created: Value = admin
        .post("/api/auctions", calendar_json(2026, -1))
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/auctions/{}/state", created["id"].as_str().unwrap());

    assert_error(
        bidder.post(&path, json!({ "state": "paused" })).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        manager.post(&path, json!({ "state": "frozen" })).await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        manager.post(&path, json!({ "state": 3 })).await,
        422,
        "validation_failed",
    )
    .await;

    let r = manager
        .post(
            &path,
            json!({ "state": "paused", "reason": "Power cut in the hall" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let paused: Value = r.json().await.unwrap();
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["stateOverridden"], true);
    // The scheduler does not undo a manager's override.
    auuction::scheduler::flip_due_states(&app.state)
        .await
        .unwrap();
    let current: Value = app
        .anonymous()
        .get("/api/auctions/current")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["state"], "paused");

    let released: Value = manager
        .post(&path, json!({ "state": "auto" }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(released["state"], "bidding");
    assert_eq!(released["stateOverridden"], false);

    let audit: Value = admin
        .get("/api/audit?entityType=auction")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "auction.state_overridden",
            "auction.state_overridden",
            "auction.created"
        ]
    );
    let pause = &audit["entries"][1];
    assert_eq!(pause["before"]["state"], "bidding");
    assert_eq!(pause["after"]["state"], "paused");
    assert_eq!(pause["after"]["reason"], "Power cut in the hall");
    assert_eq!(pause["actorName"], "User manager@example.org");
}

/// The state flips by itself at the calendar's time and the flip is persisted (so it
/// survives a restart) and audited as the system's.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_state_flips_by_itself_when_bidding_opens(db: PgPool) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = TestApp::builder().with_clock(clock.clone()).spawn(db).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let mut cal = calendar_json(2026, 0);
    let opens = clock.now() + chrono::Duration::hours(1);
    cal["biddingOpenAt"] = json!(opens);
    let created: Value = admin.post("/api/auctions", cal).await.json().await.unwrap();
    assert_eq!(created["state"], "catalog");
    // An hour later by the app's clock: the scheduler (which looks every second) flips it.
    clock.set(opens + chrono::Duration::seconds(1));

    let mut stored = String::new();
    for _ in 0..100 {
        stored = sqlx::query_scalar("SELECT state FROM auctions")
            .fetch_one(&app.db)
            .await
            .unwrap();
        if stored == "bidding" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stored, "bidding", "the scheduler persisted the flip");
    let (actor, before, after): (Option<i64>, Value, Value) = sqlx::query_as(
        "SELECT actor_id, before, after FROM audit_log WHERE action = 'auction.state_changed'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(actor, None);
    assert_eq!(before, json!({ "state": "catalog" }));
    assert_eq!(after, json!({ "state": "bidding" }));
}
