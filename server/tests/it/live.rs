//! Live bidding over real WebSocket clients: two clients see each other's bids, snapshots,
//! outbid notices, soft-close notices, protocol errors and the Origin check.
// Money literals are written dollars_cents (`125_00` is $125.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use crate::helpers::{auction_in_bidding, published_item, stored_bids, TestApp, Ws};
use std::sync::Arc;

use auuction::{clock::ManualClock, domain::Role};
use futures_util::SinkExt;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn two_clients_see_each_others_bids_live(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (auction, item) = app
        .item_up_for_bids(50_00, chrono::Duration::hours(1))
        .await;
    app.create_user("ann@example.org", &[Role::Bidder]).await;
    app.create_user("bob@example.org", &[Role::Bidder]).await;
    let mut ann = app.ws_as("ann@example.org").await;
    let mut bob = app.ws_as("bob@example.org").await;
    let mut watcher = app.ws().await;

    let topic = format!("item:it_{item}");
    let snap = watcher.subscribe(&topic).await;
    assert_eq!(snap["topic"], topic);
    assert_eq!(snap["currentBid"], json!(null));
    assert_eq!(snap["seq"], 0);
    assert_eq!(snap["closed"], false);
    ann.subscribe(&topic).await;
    bob.subscribe(&topic).await;

    let result = ann.bid("a1", item, "60", Some("100")).await;
    assert_eq!(result["status"], 201);
    assert_eq!(result["body"]["leading"], true);
    for ws in [&mut watcher, &mut bob, &mut ann] {
        let price = ws.next_of("price").await;
        assert_eq!(price["itemId"], format!("it_{item}"));
        assert_eq!(price["seq"], 1);
        assert_eq!(price["bidCount"], 1);
        assert_eq!(price["currentBid"], json!(60.0));
    }

    // Bob outbids Ann's maximum: Ann, and only Ann, gets `outbid`.
    let result = bob.bid("b1", item, "120", None).await;
    assert_eq!(result["body"]["leading"], true);
    let outbid = ann.next_of("outbid").await;
    assert_eq!(outbid["itemId"], format!("it_{item}"));
    assert_eq!(outbid["seq"], 2);
    let price = watcher.next_of("price").await;
    assert_eq!(price["seq"], 2);
    assert!(price["leadingBidderId"].as_str().unwrap().starts_with("p_"));

    // A reconnecting client resyncs from the snapshot.
    let mut late = app.ws().await;
    let snap = late.subscribe(&topic).await;
    assert_eq!(snap["seq"], 2);
    assert_eq!(snap["bidCount"], 2);

    // Clock sync.
    watcher
        .send(json!({ "type": "ping", "clientTime": 1234.5 }))
        .await;
    let pong = watcher.next_of("pong").await;
    assert_eq!(pong["clientTime"], 1234.5);
    let server = pong["serverTime"].as_i64().unwrap();
    assert!((server - chrono::Utc::now().timestamp_millis()).abs() < 5_000);

    // The auction topic: a snapshot listing live items, then their prices.
    let snap = watcher.subscribe(&format!("auction:a_{auction}")).await;
    assert_eq!(snap["state"], "bidding");
    assert_eq!(snap["items"][0]["itemId"], format!("it_{item}"));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_socket_refuses_what_it_cannot_use(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (_, item) = app
        .item_up_for_bids(50_00, chrono::Duration::hours(1))
        .await;
    let mut guest = app.ws().await;
    let r = guest.bid("g", item, "60", None).await;
    assert_eq!(r["status"], 401);
    assert_eq!(r["body"]["error"], "unauthenticated");
    guest
        .send(json!({ "type": "subscribe", "topics": ["user:1"] }))
        .await;
    assert_eq!(guest.next_of("error").await["error"], "bad_topic");
    guest
        .send(json!({ "type": "bid", "itemId": "it_1", "amount": 1.005 }))
        .await;
    assert_eq!(guest.next_of("error").await["error"], "bad_message");
    guest
        .socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            "nonsense".into(),
        ))
        .await
        .unwrap();
    assert_eq!(guest.next_of("error").await["error"], "bad_message");

    // A page from another site may not open a socket with the visitor's cookie.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("{}/ws", app.base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
    let mut request = format!("{}/ws", app.base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "http://127.0.0.1".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn subscribers_hear_soft_close_extensions_and_the_close(db: PgPool) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = TestApp::builder().with_clock(clock.clone()).spawn(db).await;
    let donor = app.create_user("donor@example.org", &[Role::Donor]).await;
    // Closes in 3 s; the soft-close window is 2 s, the hard deadline 4 s away.
    let auction = auction_in_bidding(
        &app.db,
        chrono::Duration::seconds(3),
        2,
        Some(chrono::Duration::seconds(4)),
    )
    .await;
    let item = published_item(&app.db, auction, donor, 5_00, "competitive").await;
    app.create_user("ann@example.org", &[Role::Bidder]).await;
    let mut ann = app.ws_as("ann@example.org").await;
    let snap = ann.subscribe(&format!("item:it_{item}")).await;
    let original: chrono::DateTime<chrono::Utc> =
        snap["closesAt"].as_str().unwrap().parse().unwrap();
    // Inside the last 2 s, a bid moves the close later.
    clock.set(original - chrono::Duration::milliseconds(1500));
    let r = ann.bid("late", item, "5", None).await;
    assert_eq!(r["status"], 201, "{r}");
    let closing = ann.next_of("closing").await;
    assert_eq!(closing["closed"], false);
    let extended: chrono::DateTime<chrono::Utc> =
        closing["closesAt"].as_str().unwrap().parse().unwrap();
    assert!(extended > original);
    // And when it comes, the close itself is announced.
    clock.set(extended + chrono::Duration::milliseconds(1));
    let closed = ann.next_of("closing").await;
    assert_eq!(closed["closed"], true);
    assert_eq!(closed["closesAt"], closing["closesAt"]);
    let r = ann.bid("too-late", item, "50", None).await;
    assert_eq!(r["status"], 409);
    assert_eq!(r["body"]["error"], "bidding_closed");
}

