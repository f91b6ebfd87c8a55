//! The two holes the renovation closed in the bid path: one bad entry failing everyone's
//! batch, and the socket as an amplifier. Over real Postgres and real sockets.
// Money literals are written dollars_cents (`10_00` is $10.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use std::time::Duration;

use auuction::{
    domain::{Cents, ItemId, Role},
    engine::idempotency::request_hash,
};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{auction_in_bidding, published_item, stored_bids, TestApp, Ws};

/// Storage refuses one entry of a batch (a key stored by a write whose outcome the server
/// never learnt, the one way a stored key can collide): that bid alone is refused; every
/// other bid of its batch, from other bidders, is recorded; its bidder's retry finds the
/// stored answer.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_batch_with_a_poisoned_entry_still_commits_the_rest(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let donor = app.create_user("donor@example.org", &[Role::Donor]).await;
    let auction = auction_in_bidding(&app.db, chrono::Duration::hours(1), 0, None).await;
    // Two items on the same shard (the test app runs two, routed by id), so that their
    // bids share one journal and one batch.
    let first = published_item(&app.db, auction, donor, 5_00, "competitive").await;
    let _other_shard = published_item(&app.db, auction, donor, 5_00, "competitive").await;
    let second = published_item(&app.db, auction, donor, 5_00, "competitive").await;
    assert_eq!(first % 2, second % 2);
    let bidders = app.bidders(5).await;
    let mut sockets = Vec::new();
    for (_, token) in &bidders {
        let mut ws = Ws::connect(&app.base, Some(token)).await;
        ws.subscribe(&format!("item:it_{first}")).await;
        ws.subscribe(&format!("item:it_{second}")).await;
        sockets.push(ws);
    }
    // The key ann will use is already stored, as if a commit had landed without its answer.
    let (ann, _) = bidders[0];
    let stored_answer = r#"{"stored":"before"}"#;
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, scope, key, request_hash, response_status, response_body)
         VALUES ($1, 'bid', 'k-lost', $2, 201, $3)",
    )
    .bind(ann)
    .bind(request_hash(ItemId(second), Cents(10_00), None).to_vec())
    .bind(stored_answer)
    .execute(&app.db)
    .await
    .unwrap();

    // Hold the journal's next write, so the bids behind it gather into one batch.
    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE bids IN EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let bid = |reference: &str, item: i64, amount: &str, key: Option<&str>| {
        let mut frame = json!({ "type": "bid", "ref": reference, "itemId": format!("it_{item}"), "amount": amount.parse::<f64>().unwrap() });
        if let Some(key) = key {
            frame["idempotencyKey"] = json!(key);
        }
        frame
    };
    sockets[1].send(bid("held", first, "10", None)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    sockets[2].send(bid("b2", first, "11", None)).await;
    sockets[0]
        .send(bid("poisoned", second, "10", Some("k-lost")))
        .await;
    sockets[3].send(bid("b3", first, "12", None)).await;
    sockets[4]
        .send(bid("b4", first, "13", Some("k-fine")))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let failed_before = app.metric("auuction_journal_failed_commits_total").await;
    blocker.commit().await.unwrap();

    let status = |r: &Value| (r["status"].as_u64().unwrap(), r["body"]["error"].clone());
    assert_eq!(status(&sockets[1].result_of("held").await).0, 201);
    assert_eq!(status(&sockets[2].result_of("b2").await).0, 201);
    assert_eq!(status(&sockets[3].result_of("b3").await).0, 201);
    assert_eq!(status(&sockets[4].result_of("b4").await).0, 201);
    assert_eq!(
        status(&sockets[0].result_of("poisoned").await),
        (500, json!("bid_not_recorded"))
    );
    assert_eq!(
        stored_bids(&app.db, first).await.len(),
        4,
        "the others are recorded"
    );
    assert!(stored_bids(&app.db, second).await.is_empty());
    assert!(
        app.metric("auuction_journal_failed_commits_total").await > failed_before,
        "the batch holding the poisoned entry was refused as a whole first"
    );

    // The retry gets what was stored under the key, byte for byte.
    sockets[0]
        .send(bid("retry", second, "10", Some("k-lost")))
        .await;
    assert_eq!(sockets[0].raw_result_body("retry").await, stored_answer);
    // And the item takes bids again.
    let r = sockets[1].bid("after", second, "10", None).await;
    assert_eq!(r["status"], 201, "{r}");
}

