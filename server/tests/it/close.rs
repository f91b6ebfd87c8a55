//! Bidding's close over the real database: golden scenarios (proxy bids, a soft-close
//! extension, ties, no bids, several units), what the close writes (winners, commitments,
//! the item closed, `quantity_sold`, the "you won" email row), the frames watchers get, the
//! winners endpoint, and a restart that must not change any of it.
// Money literals are written dollars_cents (`125_00` is $125.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use std::{sync::Arc, time::Duration as StdDuration};

use auuction::{clock::ManualClock, domain::Role};
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{
    app_on_manual_clock, assert_error, auction_in_bidding, paddle, published_item, TestApp, Ws,
};

/// What the close wrote for one item.
#[derive(Debug, PartialEq)]
struct Recorded {
    status: String,
    quantity_sold: i32,
    closed: bool,
    /// (user, amount), best first.
    winners: Vec<(i64, i64)>,
    /// (user, price each) of `win` commitments.
    commitments: Vec<(i64, i64)>,
    /// Users with a `win` notification row for the item.
    notified: Vec<i64>,
}

async fn recorded(db: &PgPool, item: i64) -> Recorded {
    let (status, quantity_sold): (String, i32) =
        sqlx::query_as("SELECT status, quantity_sold FROM items WHERE id = $1")
            .bind(item)
            .fetch_one(db)
            .await
            .unwrap();
    let closed: Option<bool> =
        sqlx::query_scalar("SELECT closed_at IS NOT NULL FROM item_bidding WHERE item_id = $1")
            .bind(item)
            .fetch_optional(db)
            .await
            .unwrap();
    let winners = sqlx::query_as(
        "SELECT user_id, amount FROM winners WHERE item_id = $1 ORDER BY amount DESC, id",
    )
    .bind(item)
    .fetch_all(db)
    .await
    .unwrap();
    let commitments = sqlx::query_as(
        "SELECT user_id, price_each FROM commitments WHERE item_id = $1 AND source = 'win' ORDER BY price_each DESC, id",
    )
    .bind(item)
    .fetch_all(db)
    .await
    .unwrap();
    let notified = sqlx::query_scalar(
        "SELECT user_id FROM notifications WHERE type = 'win' AND related_entity_id = $1 ORDER BY user_id",
    )
    .bind(item)
    .fetch_all(db)
    .await
    .unwrap();
    Recorded {
        status,
        quantity_sold,
        closed: closed.unwrap_or(false),
        winners,
        commitments,
        notified,
    }
}