/// Bids over the socket with idempotency keys (what client-js sends): a retry, on the same
/// socket or another, gets the original answer byte for byte and makes no second bid; the
/// same key with another amount is 422; after a restart the key is answered from Postgres.
/// Bids sent back to back without waiting are applied in the order they were sent.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn keyed_and_pipelined_socket_bids(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let (_, item) = app
        .item_up_for_bids(50_00, chrono::Duration::hours(1))
        .await;
    app.create_user("ann@example.org", &[Role::Bidder]).await;
    let ann_token = app.bearer_token("ann@example.org").await;
    let mut ann = Ws::connect(&app.base, Some(&ann_token)).await;
    let mut ann_phone = Ws::connect(&app.base, Some(&ann_token)).await;
    let keyed = |reference: &str, amount: f64, key: &str| json!({ "type": "bid", "ref": reference, "itemId": format!("it_{item}"), "amount": amount, "idempotencyKey": key });
    ann.send(keyed("k1", 60.0, "key-1")).await;
    let first = ann.raw_result_body("k1").await;
    assert!(first.contains("\"leading\":true"), "{first}");
    // The same key twice at once (a double click): one effect, the same answer.
    ann.send(keyed("k1-again", 60.0, "key-1")).await;
    ann_phone.send(keyed("k1-phone", 60.0, "key-1")).await;
    assert_eq!(ann.raw_result_body("k1-again").await, first);
    assert_eq!(ann_phone.raw_result_body("k1-phone").await, first);
    ann.send(keyed("k1-other", 70.0, "key-1")).await;
    let other = ann.result_of("k1-other").await;
    assert_eq!(other["status"], 422);
    assert_eq!(other["body"]["error"], "idempotency_key_reused");
    assert_eq!(stored_bids(&app.db, item).await.len(), 1);

    // Five raises sent without waiting: each leads in turn, seq follows the sending order.
    let refs = ["p1", "p2", "p3", "p4", "p5"];
    for (i, r) in refs.iter().enumerate() {
        ann.send(keyed(r, 100.0 + 10.0 * i as f64, &format!("pipe-{i}")))
            .await;
    }
    let mut seqs = Vec::new();
    for r in refs {
        let result = ann.result_of(r).await;
        assert_eq!(result["status"], 201, "{result}");
        seqs.push(result["body"]["seq"].as_i64().unwrap());
    }
    assert_eq!(seqs, vec![2, 3, 4, 5, 6]);
    // Every answer given on a socket is timed, refusals and stored answers too: 9 so far.
    let metrics = app.anonymous().get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "auuction_bid_answer_seconds_count 9"),
        "{metrics}"
    );

    // A second server on the same database, as after a restart: the key is known there only
    // through Postgres.
    let app2 = TestApp::spawn(db).await;
    let mut ann2 = app2.ws_as("ann@example.org").await;
    // Its retry must wait for a Postgres lookup; fresh bids sent right behind it follow it
    // and keep their order.
    ann2.send(keyed("k1-restart", 60.0, "key-1")).await;
    for (i, r) in ["q1", "q2", "q3"].iter().enumerate() {
        ann2.send(keyed(
            r,
            200.0 + 10.0 * i as f64,
            &format!("after-restart-{i}"),
        ))
        .await;
    }
    assert_eq!(ann2.raw_result_body("k1-restart").await, first);
    let mut seqs = Vec::new();
    for r in ["q1", "q2", "q3"] {
        let result = ann2.result_of(r).await;
        assert_eq!(result["status"], 201, "{result}");
        seqs.push(result["body"]["seq"].as_i64().unwrap());
    }
    assert_eq!(seqs, vec![7, 8, 9]);
    assert_eq!(stored_bids(&app2.db, item).await.len(), 9);
}

