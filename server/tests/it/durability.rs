//! The storm: 500 concurrent bids on one item; the database stopping mid-storm; the server
//! killed with SIGKILL mid-storm. Acknowledged ⇒ committed, always.
// Money literals are written dollars_cents (`125_00` is $125.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use std::collections::HashMap;

use crate::helpers::{
    auction_in_bidding, bearer_token, free_port, healthy_within, published_item, serve,
    stored_bids, ServerProcess, TestApp, Ws,
};
use auuction::domain::{
    bidding::{Book, BookParams, RecordedBid},
    Cents, Role,
};
use serde_json::{json, Value};
use sqlx::PgPool;

/// Replays an item's stored bids with the rules: what the server's book must equal.
pub(crate) async fn replay(db: &PgPool, item: i64) -> Book {
    let (opening, close, hard, window): (i64, chrono::DateTime<chrono::Utc>, Option<chrono::DateTime<chrono::Utc>>, i32) = sqlx::query_as(
        "SELECT i.opening_min_bid, a.bidding_close_at, a.hard_close_at, a.soft_close_seconds FROM items i JOIN auctions a ON a.id = i.auction_id WHERE i.id = $1",
    )
    .bind(item)
    .fetch_one(db)
    .await
    .unwrap();
    let params = BookParams {
        opening: Cents(opening),
        increment: None,
        closes_at: close,
        hard_deadline: hard.unwrap_or(close),
        soft_close_window: chrono::Duration::seconds(window.into()),
    };
    let bids: Vec<RecordedBid> = stored_bids(db, item)
        .await
        .into_iter()
        .map(|(_, bidder, amount, max, at)| RecordedBid {
            bidder,
            amount: Cents(amount),
            max_proxy: max.map(Cents),
            at,
        })
        .collect();
    Book::replay(params, &bids).expect("stored bids replay")
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn five_hundred_concurrent_bids_on_one_item_end_consistent(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (_, item) = app
        .item_up_for_bids(10_00, chrono::Duration::hours(1))
        .await;
    let people = app.bidders(50).await;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for n in 0..500usize {
        let (_, token) = people[n % people.len()].clone();
        let client = client.clone();
        let url = app.url(&format!("/api/items/it_{item}/bids"));
        // Amounts spread so some win, some lose, some are too low by the time they land.
        let amount = 10 + (n * 37 % 500);
        let max = amount + (n * 13 % 90);
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "amount": amount, "maxProxyAmount": max }))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 => acked.push(body["seq"].as_u64().unwrap()),
            409 => assert!(
                body["error"] == "bid_too_low" || body["error"] == "max_not_raised",
                "{body}"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let rows = stored_bids(&app.db, item).await;
    // Every acknowledged bid is in the table; seq is gap-free and increasing.
    assert_eq!(rows.len(), acked.len());
    let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(seqs, (1..=rows.len() as i64).collect::<Vec<_>>());
    acked.sort();
    assert_eq!(acked, (1..=rows.len() as u64).collect::<Vec<_>>());
    // One leader, and the stored state equals the rules' replay.
    let book = replay(&app.db, item).await;
    let (price, leader, last_seq): (Option<i64>, Option<i64>, i64) = sqlx::query_as(
        "SELECT current_price, leader_id, last_seq FROM item_bidding WHERE item_id = $1",
    )
    .bind(item)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(price, book.price().map(|p| p.0));
    assert_eq!(leader, book.leader());
    assert_eq!(last_seq as u64, book.last_seq());
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_database_stopping_mid_storm_gives_errors_never_an_ack_without_a_row(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (_, item) = app.item_up_for_bids(1_00, chrono::Duration::hours(1)).await;
    let people = app.bidders(20).await;
    let mut sockets = Vec::new();
    for (_, t) in &people {
        sockets.push(Ws::connect(&app.base, Some(t)).await);
    }

    // Each bidder in turn bids the current minimum over its socket; midway the database stops.
    let mut acked: Vec<(u64, i64)> = Vec::new();
    let (mut before, mut after, mut unavailable) = (0, 0, 0);
    let mut minimum = String::from("1.00");
    let mut outage = None;
    for round in 0..120 {
        if round == 40 {
            outage = Some(app.database_outage().await);
        }
        if round == 80 {
            outage.take().expect("the outage began").end().await;
        }
        let ws = &mut sockets[round % people.len()];
        let mut r = ws.bid(&format!("r{round}"), item, &minimum, None).await;
        if round == 80 {
            // Recovery once it is back: bids are refused only until the database answers.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while r["status"] == 503 && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                r = ws
                    .bid(&format!("r{round}-retry"), item, &minimum, None)
                    .await;
            }
        }
        let cents = (minimum.parse::<f64>().unwrap() * 100.0).round() as i64;
        match r["status"].as_u64().unwrap() {
            201 => {
                acked.push((r["body"]["seq"].as_u64().unwrap(), cents));
                if round < 40 {
                    before += 1
                } else {
                    after += 1
                }
                minimum = format!("{:.2}", r["body"]["nextMinimum"].as_f64().unwrap());
            }
            503 => {
                assert_eq!(r["body"]["error"], "storage_unavailable");
                assert!(
                    (40..80).contains(&round),
                    "errors only during the outage: round {round}"
                );
                unavailable += 1;
            }
            409 if r["body"]["error"] == "bid_too_low" => {
                minimum = format!("{:.2}", r["body"]["minimum"].as_f64().unwrap())
            }
            other => panic!("unexpected {other}: {r}"),
        }
    }
    assert!(
        before >= 35 && after >= 30,
        "bids before ({before}) and after ({after}) the outage were acknowledged"
    );
    assert!(unavailable > 0, "the outage was noticed");
    // No ack without a row: each acknowledged (seq, amount) is stored as acknowledged.
    let rows: HashMap<i64, i64> = stored_bids(&app.db, item)
        .await
        .into_iter()
        .map(|r| (r.0, r.2))
        .collect();
    for (seq, amount) in &acked {
        assert_eq!(
            rows.get(&(*seq as i64)),
            Some(amount),
            "acknowledged seq {seq} is stored"
        );
    }
    // And the book after recovery is exactly the stored bids' replay.
    let book = replay(&app.db, item).await;
    let mut watcher = app.ws().await;
    let snap = watcher.subscribe(&format!("item:it_{item}")).await;
    assert_eq!(snap["seq"].as_u64().unwrap(), book.last_seq());
    assert_eq!(snap["bidCount"].as_u64().unwrap(), book.bid_count());
    let seqs: Vec<i64> = {
        let mut s: Vec<i64> = rows.keys().copied().collect();
        s.sort();
        s
    };
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "no gap in seq after the outage"
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn sigkill_mid_storm_loses_no_acknowledged_bid_and_the_books_rebuild(db: PgPool) {
    // Set up the data through a throwaway in-process app (same database).
    let setup = TestApp::spawn(db.clone()).await;
    let url = setup.database_url();
    let donor = setup.create_user("donor@example.org", &[Role::Donor]).await;
    let auction = auction_in_bidding(&db, chrono::Duration::hours(1), 120, None).await;
    let items: Vec<i64> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(published_item(&db, auction, donor, 1_00, "competitive").await);
        }
        v
    };
    for i in 0..12 {
        setup
            .create_user(&format!("k{i}@example.org"), &[Role::Bidder])
            .await;
    }

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let start_server = || async {
        let server = ServerProcess::start(&mut serve(&url, port, &setup.dir.join("second")));
        assert!(
            healthy_within(&base, std::time::Duration::from_secs(10)).await,
            "server did not start"
        );
        server
    };
    let server = start_server().await;
    let mut tokens = Vec::new();
    for i in 0..12 {
        tokens.push(bearer_token(&base, &format!("k{i}@example.org")).await);
    }

    // A storm over three items from twelve bidders; the server dies in the middle of it.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(i64, u64, i64)>::new()));
    // Amounts rise by $300 a bid across everyone, above any increment, so most bids are
    // accepted even though they race.
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(1));
    let mut tasks = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let (t, acked, base, items, counter) = (
            t.clone(),
            acked.clone(),
            base.clone(),
            items.clone(),
            counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut ws = Ws::connect(&base, Some(&t)).await;
            for round in 0..1000u64 {
                let item = items[(round as usize + i) % items.len()];
                let amount = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 300;
                let frame = json!({ "type": "bid", "ref": format!("{round}"), "itemId": format!("it_{item}"), "amount": amount });
                if futures_util::SinkExt::send(&mut ws.socket, tokio_tungstenite::tungstenite::Message::Text(frame.to_string().into())).await.is_err() {
                    return;
                }
                loop {
                    let next = tokio::time::timeout(std::time::Duration::from_secs(5), futures_util::StreamExt::next(&mut ws.socket)).await;
                    let Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) = next else { return };
                    let m: Value = serde_json::from_str(text.as_str()).unwrap();
                    if m["type"] == "bid_result" {
                        if m["status"] == 201 {
                            acked.lock().unwrap().push((item, m["body"]["seq"].as_u64().unwrap(), amount * 100));
                        }
                        break;
                    }
                }
            }
        }));
    }
    // Kill when a good number of bids has been acknowledged.
    for _ in 0..2000 {
        if acked.lock().unwrap().len() >= 300 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    server.kill(); // SIGKILL
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "the storm was acknowledged before the kill: {}",
        acked.len()
    );

    // Every acknowledged bid is in the table, exactly as acknowledged.
    for item in &items {
        let rows: HashMap<i64, i64> = stored_bids(&db, *item)
            .await
            .into_iter()
            .map(|r| (r.0, r.2))
            .collect();
        for (_, seq, amount) in acked.iter().filter(|(i, _, _)| i == item) {
            assert_eq!(
                rows.get(&(*seq as i64)),
                Some(amount),
                "item {item} seq {seq}"
            );
        }
    }

    // Restarted, the server's books equal the replay of the stored bids.
    let server = start_server().await;
    let mut watcher = Ws::connect(&base, None).await;
    for item in &items {
        let book = replay(&db, *item).await;
        let snap = watcher.subscribe(&format!("item:it_{item}")).await;
        assert_eq!(snap["seq"].as_u64().unwrap(), book.last_seq(), "{snap}");
        assert_eq!(snap["bidCount"].as_u64().unwrap(), book.bid_count());
        let price = format!("{}", book.price().unwrap());
        assert_eq!(
            format!("{:.2}", snap["currentBid"].as_f64().unwrap()),
            price
        );
        let leader_paddle: i32 =
            sqlx::query_scalar("SELECT paddle_number FROM users WHERE id = $1")
                .bind(book.leader().unwrap())
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(snap["leadingBidderId"], format!("p_{leader_paddle}"));
        // The stored item state agrees with the replay too.
        let (p, s): (Option<i64>, i64) =
            sqlx::query_as("SELECT current_price, last_seq FROM item_bidding WHERE item_id = $1")
                .bind(item)
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!((p, s as u64), (book.price().map(|p| p.0), book.last_seq()));
    }
    // And it takes bids where it left off.
    let mut ws = Ws::connect(&base, Some(&bearer_token(&base, "k0@example.org").await)).await;
    let book = replay(&db, items[0]).await;
    let next = book.next_minimum();
    let r = ws.bid("after", items[0], &format!("{next}"), None).await;
    assert_eq!(r["status"], 201, "{r}");
    assert_eq!(r["body"]["seq"].as_u64().unwrap(), book.last_seq() + 1);
    server.kill();
}
