//! The reoffer race over the real database: buyers on REST and on sockets buying the same
//! few units at the same instant. Exactly the units there are get sold, every buyer gets an
//! answer, each sale has its commitment, and neither a database outage nor a SIGKILL in the
//! middle sells a unit twice or acknowledges one that was not recorded.
// Money literals are written dollars_cents (`125_00` is $125.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use std::{collections::HashMap, sync::Arc, time::Duration as StdDuration};

use auuction::domain::{ItemId, Role};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::Barrier;

use crate::helpers::{
    auction_in_reoffer, bearer_token, free_port, healthy_within, serve, ServerProcess, TestApp, Ws,
};

/// A published item of `kind` with `units` and, when given, the donor's reoffer price.
async fn item_with_units(
    db: &PgPool,
    auction: i64,
    donor: i64,
    kind: &str,
    units: i32,
    reoffer_price: Option<i64>,
) -> i64 {
    let item: i64 = sqlx::query_scalar(
        "INSERT INTO items (auction_id, donor_id, type, title, category_id, opening_min_bid, quantity_total, status)
         VALUES ($1, $2, $3, 'Pie of the Month', 3, 5000, $4, 'published') RETURNING id",
    )
    .bind(auction)
    .bind(donor)
    .bind(kind)
    .bind(units)
    .fetch_one(db)
    .await
    .unwrap();
    if let Some(price) = reoffer_price {
        sqlx::query(
            "INSERT INTO item_reoffer_settings (item_id, participate, price) VALUES ($1, true, $2)",
        )
        .bind(item)
        .bind(price)
        .execute(db)
        .await
        .unwrap();
    }
    item
}

/// What the database holds for an item's reoffer sales, read in one snapshot: right after
/// a SIGKILL the killed server's last commit may still land between two reads.
async fn sales(db: &PgPool, item: i64) -> (i32, Vec<(i64, i64, i32, i64)>) {
    let mut tx = db.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await
        .unwrap();
    let sold: i32 = sqlx::query_scalar("SELECT quantity_sold FROM items WHERE id = $1")
        .bind(item)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let commitments = sqlx::query_as(
        "SELECT id, user_id, quantity, price_each FROM commitments
          WHERE item_id = $1 AND source = 'reoffer' ORDER BY id",
    )
    .bind(item)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (sold, commitments)
}

/// One buyer's answer: (status, body), from REST or from a socket's `buy_result`.
type Answer = (u16, Value);

