//! Bidding over REST: shapes, refusals, idempotency, who sees what.
// Money literals are written dollars_cents (`125_00` is $125.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use crate::helpers::{assert_error, auction_in_bidding, published_item, stored_bids, TestApp};
use auuction::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

/// The app, and an item opening at $100.00 in an auction that closes in two hours.
async fn setup(db: PgPool) -> (TestApp, i64, i64) {
    let app = TestApp::spawn(db).await;
    let (auction, item) = app
        .item_up_for_bids(100_00, chrono::Duration::hours(2))
        .await;
    (app, auction, item)
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn bids_answer_in_the_spec_shapes_and_are_stored(db: PgPool) {
    let (app, _, item) = setup(db).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let bob = app.login_as("bob@example.org", &[Role::Bidder]).await;
    let path = format!("/api/items/it_{item}/bids");

    let r = ann
        .post(
            &path,
            json!({ "amount": 125.00, "maxProxyAmount": 200.00, "idempotencyKey": "b-9f2f" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with(&format!(
            "{{\"itemId\":\"it_{item}\",\"leading\":true,\"currentBid\":125.00"
        )),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["seq"], 1);

    // Bob bids 150: Ann's proxy answers, the price moves to 150 + one $10 step, Bob is outbid.
    let r = bob.bid(item, 150_00).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let text = r.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["leading"], false);
    assert!(text.contains("\"currentBid\":160.00"), "{text}");
    let ann_paddle: i32 =
        sqlx::query_scalar("SELECT paddle_number FROM users WHERE email = 'ann@example.org'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(body["leadingBidderId"], format!("p_{ann_paddle}"));
    assert!(
        !text.contains("ann@example.org") && !text.contains("200"),
        "no email, no maximum: {text}"
    );

    let rows = stored_bids(&app.db, item).await;
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].0, rows[0].2, rows[0].3), (1, 125_00, Some(200_00)));
    assert_eq!((rows[1].0, rows[1].2, rows[1].3), (2, 150_00, None));
    let (price, count, seq): (Option<i64>, i32, i64) = sqlx::query_as(
        "SELECT current_price, bid_count, last_seq FROM item_bidding WHERE item_id = $1",
    )
    .bind(item)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((price, count, seq), (Some(160_00), 2, 2));

    // Bob was never the leader, so no outbid email; a lead change queues one for the loser.
    let r = bob.bid(item, 250_00).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["leading"], true);
    let ann_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = 'ann@example.org'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let notices: Vec<(i64, String, Value)> =
        sqlx::query_as("SELECT user_id, type, payload FROM notifications")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!((notices[0].0, notices[0].1.as_str()), (ann_id, "outbid"));
    assert_eq!(notices[0].2["currentBidCents"], 250_00);

    // Ann takes the lead back (Bob's notice), then loses it again: she still has one email
    // waiting for this item, carrying the latest price.
    let price_cents = || async {
        sqlx::query_scalar::<_, i64>("SELECT current_price FROM item_bidding WHERE item_id = $1")
            .bind(item)
            .fetch_one(&app.db)
            .await
            .unwrap()
    };
    let r: Value = ann.bid(item, 300_00).await.json().await.unwrap();
    assert_eq!(r["leading"], true);
    let ann_price = price_cents().await;
    let r: Value = bob.bid(item, 400_00).await.json().await.unwrap();
    assert_eq!(r["leading"], true);
    let bob_price = price_cents().await;
    let notices: Vec<(i64, Value)> = sqlx::query_as(
        "SELECT user_id, payload FROM notifications WHERE type = 'outbid' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert_eq!(notices[0].0, ann_id);
    assert_eq!(notices[0].1["currentBidCents"], bob_price);
    assert_ne!(notices[1].0, ann_id, "Bob's notice");
    assert_eq!(notices[1].1["currentBidCents"], ann_price);
    // Once Ann's email is sent, the next outbid queues a new one.
    sqlx::query("UPDATE notifications SET status = 'sent', sent_at = now() WHERE user_id = $1")
        .bind(ann_id)
        .execute(&app.db)
        .await
        .unwrap();
    let r = ann.bid(item, 500_00).await;
    assert_eq!(r.json::<Value>().await.unwrap()["leading"], true);
    let r = bob.bid(item, 600_00).await;
    assert_eq!(r.json::<Value>().await.unwrap()["leading"], true);
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND status = 'scheduled'",
    )
    .bind(ann_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(waiting, 1);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_donor_and_managers_list_bids_without_anyones_maximum(db: PgPool) {
    let (app, _, item) = setup(db).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    ann.post(
        &format!("/api/items/it_{item}/bids"),
        json!({ "amount": 125, "maxProxyAmount": 999 }),
    )
    .await;
    let donor = app.log_in("donor@example.org").await;
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    for who in [&donor, &manager] {
        let r = who.get(&format!("/api/items/it_{item}/bids")).await;
        assert_eq!(r.status(), StatusCode::OK);
        let text = r.text().await.unwrap();
        assert!(text.contains("\"amount\":125.00"), "{text}");
        assert!(
            !text.contains("999") && !text.contains("max"),
            "no maximum shown: {text}"
        );
        assert!(!text.contains("ann@"), "{text}");
    }
    let bob = app.login_as("bob@example.org", &[Role::Bidder]).await;
    assert_error(
        bob.get(&format!("/api/items/it_{item}/bids")).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.anonymous()
            .get(&format!("/api/items/it_{item}/bids"))
            .await,
        401,
        "unauthenticated",
    )
    .await;
    assert_error(
        manager.get("/api/items/it_999999/bids").await,
        404,
        "not_found",
    )
    .await;

    let text = ann.get("/api/users/me/bids").await.text().await.unwrap();
    let mine: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(mine["bids"][0]["itemId"], format!("it_{item}"));
    assert_eq!(mine["bids"][0]["leading"], true);
    assert!(
        text.contains("\"myMaximum\":999.00") && text.contains("\"currentBid\":125.00"),
        "{text}"
    );
    let theirs: Value = bob.get("/api/users/me/bids").await.json().await.unwrap();
    assert_eq!(theirs["bids"], json!([]));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn bad_bids_are_refused_with_clear_errors_and_leave_nothing_behind(db: PgPool) {
    let (app, auction, item) = setup(db).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let path = format!("/api/items/it_{item}/bids");

    let r = ann.post(&path, json!({ "amount": 99.99 })).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("\"error\":\"bid_too_low\"") && text.contains("\"minimum\":100.00"),
        "{text}"
    );
    assert!(
        text.contains("$100.00"),
        "the refusal says the minimum: {text}"
    );
    assert_error(
        ann.post(&path, json!({ "amount": -5 })).await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        ann.post(&path, json!({ "amount": 100.001 })).await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        ann.post(&path, json!({ "amount": "lots" })).await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        ann.post(&path, json!({ "amount": 120, "maxProxyAmount": 110 }))
            .await,
        422,
        "max_below_amount",
    )
    .await;
    // Idempotency keys: 1 to 200 visible ASCII characters, checked where every bid path
    // meets; the header and the body go through the same check.
    let long = "k".repeat(201);
    for bad in ["", "has space", "nul\u{0}byte", "é", long.as_str()] {
        assert_error(
            ann.post(&path, json!({ "amount": 120, "idempotencyKey": bad }))
                .await,
            422,
            "invalid_idempotency_key",
        )
        .await;
    }
    let r = ann
        .client
        .post(ann.url(&path))
        .header("x-csrf-token", ann.csrf.clone().unwrap_or_default())
        .header("idempotency-key", "has space")
        .json(&json!({ "amount": 120 }))
        .send()
        .await
        .unwrap();
    assert_error(r, 422, "invalid_idempotency_key").await;
    assert_error(
        ann.post_raw(&path, "application/json", "{\"amount\": ")
            .await,
        400,
        "malformed_json",
    )
    .await;
    assert_error(
        ann.post("/api/items/it_999999/bids", json!({ "amount": 500 }))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.anonymous().bid(item, 500_00).await,
        401,
        "unauthenticated",
    )
    .await;

    // Unverified accounts cannot bid.
    app.register("new@example.org").await;
    let newbie = app.log_in("new@example.org").await;
    assert_error(newbie.bid(item, 500_00).await, 403, "email_not_verified").await;

    // Items that are not competitive, or not published, take no bids.
    let donor: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = 'donor@example.org'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let fixed = published_item(&app.db, auction, donor, 25_00, "fixed_price_event").await;
    assert_error(ann.bid(fixed, 500_00).await, 409, "not_biddable").await;
    let draft = published_item(&app.db, auction, donor, 25_00, "competitive").await;
    sqlx::query("UPDATE items SET status = 'draft' WHERE id = $1")
        .bind(draft)
        .execute(&app.db)
        .await
        .unwrap();
    assert_error(ann.bid(draft, 500_00).await, 409, "not_biddable").await;

    assert!(stored_bids(&app.db, item).await.is_empty());
    let seq: i64 = sqlx::query_scalar(
        "SELECT COALESCE(max(last_seq), 0) FROM item_bidding WHERE item_id = $1",
    )
    .bind(item)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(seq, 0, "refusals take no sequence number");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn bids_follow_the_auction_state_and_the_items_close(db: PgPool) {
    let (app, auction, item) = setup(db).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;

    // A manager's pause stops bidding at once; releasing it resumes.
    let r = manager
        .post(
            &format!("/api/auctions/a_{auction}/state"),
            json!({ "state": "paused" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_error(ann.bid(item, 100_00).await, 409, "bidding_paused").await;
    manager
        .post(
            &format!("/api/auctions/a_{auction}/state"),
            json!({ "state": "catalog" }),
        )
        .await;
    assert_error(ann.bid(item, 100_00).await, 409, "bidding_not_open").await;
    manager
        .post(
            &format!("/api/auctions/a_{auction}/state"),
            json!({ "state": "auto" }),
        )
        .await;
    assert_eq!(ann.bid(item, 100_00).await.status(), StatusCode::CREATED);

    // When the calendar's bidding close has passed, the item's book refuses.
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let now = chrono::Utc::now();
    let cal = json!({
        "year": 2026, "name": "Test auction",
        "registrationOpenAt": now - chrono::Duration::days(3), "catalogPublishAt": now - chrono::Duration::days(2),
        "biddingOpenAt": now - chrono::Duration::days(1), "biddingCloseAt": now - chrono::Duration::seconds(1),
        "reofferOpenAt": now + chrono::Duration::hours(1), "reofferCloseAt": now + chrono::Duration::hours(2),
        "settlementOpenAt": now + chrono::Duration::hours(3),
    });
    assert_eq!(
        admin
            .put(&format!("/api/auctions/a_{auction}"), cal)
            .await
            .status(),
        StatusCode::OK
    );
    assert_error(ann.bid(item, 500_00).await, 409, "bidding_closed").await;
    assert_eq!(stored_bids(&app.db, item).await.len(), 1);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_late_bid_extends_the_close_but_never_past_the_hard_deadline(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let donor = app.create_user("donor@example.org", &[Role::Donor]).await;
    // Closes in 30 s; a bid in the last 120 s extends to now + 120 s, capped at 60 s from now.
    let auction = auction_in_bidding(
        &app.db,
        chrono::Duration::seconds(30),
        120,
        Some(chrono::Duration::seconds(60)),
    )
    .await;
    let item = published_item(&app.db, auction, donor, 10_00, "competitive").await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let before = chrono::Utc::now();
    let body: Value = ann.bid(item, 10_00).await.json().await.unwrap();
    let closes: chrono::DateTime<chrono::Utc> = body["closesAt"].as_str().unwrap().parse().unwrap();
    let hard: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT hard_close_at FROM auctions")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(closes, hard, "extended to the hard deadline, not beyond");
    assert!(closes > before + chrono::Duration::seconds(50));
    let stored: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT closes_at FROM item_bidding WHERE item_id = $1")
            .bind(item)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, closes);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn idempotency_keys_replay_the_original_answer_byte_for_byte(db: PgPool) {
    let (app, _, item) = setup(db).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let bob = app.login_as("bob@example.org", &[Role::Bidder]).await;
    let path = format!("/api/items/it_{item}/bids");

    let first = ann
        .post(&path, json!({ "amount": 125, "idempotencyKey": "k-1" }))
        .await;
    let (status, text) = (first.status(), first.text().await.unwrap());
    assert_eq!(status, StatusCode::CREATED);
    // Someone else bids in between; the retry still returns the original answer.
    bob.bid(item, 200_00).await;
    let retry = ann
        .post(&path, json!({ "amount": 125, "idempotencyKey": "k-1" }))
        .await;
    assert_eq!(retry.status(), status);
    assert_eq!(retry.text().await.unwrap(), text);
    // The same key in the header works too.
    let via_header = ann
        .client
        .post(ann.url(&path))
        .header("x-csrf-token", ann.csrf.as_deref().unwrap())
        .header("idempotency-key", "k-1")
        .json(&json!({ "amount": 125 }))
        .send()
        .await
        .unwrap();
    assert_eq!(via_header.text().await.unwrap(), text);
    // Same key, other payload: 422. Other user, same key: their own key space.
    assert_error(
        ann.post(&path, json!({ "amount": 130, "idempotencyKey": "k-1" }))
            .await,
        422,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(
        bob.post(&path, json!({ "amount": 210, "idempotencyKey": "k-1" }))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(stored_bids(&app.db, item).await.len(), 3);

    // A refusal under a key is an answer too, and is replayed as given.
    let refused = ann
        .post(&path, json!({ "amount": 1, "idempotencyKey": "k-2" }))
        .await;
    let refused_text = refused.text().await.unwrap();
    assert!(refused_text.contains("bid_too_low"));
    assert_eq!(
        ann.post(&path, json!({ "amount": 1, "idempotencyKey": "k-2" }))
            .await
            .text()
            .await
            .unwrap(),
        refused_text
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn concurrent_duplicates_make_one_effect_and_survive_a_restart(db: PgPool) {
    let (app, _, item) = setup(db.clone()).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let path = format!("/api/items/it_{item}/bids");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = ann.client.clone();
        let url = ann.url(&path);
        let csrf = ann.csrf.clone().unwrap();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("x-csrf-token", csrf)
                .json(&json!({ "amount": 140, "idempotencyKey": "same" }))
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "every duplicate got the same answer: {answers:?}"
    );
    assert_eq!(answers[0].0, StatusCode::CREATED);
    assert_eq!(stored_bids(&app.db, item).await.len(), 1);

    // A second server on the same database (as after a restart) answers from Postgres.
    let app2 = TestApp::spawn(db).await;
    let ann2 = app2.log_in("ann@example.org").await;
    let retry = ann2
        .post(&path, json!({ "amount": 140, "idempotencyKey": "same" }))
        .await;
    assert_eq!((retry.status(), retry.text().await.unwrap()), answers[0]);
    assert_error(
        ann2.post(&path, json!({ "amount": 141, "idempotencyKey": "same" }))
            .await,
        422,
        "idempotency_key_reused",
    )
    .await;
}

/// A client that hangs up while its keyed bid is running must not leave the key stuck: the
/// retry gets the answer (and the bid happened once).
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_caller_hanging_up_mid_bid_does_not_wedge_its_idempotency_key(db: PgPool) {
    let (app, _, item) = setup(db).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let path = format!("/api/items/it_{item}/bids");
    for attempt in 0..5 {
        let key = format!("hangup-{attempt}");
        // Give up after a moment: the server's handler future is dropped mid-flight.
        let _ = ann
            .client
            .post(ann.url(&path))
            .header("x-csrf-token", ann.csrf.as_deref().unwrap())
            .timeout(std::time::Duration::from_micros(300 * (attempt + 1)))
            .json(&json!({ "amount": 100 + attempt * 20, "idempotencyKey": key }))
            .send()
            .await;
        let retry = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            ann.post(
                &path,
                json!({ "amount": 100 + attempt * 20, "idempotencyKey": key }),
            ),
        )
        .await
        .expect("the retry is answered, not stuck behind the abandoned attempt");
        let (status, body) = (retry.status(), retry.text().await.unwrap());
        assert!(
            status == StatusCode::CREATED || status == StatusCode::CONFLICT,
            "{status}: {body}"
        );
        // And from then on the key gives that same answer.
        let again = ann
            .post(
                &path,
                json!({ "amount": 100 + attempt * 20, "idempotencyKey": key }),
            )
            .await;
        assert_eq!(
            (again.status(), again.text().await.unwrap()),
            (status, body)
        );
    }
    // Five keys, at most five bids: no attempt ran twice.
    assert!(stored_bids(&app.db, item).await.len() <= 5);
}

/// The calendar moved earlier than bids already recorded: after a restart the book still
/// holds every recorded bid (no truncated replay colliding with stored sequence numbers),
/// and new bids are refused as closed.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn recorded_bids_replay_after_the_close_moves_before_them(db: PgPool) {
    let (app, auction, item) = setup(db.clone()).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let bob = app.login_as("bob@example.org", &[Role::Bidder]).await;
    assert_eq!(ann.bid(item, 100_00).await.status(), StatusCode::CREATED);
    assert_eq!(bob.bid(item, 120_00).await.status(), StatusCode::CREATED);
    sqlx::query("UPDATE auctions SET bidding_close_at = now() - interval '1 hour', state = 'paused' WHERE id = $1")
        .bind(auction)
        .execute(&db)
        .await
        .unwrap();
    let restarted = TestApp::spawn(db).await;
    let mut ws = restarted.ws().await;
    let snap = ws.subscribe(&format!("item:it_{item}")).await;
    assert_eq!(snap["seq"], 2, "{snap}");
    assert_eq!(snap["bidCount"], 2);
    let carl = restarted
        .login_as("carl@example.org", &[Role::Bidder])
        .await;
    assert_error(carl.bid(item, 500_00).await, 409, "bidding_closed").await;
}

/// `bids` has no per-row foreign keys (migration 0004); triggers keep the references
/// instead: an item or a user with bids cannot be deleted or renumbered.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn items_and_bidders_with_bids_cannot_be_deleted(db: PgPool) {
    let (app, auction, item) = setup(db).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let r = ann.bid(item, 125_00).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let ann_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = 'ann@example.org'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    for (what, sql, id) in [
        ("item", "DELETE FROM items WHERE id = $1", item),
        ("user", "DELETE FROM users WHERE id = $1", ann_id),
    ] {
        let e = sqlx::query(sql)
            .bind(id)
            .execute(&app.db)
            .await
            .expect_err(what);
        let db_error = e.as_database_error().unwrap();
        assert_eq!(db_error.code().unwrap(), "23503", "{what}: {e}");
        assert!(
            db_error.message().contains("has bids"),
            "the guard fired: {e}"
        );
    }
    assert_eq!(stored_bids(&app.db, item).await.len(), 1);
    // Without bids the trigger lets a delete through (it only guards references).
    let donor: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = 'donor@example.org'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let other = published_item(&app.db, auction, donor, 10_00, "competitive").await;
    sqlx::query("DELETE FROM item_bidding WHERE item_id = $1")
        .bind(other)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM items WHERE id = $1")
        .bind(other)
        .execute(&app.db)
        .await
        .unwrap();
}