/// A key Postgres could not store (a NUL byte) never reaches the journal: refused at once,
/// on the socket as over REST, and the bids around it go through.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_key_postgres_cannot_store_is_refused_before_the_journal(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (_, item) = app.item_up_for_bids(5_00, chrono::Duration::hours(1)).await;
    let bidders = app.bidders(2).await;
    let mut ann = Ws::connect(&app.base, Some(&bidders[0].1)).await;
    let mut bob = Ws::connect(&app.base, Some(&bidders[1].1)).await;
    ann.send(json!({ "type": "bid", "ref": "nul", "itemId": format!("it_{item}"), "amount": 10, "idempotencyKey": "a\u{0}b" }))
        .await;
    bob.send(json!({ "type": "bid", "ref": "ok", "itemId": format!("it_{item}"), "amount": 11, "idempotencyKey": "b-ok" }))
        .await;
    let refused = ann.result_of("nul").await;
    assert_eq!(refused["status"], 422);
    assert_eq!(refused["body"]["error"], "invalid_idempotency_key");
    assert_eq!(bob.result_of("ok").await["status"], 201);
    assert_eq!(stored_bids(&app.db, item).await.len(), 1);
}

/// A guest flooding subscribe frames (the live item, its auction and hundreds of made-up
/// items, again and again) gets `slow_down`, holds a bounded number of topics, and costs a
/// bounded number of snapshots; a bidder on the same item is served meanwhile.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_socket_flooding_subscribes_costs_bounded_work(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (auction, item) = app.item_up_for_bids(5_00, chrono::Duration::hours(1)).await;
    let bidders = app.bidders(1).await;
    let mut bidder = Ws::connect(&app.base, Some(&bidders[0].1)).await;
    bidder.subscribe(&format!("item:it_{item}")).await;
    let built_before = app.metric("auuction_ws_snapshots_built_total").await;

    let mut flood = app.ws().await;
    let mut topics = vec![format!("item:it_{item}"), format!("auction:a_{auction}")];
    topics.extend((0..300).map(|i| format!("item:it_{}", 5_000_000 + i)));
    let frame = json!({ "type": "subscribe", "topics": topics });
    for _ in 0..300 {
        flood.send(frame.clone()).await;
    }
    // The bidder is answered while the flood is being read.
    let r = bidder.bid("during", item, "10", None).await;
    assert_eq!(r["status"], 201, "{r}");
    // Read what the flooder got until its slow-down shows.
    let mut slowed = false;
    for _ in 0..2000 {
        let m = flood.next().await;
        if m["type"] == "error" && m["error"] == "slow_down" {
            slowed = true;
            break;
        }
    }
    assert!(slowed, "the flood is told to slow down");
    let built = app.metric("auuction_ws_snapshots_built_total").await - built_before;
    assert!(built <= 8.0, "snapshots come from the cache: {built} built");
    let subscriptions = app.metric("auuction_ws_subscriptions").await;
    assert!(
        subscriptions <= 3.0,
        "made-up items are not followed: {subscriptions}"
    );
    assert!(app.metric("auuction_ws_frames_refused_total").await > 0.0);
}

/// One address holds at most `WS_MAX_SOCKETS_PER_ADDRESS` sockets; closing one frees a place.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn one_address_holds_a_bounded_number_of_sockets(db: PgPool) {
    let app = TestApp::builder()
        .with_config(|c| c.ws_max_sockets_per_address = 3)
        .spawn(db)
        .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app.ws().await);
    }
    let url = format!("{}/ws", app.base.replacen("http", "ws", 1));
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"], "too_many_connections");
        }
        other => panic!("a fourth socket must be refused: {other:?}"),
    }
    assert_eq!(app.metric("auuction_ws_sockets_refused_total").await, 1.0);
    drop(open.pop());
    // The server notices the close, then takes a new socket.
    for _ in 0..100 {
        if app.metric("auuction_ws_connections").await < 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(tokio_tungstenite::connect_async(url.as_str()).await.is_ok());
}