async fn buy_rest(base: &str, token: &str, item: i64, key: &str) -> Answer {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/items/it_{item}/buy"))
        .bearer_auth(token)
        .json(&json!({ "quantity": 1, "idempotencyKey": key }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn buy_socket(ws: &mut Ws, item: i64, key: &str) -> Answer {
    ws.send(json!({ "type": "buy", "ref": key, "itemId": format!("it_{item}"), "quantity": 1, "idempotencyKey": key }))
        .await;
    loop {
        let m = ws.next_of("buy_result").await;
        if m["ref"] == key {
            return (m["status"].as_u64().unwrap() as u16, m["body"].clone());
        }
    }
}

/// The commitment id a 201 names, as a number.
fn commitment(body: &Value) -> i64 {
    TestApp::num(&body["commitmentId"])
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn buyers_on_rest_and_sockets_race_and_exactly_the_units_there_are_get_sold(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let donor = app.create_user("donor@example.org", &[Role::Donor]).await;
    let auction = auction_in_reoffer(&db).await;
    // Three units of a fixed-price item at $50, two of a competitive item nobody bid on,
    // offered again at the donor's $40.
    let seats = item_with_units(&db, auction, donor, "fixed_price_item", 3, None).await;
    let pies = item_with_units(&db, auction, donor, "competitive", 2, Some(40_00)).await;
    for item in [seats, pies] {
        app.state.engine.item_changed(ItemId(item)).await;
    }
    let mut watcher = app.ws().await;
    for item in [seats, pies] {
        let snap = watcher.subscribe(&format!("item:it_{item}")).await;
        assert!(snap["quantityRemaining"].as_u64().unwrap() > 0, "{snap}");
    }

    // Forty buyers: half on REST, half on sockets, all let go at once.
    let buyers = app.bidders(40).await;
    let mut sockets = Vec::new();
    for (_, token) in &buyers[20..] {
        sockets.push(Ws::connect(&app.base, Some(token)).await);
    }
    let barrier = Arc::new(Barrier::new(40));
    let mut tasks = Vec::new();
    for (i, (user, token)) in buyers[..20].iter().enumerate() {
        let (base, token, barrier, user) =
            (app.base.clone(), token.clone(), barrier.clone(), *user);
        let item = if i % 2 == 0 { seats } else { pies };
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            (
                user,
                item,
                buy_rest(&base, &token, item, &format!("rest-{i}")).await,
            )
        }));
    }
    for (i, mut ws) in sockets.into_iter().enumerate() {
        let (barrier, user) = (barrier.clone(), buyers[20 + i].0);
        let item = if i % 2 == 0 { seats } else { pies };
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            (
                user,
                item,
                buy_socket(&mut ws, item, &format!("ws-{i}")).await,
            )
        }));
    }
    let answers: Vec<(i64, i64, Answer)> = join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    // Every buyer answered: a sale or sold out, nothing else.
    assert_eq!(answers.len(), 40);
    for (item, units, price) in [(seats, 3, 50_00), (pies, 2, 40_00)] {
        let won: Vec<&(i64, i64, Answer)> = answers
            .iter()
            .filter(|(_, i, (s, _))| *i == item && *s == 201)
            .collect();
        let sold_out = answers
            .iter()
            .filter(|(_, i, (s, b))| *i == item && *s == 409 && b["error"] == "sold_out")
            .count();
        assert_eq!(won.len(), units, "item {item}: {answers:?}");
        assert_eq!(won.len() + sold_out, 20, "item {item}: {answers:?}");
        // Each sale is one commitment, to its buyer, at the reoffer price; the counts agree.
        let (quantity_sold, commitments) = sales(&db, item).await;
        assert_eq!(quantity_sold, units as i32);
        let mut recorded: Vec<(i64, i64)> = commitments
            .iter()
            .map(|(id, user, _, _)| (*id, *user))
            .collect();
        recorded.sort();
        let mut answered: Vec<(i64, i64)> = won
            .iter()
            .map(|(user, _, (_, body))| (commitment(body), *user))
            .collect();
        answered.sort();
        assert_eq!(recorded, answered);
        assert!(commitments.iter().all(|c| c.2 == 1 && c.3 == price));
        // The remaining counts the buyers were told went down one by one to zero.
        let mut remaining: Vec<u64> = won
            .iter()
            .map(|(_, _, (_, b))| b["quantityRemaining"].as_u64().unwrap())
            .collect();
        remaining.sort();
        assert_eq!(remaining, (0..units as u64).collect::<Vec<_>>());
    }

    // The watcher heard each item's capacity fall to zero, and the sold-out item closed.
    let mut last = HashMap::new();
    while last.len() < 2 || last.values().any(|left: &u64| *left > 0) {
        let m = watcher.next_of("capacity").await;
        last.insert(
            m["itemId"].as_str().unwrap().to_string(),
            m["quantityRemaining"].as_u64().unwrap(),
        );
    }
    let status: Vec<String> =
        sqlx::query_scalar("SELECT status FROM items WHERE id = ANY($1) ORDER BY id")
            .bind(vec![seats, pies])
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(status, vec!["closed", "closed"]);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn buys_outside_the_phase_or_beyond_the_stock_are_refused_plainly(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let donor = app.create_user("donor@example.org", &[Role::Donor]).await;
    let auction = auction_in_reoffer(&db).await;
    let item = item_with_units(&db, auction, donor, "fixed_price_item", 3, Some(25_00)).await;
    app.state.engine.item_changed(ItemId(item)).await;
    let buyers = app.bidders(2).await;
    let path = format!("/api/items/it_{item}/buy");
    let client = app.api_client(&buyers[0].1);

    // A sale, then its retry: the same bytes; the same key with another payload: 422.
    let first = client
        .post(&path, json!({ "quantity": 1, "idempotencyKey": "buy-1" }))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = first.text().await.unwrap();
    let again = client
        .post(&path, json!({ "quantity": 1, "idempotencyKey": "buy-1" }))
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.text().await.unwrap(), first);
    let other = client
        .post(&path, json!({ "quantity": 2, "idempotencyKey": "buy-1" }))
        .await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(sales(&db, item).await.0, 1);
    let body: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(body["quantityPurchased"], 1);
    assert_eq!(body["priceEach"], json!(25.0));
    assert_eq!(body["quantityRemaining"], 2);

    // Four of three: "only 3 left", nothing sold.
    let r = client.post(&path, json!({ "quantity": 3 })).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_enough_left");
    assert_eq!(body["quantityRemaining"], 2);
    // Zero, too many for one purchase, or not a number: 4xx in the spec's shape.
    for bad in [
        json!({ "quantity": 0 }),
        json!({ "quantity": 21 }),
        json!({ "quantity": "two" }),
    ] {
        let r = client.post(&path, bad.clone()).await;
        assert!(r.status().is_client_error(), "{bad}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{body}"
        );
    }
    // Guests cannot buy.
    assert_eq!(
        app.anonymous()
            .post(&path, json!({ "quantity": 1 }))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sales(&db, item).await.0, 1);

    // A manager closes the reoffer: buys are refused as over.
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let r = manager
        .post(
            &format!("/api/auctions/a_{auction}/reoffer/state"),
            json!({ "state": "close", "reason": "end of the evening" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = client.post(&path, json!({ "quantity": 1 })).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "reoffer_closed", "{body}");
    assert_eq!(sales(&db, item).await.0, 1);
    // Audited, with the reason.
    let audited: Vec<(String, Value)> = sqlx::query_as(
        "SELECT action, after FROM audit_log WHERE entity_type = 'auction' AND entity_id = $1",
    )
    .bind(auction)
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(
        audited
            .iter()
            .any(|(a, after)| a == "auction.state_overridden"
                && after["state"] == "closed"
                && after["reason"] == "end of the evening"),
        "{audited:?}"
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_database_stopping_mid_race_refuses_buys_and_acknowledges_none_it_lost(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let donor = app.create_user("donor@example.org", &[Role::Donor]).await;
    let auction = auction_in_reoffer(&db).await;
    let units = 12;
    let item = item_with_units(&db, auction, donor, "fixed_price_item", units, None).await;
    app.state.engine.item_changed(ItemId(item)).await;
    let buyers = app.bidders(30).await;
    let mut sockets = Vec::new();
    for (_, token) in &buyers {
        sockets.push(Ws::connect(&app.base, Some(token)).await);
    }

    // Buyers take turns; a third of the way in, the database stops; later it comes back.
    let mut answers: Vec<(usize, Answer)> = Vec::new();
    let mut outage = None;
    for (round, socket) in sockets.iter_mut().enumerate() {
        if round == 4 {
            outage = Some(app.database_outage().await);
        }
        if round == 16 {
            outage.take().expect("began").end().await;
        }
        let mut answer = buy_socket(socket, item, &format!("k{round}")).await;
        if round == 16 {
            // Back: the same key again until the database answers (a retry is safe).
            let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
            while answer.0 == 503 && std::time::Instant::now() < deadline {
                tokio::time::sleep(StdDuration::from_millis(100)).await;
                answer = buy_socket(socket, item, &format!("k{round}")).await;
            }
        }
        match answer.0 {
            201 => {}
            503 => {
                assert_eq!(answer.1["error"], "storage_unavailable", "{answer:?}");
                assert!((4..16).contains(&round), "503 only in the outage: {round}");
            }
            409 => assert_eq!(answer.1["error"], "sold_out", "{answer:?}"),
            other => panic!("round {round}: {other} {answer:?}"),
        }
        answers.push((round, answer));
    }
    let refused = answers.iter().filter(|(_, (s, _))| *s == 503).count();
    assert!(refused >= 8, "the outage refused buys: {answers:?}");
    // Every 201 is a commitment to its buyer; nothing else was sold; and the rest sold out.
    let (sold, commitments) = sales(&db, item).await;
    let acknowledged: Vec<(i64, i64)> = answers
        .iter()
        .filter(|(_, (s, _))| *s == 201)
        .map(|(round, (_, b))| (commitment(b), buyers[*round].0))
        .collect();
    let recorded: Vec<(i64, i64)> = commitments.iter().map(|c| (c.0, c.1)).collect();
    assert_eq!(acknowledged, recorded);
    assert_eq!(sold, units, "every unit sold once the database was back");
    assert_eq!(recorded.len(), units as usize);
    assert!(answers
        .iter()
        .skip_while(|(_, (s, _))| *s != 409)
        .all(|(_, (s, _))| *s == 409));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn sigkill_mid_race_then_restart_sells_each_unit_once(db: PgPool) {
    let setup = TestApp::spawn(db.clone()).await;
    let url = setup.database_url();
    let donor = setup.create_user("donor@example.org", &[Role::Donor]).await;
    let auction = auction_in_reoffer(&db).await;
    let units = 1000;
    let item = item_with_units(&db, auction, donor, "fixed_price_item", units, None).await;
    let buyers = 60;
    for i in 0..buyers {
        setup
            .create_user(&format!("r{i}@example.org"), &[Role::Bidder])
            .await;
    }
    drop(setup);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = std::env::temp_dir().join(format!("auuction-race-{}", uuid::Uuid::new_v4()));
    let start_server = || async {
        let server = ServerProcess::start(&mut serve(&url, port, &dir));
        assert!(
            healthy_within(&base, StdDuration::from_secs(10)).await,
            "server did not start"
        );
        server
    };
    let server = start_server().await;
    let mut tokens = Vec::new();
    for i in 0..buyers {
        tokens.push(bearer_token(&base, &format!("r{i}@example.org")).await);
    }

    // Sixty buyers each buy one unit at a time, again and again, over their sockets; the
    // server is killed while they do.
    let acked = Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let mut tasks = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let (base, token, acked) = (base.clone(), token.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut ws = Ws::connect(&base, Some(&token)).await;
            for round in 0..100 {
                let key = format!("b{i}-{round}");
                let frame = json!({ "type": "buy", "ref": key, "itemId": format!("it_{item}"), "quantity": 1, "idempotencyKey": key });
                if futures_util::SinkExt::send(
                    &mut ws.socket,
                    tokio_tungstenite::tungstenite::Message::Text(frame.to_string().into()),
                )
                .await
                .is_err()
                {
                    return;
                }
                loop {
                    let next = tokio::time::timeout(
                        StdDuration::from_secs(5),
                        futures_util::StreamExt::next(&mut ws.socket),
                    )
                    .await;
                    let Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) = next
                    else {
                        return;
                    };
                    let m: Value = serde_json::from_str(text.as_str()).unwrap();
                    if m["type"] == "buy_result" && m["ref"] == key.as_str() {
                        match m["status"].as_u64() {
                            Some(201) => acked.lock().unwrap().push(commitment(&m["body"])),
                            Some(409) => return,
                            _ => {}
                        }
                        break;
                    }
                }
                // Buyers pause between buys, so the kill falls in the middle of the race.
                tokio::time::sleep(StdDuration::from_millis(20)).await;
            }
        }));
    }
    for _ in 0..1000 {
        if acked.lock().unwrap().len() >= 100 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    server.kill();
    for t in tasks {
        let _ = t.await;
    }
    let acked_before = acked.lock().unwrap().clone();
    let (sold, commitments) = sales(&db, item).await;
    assert!(
        !acked_before.is_empty() && (sold as usize) < units as usize,
        "killed mid-race: {} acknowledged, {sold} sold",
        acked_before.len()
    );
    // Acknowledged ⇒ recorded, and the count matches the rows.
    let recorded: Vec<i64> = commitments.iter().map(|c| c.0).collect();
    for id in &acked_before {
        assert!(recorded.contains(id), "acknowledged c_{id} is recorded");
    }
    assert_eq!(sold as usize, commitments.len());

    // Restarted: the stock is what is left, and the rest sells to exactly zero.
    let server = start_server().await;
    let mut watcher = Ws::connect(&base, None).await;
    let snap = watcher.subscribe(&format!("item:it_{item}")).await;
    assert_eq!(
        snap["quantityRemaining"].as_i64().unwrap(),
        i64::from(units - sold),
        "{snap}"
    );
    // The rest, twenty at a time (the most one purchase takes), until it is sold out.
    let client = reqwest::Client::new();
    let mut bought = 0;
    for round in 0.. {
        let r = client
            .post(format!("{base}/api/items/it_{item}/buy"))
            .bearer_auth(&tokens[round % tokens.len()])
            .json(&json!({ "quantity": 20, "idempotencyKey": format!("after-{round}") }))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        match (status, body["error"].as_str()) {
            (201, _) => bought += body["quantityPurchased"].as_i64().unwrap(),
            (409, Some("not_enough_left")) => {
                let left = body["quantityRemaining"].as_i64().unwrap();
                let (s, b) = buy_rest(&base, &tokens[0], item, &format!("last-{round}")).await;
                assert_eq!(s, 201, "{b}");
                bought += 1;
                assert!(left >= 1);
            }
            (409, Some("sold_out")) => break,
            other => panic!("{other:?} {body}"),
        }
    }
    assert_eq!(bought, i64::from(units - sold));
    let (sold, commitments) = sales(&db, item).await;
    let committed: i32 = commitments.iter().map(|c| c.2).sum();
    assert_eq!((sold, committed), (units, units));
    server.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