/// Waits (real time) until the item's close is recorded; the engine looks at its clock
/// every second.
async fn closed_within(db: &PgPool, item: i64, within: StdDuration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if recorded(db, item).await.closed {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    false
}

async fn bid(app: &TestApp, token: &str, item: i64, body: Value) -> Value {
    let r = app
        .api_client(token)
        .post(&format!("/api/items/it_{item}/bids"), body)
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn closes_at(db: &PgPool, auction: i64) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT bidding_close_at FROM auctions WHERE id = $1")
        .bind(auction)
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_proxy_duel_closes_with_the_leader_at_the_price_shown(db: PgPool) {
    let (app, clock) = app_on_manual_clock(db).await;
    let (auction, item) = app.item_up_for_bids(100_00, Duration::minutes(30)).await;
    let bidders = app.bidders(3).await;
    let (ann, bob, _) = (&bidders[0], &bidders[1], &bidders[2]);

    // Watchers: a guest and the future winner.
    let mut guest = Ws::connect(&app.base, None).await;
    guest.subscribe(&format!("item:it_{item}")).await;
    let mut winner_socket = Ws::connect(&app.base, Some(&ann.1)).await;
    winner_socket.subscribe(&format!("item:it_{item}")).await;

    // Ann bids $120 with a $300 maximum; Bob bids $150 then $250: Ann's proxy answers each
    // time, so she leads at $250 + one $25 step.
    bid(
        &app,
        &ann.1,
        item,
        json!({ "amount": 120.00, "maxProxyAmount": 300.00 }),
    )
    .await;
    bid(&app, &bob.1, item, json!({ "amount": 150.00 })).await;
    let last = bid(&app, &bob.1, item, json!({ "amount": 250.00 })).await;
    assert_eq!(last["leading"], false);
    assert_eq!(last["currentBid"], json!(275.0));

    // Nothing closes before the time.
    clock.set(closes_at(&app.db, auction).await - Duration::seconds(1));
    assert!(!closed_within(&app.db, item, StdDuration::from_millis(1500)).await);
    clock.set(closes_at(&app.db, auction).await);
    assert!(closed_within(&app.db, item, StdDuration::from_secs(5)).await);

    let r = recorded(&app.db, item).await;
    assert_eq!(
        r,
        Recorded {
            status: "closed".into(),
            quantity_sold: 1,
            closed: true,
            winners: vec![(ann.0, 275_00)],
            commitments: vec![(ann.0, 275_00)],
            notified: vec![ann.0],
        }
    );
    let ann_paddle = paddle(&app.db, ann.0).await;

    // Everyone watching hears the close; the winner also hears that they won.
    let closed = guest.next_of("closed").await;
    assert_eq!(
        closed,
        json!({ "type": "closed", "itemId": format!("it_{item}"), "finalPrice": 275.0,
                "winningBidderId": format!("p_{ann_paddle}"), "quantitySold": 1 })
    );
    let won = winner_socket.next_of("won").await;
    assert_eq!(
        won,
        json!({ "type": "won", "itemId": format!("it_{item}"), "amount": 275.0 })
    );

    // A bid after the close is refused and changes nothing.
    let r = app
        .api_client(&bob.1)
        .post(
            &format!("/api/items/it_{item}/bids"),
            json!({ "amount": 400.00 }),
        )
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
    assert_eq!(recorded(&app.db, item).await.winners, vec![(ann.0, 275_00)]);

    // The winners list: staff only, with names for them; nobody else.
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let list = manager
        .json(&format!("/api/auctions/a_{auction}/winners"))
        .await;
    assert_eq!(list["auctionId"], format!("a_{auction}"));
    let lines = list["winners"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{list}");
    assert_eq!(lines[0]["itemId"], format!("it_{item}"));
    assert_eq!(lines[0]["amount"], json!(275.0));
    assert_eq!(lines[0]["quantity"], 1);
    assert_eq!(lines[0]["paddle"], format!("p_{ann_paddle}"));
    let finance = app.login_as("finance@example.org", &[Role::Finance]).await;
    assert_eq!(
        finance
            .get(&format!("/api/auctions/a_{auction}/winners"))
            .await
            .status(),
        StatusCode::OK
    );
    let bidder = app.api_client(&bob.1);
    assert_error(
        bidder
            .get(&format!("/api/auctions/a_{auction}/winners"))
            .await,
        403,
        "forbidden",
    )
    .await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_late_bid_extends_the_close_and_the_item_closes_at_the_new_time(db: PgPool) {
    let (app, clock) = app_on_manual_clock(db.clone()).await;
    let donor = app.create_user("donor@example.org", &[Role::Donor]).await;
    // Soft close 120 s, hard deadline 5 minutes after the close.
    let auction =
        auction_in_bidding(&db, Duration::minutes(10), 120, Some(Duration::minutes(15))).await;
    let item = published_item(&db, auction, donor, 50_00, "competitive").await;
    let bidders = app.bidders(2).await;
    let close = closes_at(&db, auction).await;

    bid(&app, &bidders[0].1, item, json!({ "amount": 50.00 })).await;
    // Thirty seconds before the close Bob bids: the close moves to 120 s after his bid.
    clock.set(close - Duration::seconds(30));
    let late = bid(&app, &bidders[1].1, item, json!({ "amount": 60.00 })).await;
    let extended: DateTime<Utc> = late["closesAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(extended, close + Duration::seconds(90));

    // At the calendar's close it is still open, and bids are still taken.
    clock.set(close + Duration::seconds(1));
    assert!(!closed_within(&db, item, StdDuration::from_millis(1500)).await);
    bid(&app, &bidders[0].1, item, json!({ "amount": 70.00 })).await;
    // That bid extended it again; past the newest close it closes, Ann the winner.
    clock.set(close + Duration::seconds(1) + Duration::seconds(120));
    assert!(closed_within(&db, item, StdDuration::from_secs(5)).await);
    let r = recorded(&db, item).await;
    assert_eq!(r.winners, vec![(bidders[0].0, 70_00)]);
    assert_eq!(r.quantity_sold, 1);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn bidding_never_runs_past_the_hard_deadline(db: PgPool) {
    let (app, clock) = app_on_manual_clock(db.clone()).await;
    let donor = app.create_user("donor@example.org", &[Role::Donor]).await;
    // Soft close 120 s but a hard deadline 60 s after the close.
    let auction = auction_in_bidding(
        &db,
        Duration::minutes(10),
        120,
        Some(Duration::minutes(10) + Duration::seconds(60)),
    )
    .await;
    let item = published_item(&db, auction, donor, 50_00, "competitive").await;
    let bidders = app.bidders(2).await;
    let close = closes_at(&db, auction).await;
    let hard: DateTime<Utc> =
        sqlx::query_scalar("SELECT hard_close_at FROM auctions WHERE id = $1")
            .bind(auction)
            .fetch_one(&db)
            .await
            .unwrap();

    clock.set(close - Duration::seconds(10));
    let late = bid(&app, &bidders[0].1, item, json!({ "amount": 50.00 })).await;
    let extended: DateTime<Utc> = late["closesAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(extended, hard, "capped at the hard deadline");
    clock.set(hard);
    assert!(closed_within(&db, item, StdDuration::from_secs(5)).await);
    assert_eq!(
        recorded(&db, item).await.winners,
        vec![(bidders[0].0, 50_00)]
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn equal_maximums_go_to_the_earliest_and_no_bids_closes_unsold(db: PgPool) {
    let (app, clock) = app_on_manual_clock(db.clone()).await;
    let (auction, tied) = app.item_up_for_bids(100_00, Duration::minutes(30)).await;
    let donor: i64 = sqlx::query_scalar("SELECT donor_id FROM items WHERE id = $1")
        .bind(tied)
        .fetch_one(&db)
        .await
        .unwrap();
    let unsold = published_item(&db, auction, donor, 80_00, "competitive").await;
    // Published behind the app's back: tell the engine, as publishing does.
    app.state
        .engine
        .item_changed(auuction::domain::ItemId(unsold))
        .await;
    let bidders = app.bidders(2).await;

    bid(
        &app,
        &bidders[0].1,
        tied,
        json!({ "amount": 100.00, "maxProxyAmount": 200.00 }),
    )
    .await;
    let second = bid(
        &app,
        &bidders[1].1,
        tied,
        json!({ "amount": 200.00, "maxProxyAmount": 200.00 }),
    )
    .await;
    assert_eq!(
        second["leading"], false,
        "the earlier maximum holds the tie"
    );

    clock.set(closes_at(&db, auction).await);
    assert!(closed_within(&db, tied, StdDuration::from_secs(5)).await);
    assert!(closed_within(&db, unsold, StdDuration::from_secs(5)).await);
    assert_eq!(
        recorded(&db, tied).await.winners,
        vec![(bidders[0].0, 200_00)]
    );

    // No bid: closed for bidding without a winner, and the units wait for the reoffer.
    let r = recorded(&db, unsold).await;
    assert_eq!(
        r,
        Recorded {
            status: "published".into(),
            quantity_sold: 0,
            closed: true,
            winners: vec![],
            commitments: vec![],
            notified: vec![],
        }
    );
    let listing = app
        .anonymous()
        .json(&format!("/api/auctions/a_{auction}/reoffer/items"))
        .await;
    let ids: Vec<&str> = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![format!("it_{unsold}")],
        "only the unsold item is offered again: {listing}"
    );
    assert_eq!(listing["items"][0]["price"], json!(80.0));
    assert_eq!(listing["items"][0]["quantityRemaining"], 1);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn several_units_go_to_the_top_distinct_bidders_at_their_own_amounts(db: PgPool) {
    let (app, clock) = app_on_manual_clock(db.clone()).await;
    let (auction, item) = app.item_up_for_bids(40_00, Duration::minutes(30)).await;
    sqlx::query("UPDATE items SET quantity_total = 3 WHERE id = $1")
        .bind(item)
        .execute(&db)
        .await
        .unwrap();
    app.state
        .engine
        .item_changed(auuction::domain::ItemId(item))
        .await;
    let bidders = app.bidders(4).await;
    // Ann 40 → Bob 50 → Cy 60 → Ann 70 → Dee 80. Distinct bidders by their highest:
    // Dee 80, Ann 70, Cy 60 win one unit each; Bob (50) does not.
    for (who, amount) in [(0, 40.0), (1, 50.0), (2, 60.0), (0, 70.0), (3, 80.0)] {
        bid(&app, &bidders[who].1, item, json!({ "amount": amount })).await;
    }
    // Before the close, the dashboard's total counts what the three would pay, not only
    // the leader's price.
    let live = app
        .state
        .engine
        .auction_items(auuction::domain::AuctionId(auction));
    assert_eq!(
        live.iter().map(|s| s.winning_total.0).sum::<i64>(),
        80_00 + 70_00 + 60_00
    );
    clock.set(closes_at(&db, auction).await);
    assert!(closed_within(&db, item, StdDuration::from_secs(5)).await);
    let r = recorded(&db, item).await;
    assert_eq!(
        r.winners,
        vec![
            (bidders[3].0, 80_00),
            (bidders[0].0, 70_00),
            (bidders[2].0, 60_00)
        ]
    );
    assert_eq!(r.commitments, r.winners);
    assert_eq!(r.quantity_sold, 3);
    assert_eq!(r.status, "closed");
    let mut notified = vec![bidders[0].0, bidders[2].0, bidders[3].0];
    notified.sort();
    assert_eq!(r.notified, notified);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_restart_neither_reopens_a_closed_item_nor_closes_an_open_one_early(db: PgPool) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let first = TestApp::builder()
        .with_clock(clock.clone())
        .spawn(db.clone())
        .await;
    let donor = first.create_user("donor@example.org", &[Role::Donor]).await;
    let early = auction_in_bidding(&db, Duration::minutes(10), 0, None).await;
    let closing = published_item(&db, early, donor, 10_00, "competitive").await;
    // A second auction year whose bidding closes later.
    let later: i64 = sqlx::query_scalar(
        "INSERT INTO auctions (year, name, registration_open_at, catalog_publish_at, bidding_open_at, bidding_close_at,
             reoffer_open_at, reoffer_close_at, settlement_open_at, soft_close_seconds, state)
         SELECT 2027, 'Later', registration_open_at, catalog_publish_at, bidding_open_at,
                bidding_close_at + interval '1 hour', reoffer_open_at + interval '1 hour',
                reoffer_close_at + interval '1 hour', settlement_open_at + interval '1 hour', 0, 'bidding'
           FROM auctions WHERE id = $1 RETURNING id",
    )
    .bind(early)
    .fetch_one(&db)
    .await
    .unwrap();
    let open = published_item(&db, later, donor, 10_00, "competitive").await;
    let bidders = first.bidders(2).await;
    bid(&first, &bidders[0].1, closing, json!({ "amount": 10.00 })).await;
    bid(&first, &bidders[1].1, closing, json!({ "amount": 20.00 })).await;
    bid(&first, &bidders[0].1, open, json!({ "amount": 15.00 })).await;

    clock.set(closes_at(&db, early).await + Duration::seconds(1));
    assert!(closed_within(&db, closing, StdDuration::from_secs(5)).await);
    let before = recorded(&db, closing).await;
    drop(first);
    tokio::time::sleep(StdDuration::from_millis(300)).await;

    // The same moment, a new server on the same database.
    let second = TestApp::builder()
        .with_clock(clock.clone())
        .spawn(db.clone())
        .await;
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    assert_eq!(
        recorded(&db, closing).await,
        before,
        "nothing written twice"
    );
    assert!(!recorded(&db, open).await.closed, "not closed early");
    let mut watcher = Ws::connect(&second.base, None).await;
    let snap = watcher.subscribe(&format!("item:it_{closing}")).await;
    assert_eq!(snap["closed"], true, "{snap}");
    // The open one still takes bids, and closes at its own time.
    bid(&second, &bidders[1].1, open, json!({ "amount": 30.00 })).await;
    clock.set(closes_at(&db, later).await);
    assert!(closed_within(&db, open, StdDuration::from_secs(5)).await);
    assert_eq!(
        recorded(&db, open).await.winners,
        vec![(bidders[1].0, 30_00)]
    );
    assert_eq!(recorded(&db, closing).await, before);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn sigkill_during_the_close_of_many_items_then_restart_records_each_close_once(db: PgPool) {
    use crate::{
        durability::replay,
        helpers::{free_port, healthy_within, serve, ServerProcess},
    };

    let setup = TestApp::spawn(db.clone()).await;
    let url = setup.database_url();
    let donor = setup.create_user("donor@example.org", &[Role::Donor]).await;
    let bidders = setup.bidders(3).await;
    drop(setup);
    // 600 items whose bidding closes a few seconds from now, no soft close, each with two or
    // three recorded bids (written as the journal writes them, before the server starts).
    let items_count = 600;
    let auction = auction_in_bidding(&db, Duration::seconds(6), 0, None).await;
    let items: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO items (auction_id, donor_id, type, title, category_id, opening_min_bid, status)
         SELECT $1, $2, 'competitive', 'Lot ' || n, 3, 1000, 'published' FROM generate_series(1, $3) n
         RETURNING id",
    )
    .bind(auction)
    .bind(donor)
    .bind(items_count)
    .fetch_all(&db)
    .await
    .unwrap();
    let at = Utc::now() - Duration::minutes(1);
    for (n, item) in items.iter().enumerate() {
        let mut bids = vec![(bidders[0].0, 10_00), (bidders[1].0, 20_00)];
        if n % 2 == 1 {
            bids.push((bidders[2].0, 50_00));
        }
        for (seq, (bidder, amount)) in bids.into_iter().enumerate() {
            sqlx::query(
                "INSERT INTO bids (item_id, bidder_id, amount, seq, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(item)
            .bind(bidder)
            .bind(amount)
            .bind(seq as i64 + 1)
            .bind(at + Duration::seconds(seq as i64))
            .execute(&db)
            .await
            .unwrap();
        }
    }

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = std::env::temp_dir().join(format!("auuction-close-{}", uuid::Uuid::new_v4()));
    let start_server = || async {
        let server = ServerProcess::start(&mut serve(&url, port, &dir));
        assert!(
            healthy_within(&base, StdDuration::from_secs(10)).await,
            "server did not start"
        );
        server
    };
    let closed_count = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM item_bidding WHERE item_id = ANY($1) AND closed_at IS NOT NULL",
        )
        .bind(&items)
        .fetch_one(&db)
        .await
        .unwrap()
    };
    let server = start_server().await;
    // Killed as soon as the first closes are recorded.
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(20);
    while closed_count().await == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }
    server.kill();
    let at_kill = closed_count().await;
    assert!(at_kill > 0, "the close began before the kill");

    // Restarted: the closes left are made, and every item is closed exactly once, its
    // winner the replay's leader at the price the replay shows.
    let server = start_server().await;
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(20);
    while closed_count().await < items_count && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(
        closed_count().await,
        items_count,
        "{at_kill} closed at the kill"
    );
    for item in &items {
        let book = replay(&db, *item).await;
        let expected = vec![(book.leader().unwrap(), book.price().unwrap().0)];
        let r = recorded(&db, *item).await;
        assert_eq!(r.winners, expected, "item {item}");
        assert_eq!(r.commitments, expected, "item {item}");
        assert_eq!(r.notified, vec![expected[0].0], "item {item}");
        assert_eq!((r.status.as_str(), r.quantity_sold), ("closed", 1));
    }
    server.kill();
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{at_kill} of {items_count} closes were recorded when the server was killed");
}