/// A calendar change that lands while an item's book is being loaded is not lost: the load
/// that may have read the old calendar is superseded by one that reads the new.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_calendar_change_during_a_book_load_is_not_lost(db: PgPool) {
    use auuction::domain::{AuctionId, AuctionState, ItemId};
    let app = TestApp::spawn(db).await;
    let donor = app.create_user("donor@example.org", &[Role::Donor]).await;
    let auction = auction_in_bidding(&app.db, chrono::Duration::hours(1), 0, None).await;
    // Published after the engine started: its book is loaded on first use.
    let item = published_item(&app.db, auction, donor, 5_00, "competitive").await;

    // Hold the load after it has read the item and its calendar, before it reads the bids.
    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE bids IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let engine = app.state.engine.clone();
    let first_use = tokio::spawn(async move { engine.live_state(ItemId(item)).await });
    let waiting_for_bids = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'bids'::regclass",
        )
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while waiting_for_bids().await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the load never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // The manager moves the close two hours later while that load waits.
    let new_close: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("UPDATE auctions SET bidding_close_at = bidding_close_at + interval '2 hours' WHERE id = $1 RETURNING bidding_close_at")
            .bind(auction)
            .fetch_one(&app.db)
            .await
            .unwrap();
    app.state
        .engine
        .calendar_changed(AuctionId(auction), AuctionState::Bidding, false)
        .await;
    blocker.commit().await.unwrap();
    first_use.await.unwrap();

    // Whatever order the loads finish in, the book that serves bids has the new close.
    let mut ann = app.ws().await;
    let snap = ann.subscribe(&format!("item:it_{item}")).await;
    let closes: chrono::DateTime<chrono::Utc> = snap["closesAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(closes, new_close, "{snap}");
}
