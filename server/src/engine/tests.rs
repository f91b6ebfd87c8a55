//! The engine over in-memory ports: no database, every failure on demand.
// Money literals are written dollars_cents (`10_00` is $10.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::{
    clock::ManualClock,
    domain::{bidding::BookParams, AuctionState, Cents, UserId},
    engine::{
        answer::BidReply,
        ports::StoredAnswer,
        testing::{Answers, Heard, MemoryStorage, Recorder},
    },
};

const AUCTION: AuctionId = AuctionId(1);
const A: ItemId = ItemId(10);
const B: ItemId = ItemId(20);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 2, 20, 0, 0).single().unwrap()
}

fn params() -> BookParams {
    BookParams {
        opening: Cents(5_00),
        increment: Some(Cents(1_00)),
        closes_at: t0() + chrono::Duration::hours(1),
        hard_deadline: t0() + chrono::Duration::hours(1),
        soft_close_window: chrono::Duration::zero(),
    }
}

struct Harness {
    engine: Engine,
    storage: MemoryStorage,
    heard: Arc<Recorder>,
    clock: Arc<ManualClock>,
    _shutdown: tokio_util::sync::DropGuard,
}

/// An engine of one shard (so that A and B share a journal) over `storage`, which already
/// holds items A and B and bidders 1 to 9 (paddle 100 + id).
async fn harness_with(storage: MemoryStorage) -> Harness {
    let heard = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let (engine, _tasks) = Engine::start(EngineParts {
        storage: storage.clone(),
        publisher: heard.clone(),
        clock: clock.clone(),
        shards: 1,
        metrics: JournalMetrics::default(),
        shutdown: shutdown.clone(),
    })
    .await
    .expect("engine starts");
    Harness {
        engine,
        storage,
        heard,
        clock,
        _shutdown: shutdown.drop_guard(),
    }
}

fn storage() -> MemoryStorage {
    let storage = MemoryStorage::default();
    storage.add_item(A, AUCTION, params());
    storage.add_item(B, AUCTION, params());
    for user in 1..10 {
        storage.add_bidder(UserId(user), 100 + user as i32);
    }
    storage
}

async fn harness() -> Harness {
    harness_with(storage()).await
}

fn bid(item: ItemId, bidder: i64, cents: i64) -> BidInput {
    BidInput {
        item,
        bidder: UserId(bidder),
        paddle: 100 + bidder as i32,
        amount: Cents(cents),
        max_proxy: None,
        idempotency_key: None,
    }
}

/// Hands bids to the engine as a socket does (answers into `sink`, in order), by reference.
fn submit_all(engine: &Engine, sink: &Arc<Answers>, bids: Vec<(&str, BidInput)>) {
    for (reference, input) in bids {
        let responder = Responder::sink(
            sink.clone(),
            Answering::Bid,
            Some(reference.into()),
            std::time::Instant::now(),
        );
        match engine.submit(input, responder) {
            Submitted::Done => {}
            Submitted::MustWait(_) => panic!("nothing here must wait"),
        }
    }
}

/// Waits until `sink` holds `n` answers.
async fn answered(sink: &Answers, n: usize) -> Vec<(Option<String>, BidReply)> {
    for _ in 0..500 {
        {
            let got = sink.got.lock().unwrap();
            if got.len() >= n {
                return got.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("only {:?} answered", sink.references());
}

/// Lets the engine's tasks run for a moment (to show something does NOT happen).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

fn code(reply: &BidReply) -> String {
    match reply.outcome() {
        Ok(Outcome::Refused(body)) => body.error,
        Ok(Outcome::Accepted(_)) => "accepted".into(),
        Err(e) => panic!("unreadable answer {reply:?}: {e}"),
    }
}

fn seqs(storage: &MemoryStorage, item: ItemId) -> Vec<(u64, i64)> {
    storage
        .bids(item)
        .into_iter()
        .map(|(seq, bidder, _)| (seq, bidder.0))
        .collect()
}

#[tokio::test]
async fn a_bid_is_answered_and_published_only_after_its_commit() {
    let h = harness().await;
    let sink = Arc::new(Answers::default());
    h.storage.hold_commits(true);
    submit_all(&h.engine, &sink, vec![("a", bid(A, 1, 10_00))]);
    settle().await;
    assert!(
        sink.got.lock().unwrap().is_empty(),
        "no answer before the commit"
    );
    assert_eq!(h.engine.committed_state(A).map(|s| s.seq), Some(0));
    assert!(h.heard.take().is_empty(), "no price before the commit");

    h.storage.hold_commits(false);
    let got = answered(&sink, 1).await;
    assert_eq!(got[0].1.status, 201);
    assert_eq!(seqs(&h.storage, A), [(1, 1)]);
    for _ in 0..100 {
        if h.engine.committed_state(A).map(|s| s.seq) == Some(1) {
            break;
        }
        settle().await;
    }
    let state = h.engine.committed_state(A).expect("live");
    assert_eq!((state.seq, state.price), (1, Some(Cents(10_00))));
    assert!(h.heard.take().contains(&Heard::Changed(state)));
}

#[tokio::test]
async fn a_failed_commit_refuses_its_bids_and_reloads_the_books_it_touched() {
    let h = harness().await;
    // A first bid on A commits.
    assert_eq!(h.engine.place_bid(bid(A, 1, 10_00)).await.status, 201);
    let loads_before = h.storage.db().loads;

    // The next commit fails: its bids on A and B are refused.
    let sink = Arc::new(Answers::default());
    h.storage.hold_commits(true);
    submit_all(
        &h.engine,
        &sink,
        vec![("a2", bid(A, 2, 20_00)), ("b1", bid(B, 3, 10_00))],
    );
    settle().await;
    h.storage.db().fail_commits = 1;
    h.storage.hold_commits(false);
    let got = answered(&sink, 2).await;
    for (reference, reply) in &got {
        assert_eq!(code(reply), "storage_unavailable", "{reference:?}");
    }
    assert_eq!(seqs(&h.storage, A), [(1, 1)]);
    assert!(seqs(&h.storage, B).is_empty());

    // Both books are read again from storage: the refused bids are gone from them, so the
    // next bids carry the next seq of what is stored, not of what was refused.
    let a = h.engine.place_bid(bid(A, 4, 11_00)).await;
    assert_eq!(a.status, 201, "{a:?}");
    let b = h.engine.place_bid(bid(B, 5, 5_00)).await;
    assert_eq!(b.status, 201, "{b:?}");
    assert_eq!(seqs(&h.storage, A), [(1, 1), (2, 4)]);
    assert_eq!(seqs(&h.storage, B), [(1, 5)]);
    assert_eq!(
        h.storage.db().loads - loads_before,
        2,
        "A and B were reloaded"
    );
}

#[tokio::test]
async fn a_batch_with_a_poisoned_entry_still_commits_the_rest() {
    let h = harness().await;
    h.storage.db().poisoned.insert((A, Cents(20_00)));
    let sink = Arc::new(Answers::default());
    h.storage.hold_commits(true);
    submit_all(
        &h.engine,
        &sink,
        vec![
            ("a1", bid(A, 1, 10_00)),
            ("b1", bid(B, 2, 10_00)),
            // Storage refuses this one's data.
            ("a2", bid(A, 3, 20_00)),
            // Decided on a book that held a2: not written either.
            ("a3", bid(A, 4, 30_00)),
            ("b2", bid(B, 5, 11_00)),
        ],
    );
    settle().await;
    h.storage.hold_commits(false);
    let got = answered(&sink, 5).await;
    let by_ref: std::collections::HashMap<String, String> = got
        .iter()
        .map(|(r, reply)| (r.clone().unwrap(), code(reply)))
        .collect();
    assert_eq!(by_ref["a1"], "accepted");
    assert_eq!(by_ref["b1"], "accepted");
    assert_eq!(by_ref["a2"], "bid_not_recorded");
    assert_eq!(by_ref["a3"], "storage_unavailable");
    assert_eq!(by_ref["b2"], "accepted");
    assert_eq!(
        sink.references(),
        ["a1", "b1", "a2", "a3", "b2"].map(|r| Some(r.to_string())),
        "answers keep their order"
    );
    assert_eq!(seqs(&h.storage, A), [(1, 1)]);
    assert_eq!(seqs(&h.storage, B), [(1, 2), (2, 5)]);

    // A's book was read again: the bidder of a3 can bid again, at the next seq stored.
    let again = h.engine.place_bid(bid(A, 4, 30_00)).await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(seqs(&h.storage, A), [(1, 1), (2, 4)]);
}

#[tokio::test]
async fn a_refusal_waits_behind_the_bids_before_it() {
    let h = harness().await;
    let sink = Arc::new(Answers::default());
    h.storage.hold_commits(true);
    submit_all(
        &h.engine,
        &sink,
        vec![("high", bid(A, 1, 10_00)), ("low", bid(A, 2, 6_00))],
    );
    settle().await;
    assert!(
        sink.got.lock().unwrap().is_empty(),
        "the refusal quotes a minimum that is not durable yet: it waits"
    );
    h.storage.hold_commits(false);
    let got = answered(&sink, 2).await;
    assert_eq!(sink.references(), [Some("high".into()), Some("low".into())]);
    match got[1].1.outcome().unwrap() {
        Outcome::Refused(body) => {
            assert_eq!(body.error, "bid_too_low");
            assert_eq!(body.minimum, Some(Cents(11_00)));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_reload_during_a_load_restarts_it_and_the_stale_load_is_dropped() {
    let storage = storage();
    let h = harness_with(storage).await;
    // Published after the start: its book is loaded on first use. (Of another auction, so
    // that A's book stays loaded while the change reloads C's.)
    let other = AuctionId(2);
    let c = ItemId(30);
    h.storage.add_item(c, other, params());
    h.storage.hold_loads(true);
    let first_look = {
        let engine = h.engine.clone();
        tokio::spawn(async move { engine.live_state(c).await })
    };
    while h.storage.loads_waiting() == 0 {
        settle().await;
    }
    // The manager moves the close an hour later while that load (which read the old
    // close) waits.
    let later = params().closes_at + chrono::Duration::hours(1);
    if let Some(item) = h.storage.db().items.get_mut(&c) {
        item.stored.params.closes_at = later;
        item.stored.params.hard_deadline = later;
    }
    h.engine
        .calendar_changed(other, AuctionState::Bidding, false)
        .await;
    // A bid queued behind the change is answered only once the shard has taken the change
    // (and restarted the load: the loader takes it once the first load is done).
    assert_eq!(h.engine.place_bid(bid(A, 1, 10_00)).await.status, 201);
    h.storage.hold_loads(false);
    let state = first_look.await.unwrap().expect("the item is live");
    assert_eq!(state.closes_at, later, "the newer load's book serves");
    settle().await;
    assert_eq!(h.engine.committed_state(c).unwrap().closes_at, later);
    let stale_heard = h
        .heard
        .take()
        .into_iter()
        .any(|heard| matches!(heard, Heard::Changed(s) if s.item == c && s.closes_at != later));
    assert!(!stale_heard, "the stale load never reached subscribers");
}

#[tokio::test]
async fn keys_are_checked_where_every_bid_path_meets() {
    let h = harness().await;
    let keyed = |key: &str| BidInput {
        idempotency_key: Some(key.to_string()),
        ..bid(A, 1, 10_00)
    };
    let long = "k".repeat(201);
    for bad in [
        "",
        "nul\0byte",
        "has space",
        "tab\there",
        "é-accent",
        long.as_str(),
    ] {
        let reply = h.engine.place_bid(keyed(bad)).await;
        assert_eq!(reply.status, 422, "{bad:?}");
        assert_eq!(code(&reply), "invalid_idempotency_key", "{bad:?}");
        // The socket's path too.
        let sink = Arc::new(Answers::default());
        submit_all(&h.engine, &sink, vec![("s", keyed(bad))]);
        assert_eq!(
            code(&answered(&sink, 1).await[0].1),
            "invalid_idempotency_key"
        );
    }
    assert!(seqs(&h.storage, A).is_empty(), "nothing recorded");
    let fine = "b-0123456789abcdef01234567".to_string();
    assert_eq!(h.engine.place_bid(keyed(&fine)).await.status, 201);
    assert_eq!(
        h.engine.place_bid(keyed(&"k".repeat(200))).await.status,
        409
    );
}

#[tokio::test]
async fn a_key_stored_before_a_restart_gets_its_stored_answer() {
    let storage = storage();
    let original = BidReply {
        status: 201,
        body: r#"{"stored":true}"#.into(),
    };
    storage.db().keys.insert(
        (UserId(1), idempotency::Scope::Bid, "k-1".into()),
        StoredAnswer {
            request_hash: idempotency::request_hash(A, Cents(10_00), None),
            reply: original.clone(),
        },
    );
    let h = harness_with(storage).await;
    let retry = BidInput {
        idempotency_key: Some("k-1".into()),
        ..bid(A, 1, 10_00)
    };
    assert_eq!(h.engine.place_bid(retry.clone()).await, original);
    let other = BidInput {
        amount: Cents(12_00),
        ..retry
    };
    assert_eq!(
        code(&h.engine.place_bid(other).await),
        "idempotency_key_reused"
    );
    assert!(seqs(&h.storage, A).is_empty(), "no second effect");
}

#[tokio::test]
async fn looks_at_items_that_are_not_live_are_remembered() {
    let h = harness().await;
    let loads = h.storage.db().loads;
    for _ in 0..20 {
        assert_eq!(h.engine.live_state(ItemId(999)).await, None);
    }
    assert_eq!(h.storage.db().loads - loads, 1, "one load, then remembered");
    let reply = h.engine.place_bid(bid(ItemId(999), 1, 10_00)).await;
    assert_eq!((reply.status, code(&reply)), (404, "not_found".into()));
    assert_eq!(h.storage.db().loads - loads, 1);
}

#[tokio::test]
async fn an_item_published_after_a_look_is_live_at_once() {
    let h = harness().await;
    let d = ItemId(40);
    h.storage.add_item(d, AUCTION, params());
    if let Some(item) = h.storage.db().items.get_mut(&d) {
        item.published = false;
    }
    assert_eq!(h.engine.live_state(d).await, None);
    if let Some(item) = h.storage.db().items.get_mut(&d) {
        item.published = true;
    }
    h.engine.item_changed(d).await;
    assert!(h.engine.live_state(d).await.is_some());
}

#[tokio::test]
async fn looks_at_made_up_items_never_hold_a_bid_up() {
    let h = harness().await;
    h.storage.hold_loads(true);
    // Far more looks than the touch queue holds, at items nobody can load right now.
    let looks: Vec<_> = (1000..1600)
        .map(|i| {
            let engine = h.engine.clone();
            tokio::spawn(async move { engine.live_state(ItemId(i)).await })
        })
        .collect();
    settle().await;
    // A's book is loaded: its bid goes through while the looks wait.
    let reply = tokio::time::timeout(Duration::from_secs(2), h.engine.place_bid(bid(A, 1, 10_00)))
        .await
        .expect("the bid is not stuck behind the looks");
    assert_eq!(reply.status, 201);
    h.storage.hold_loads(false);
    for look in looks {
        assert_eq!(look.await.unwrap(), None);
    }
}

// ---- the close -------------------------------------------------------------------------

/// Waits (the close timer looks at the clock at least once a second) until `item` is
/// recorded closed.
async fn closed(h: &Harness, item: ItemId) -> ItemState {
    for _ in 0..300 {
        if let Some(state) = h.engine.committed_state(item).filter(|s| s.closed) {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{item} never closed");
}

fn winners(storage: &MemoryStorage, item: ItemId) -> Vec<(i64, Cents)> {
    storage
        .db()
        .winners
        .iter()
        .filter(|((i, _), _)| *i == item)
        .map(|((_, user), amount)| (user.0, *amount))
        .collect()
}

#[tokio::test]
async fn an_item_closes_once_at_its_time_with_the_leader_as_winner() {
    let h = harness().await;
    // A proxy defends against a lower bid: the leader wins at the price shown.
    let proxy = BidInput {
        max_proxy: Some(Cents(30_00)),
        ..bid(A, 1, 10_00)
    };
    assert_eq!(h.engine.place_bid(proxy).await.status, 201);
    assert_eq!(h.engine.place_bid(bid(A, 2, 20_00)).await.status, 201);
    h.heard.take();
    // Not a moment early.
    h.clock
        .set(params().closes_at - chrono::Duration::seconds(1));
    settle().await;
    assert!(!h.engine.committed_state(A).unwrap().closed);

    h.clock.set(params().closes_at);
    let state = closed(&h, A).await;
    assert_eq!(state.price, Some(Cents(21_00)));
    assert_eq!(winners(&h.storage, A), [(1, Cents(21_00))]);
    assert!(h
        .heard
        .take()
        .contains(&Heard::Closed(A, vec![(UserId(1), Cents(21_00))])));
    // B had no bids: it closed unsold, and stays for the reoffer phase.
    let b = closed(&h, B).await;
    assert!(winners(&h.storage, B).is_empty());
    assert_eq!(b.stock_left, 1);
    assert_eq!(
        h.engine.committed_state(A).unwrap().stock_left,
        0,
        "won: not reoffered"
    );
    // After the close, bids are refused whatever the clock says.
    h.clock.set(t0());
    assert_eq!(
        code(&h.engine.place_bid(bid(A, 3, 50_00)).await),
        "bidding_closed"
    );
    // The same storage read again by a new engine (a restart): no second close.
    let again = harness_with(h.storage.clone()).await;
    again
        .clock
        .set(params().closes_at + chrono::Duration::hours(1));
    settle().await;
    assert_eq!(winners(&again.storage, A), [(1, Cents(21_00))]);
    assert_eq!(
        again.storage.db().commitments.len(),
        1,
        "one win, one commitment"
    );
    assert!(again.engine.live_state(A).await.unwrap().closed);
}

#[tokio::test]
async fn a_close_whose_write_fails_is_written_once_after_the_reload() {
    let h = harness().await;
    assert_eq!(h.engine.place_bid(bid(A, 1, 10_00)).await.status, 201);
    h.storage.db().fail_commits = 1;
    h.clock.set(params().closes_at);
    closed(&h, A).await;
    assert_eq!(winners(&h.storage, A), [(1, Cents(10_00))]);
    assert_eq!(h.storage.db().commitments.len(), 1);
}

#[tokio::test]
async fn several_units_go_to_the_top_distinct_bidders() {
    let storage = storage();
    let c = ItemId(30);
    storage.add_item(c, AUCTION, params());
    if let Some(item) = storage.db().items.get_mut(&c) {
        item.stored.units = 3;
    }
    let h = harness_with(storage).await;
    for (bidder, cents) in [(1, 10_00), (2, 11_00), (3, 12_00), (4, 13_00)] {
        assert_eq!(h.engine.place_bid(bid(c, bidder, cents)).await.status, 201);
    }
    h.clock.set(params().closes_at);
    let state = closed(&h, c).await;
    let mut won = winners(&h.storage, c);
    won.sort();
    assert_eq!(
        won,
        [(2, Cents(11_00)), (3, Cents(12_00)), (4, Cents(13_00))]
    );
    assert_eq!(state.stock_left, 0);
}

// ---- reoffer purchases -------------------------------------------------------------------

/// The engine with item B unsold after its close, 3 units on offer at $25, reoffer open.
async fn reoffer() -> Harness {
    let storage = storage();
    if let Some(item) = storage.db().items.get_mut(&B) {
        item.stored.units = 3;
        item.stored.closed = true;
        item.stored.events = 1;
        item.stored.stock = crate::engine::ports::StockParams {
            left: 3,
            price: Cents(25_00),
        };
    }
    let h = harness_with(storage).await;
    h.engine
        .auction_state_changed(AUCTION, AuctionState::Reoffer, false);
    h
}

fn buy(item: ItemId, buyer: i64, quantity: u32, key: Option<&str>) -> BuyInput {
    BuyInput {
        item,
        buyer: UserId(buyer),
        quantity,
        idempotency_key: key.map(str::to_string),
    }
}

#[tokio::test]
async fn buyers_racing_for_few_units_never_oversell() {
    let h = reoffer().await;
    let racers: Vec<_> = (1..=9)
        .map(|buyer| {
            let engine = h.engine.clone();
            tokio::spawn(async move { engine.buy(buy(B, buyer, 1, None)).await })
        })
        .collect();
    let mut sold = 0;
    let mut ids = std::collections::HashSet::new();
    for racer in racers {
        let reply = racer.await.unwrap();
        match reply.status {
            201 => {
                sold += 1;
                let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
                assert!(ids.insert(body["commitmentId"].as_str().unwrap().to_string()));
                assert!(!reply
                    .body
                    .contains(crate::engine::answer::COMMITMENT_PLACEHOLDER));
            }
            409 => assert_eq!(code(&reply), "sold_out"),
            other => panic!("unexpected {other}: {reply:?}"),
        }
    }
    assert_eq!(sold, 3, "exactly the units on offer");
    let reoffer_sold: u32 = h
        .storage
        .db()
        .commitments
        .iter()
        .filter(|c| c.3 == "reoffer")
        .map(|c| c.4)
        .sum();
    assert_eq!(reoffer_sold, 3);
    settle().await;
    assert_eq!(h.engine.committed_state(B).unwrap().stock_left, 0);
    assert!(h.heard.take().contains(&Heard::Stock(B, 0)));
}

#[tokio::test]
async fn a_purchase_retried_with_its_key_gets_the_same_answer_and_buys_once() {
    let h = reoffer().await;
    let first = h.engine.buy(buy(B, 1, 2, Some("r-1"))).await;
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(h.engine.buy(buy(B, 1, 2, Some("r-1"))).await, first);
    assert_eq!(
        code(&h.engine.buy(buy(B, 1, 1, Some("r-1"))).await),
        "idempotency_key_reused"
    );
    // A bid's key of the same name is another key.
    assert_eq!(
        h.engine
            .place_bid(BidInput {
                idempotency_key: Some("r-1".into()),
                ..bid(A, 1, 10_00)
            })
            .await
            .status,
        409,
        "bids are over, but the key was free"
    );
    // After a restart, the stored answer is the same bytes.
    let again = harness_with(h.storage.clone()).await;
    again
        .engine
        .auction_state_changed(AUCTION, AuctionState::Reoffer, false);
    assert_eq!(again.engine.buy(buy(B, 1, 2, Some("r-1"))).await, first);
    let not_enough = again.engine.buy(buy(B, 2, 2, None)).await;
    assert_eq!(code(&not_enough), "not_enough_left");
}

#[tokio::test]
async fn purchases_wait_for_the_reoffer_phase_and_a_failed_write_sells_nothing() {
    let h = reoffer().await;
    h.engine
        .auction_state_changed(AUCTION, AuctionState::Paused, false);
    assert_eq!(
        code(&h.engine.buy(buy(B, 1, 1, None)).await),
        "reoffer_not_open"
    );
    h.engine
        .auction_state_changed(AUCTION, AuctionState::Reoffer, false);
    h.storage.db().fail_commits = 1;
    assert_eq!(
        code(&h.engine.buy(buy(B, 1, 1, None)).await),
        "storage_unavailable"
    );
    assert!(h.storage.db().commitments.is_empty());
    // The stock was read again: all three units are still there.
    for buyer in 1..=3 {
        assert_eq!(h.engine.buy(buy(B, buyer, 1, None)).await.status, 201);
    }
    assert_eq!(code(&h.engine.buy(buy(B, 4, 1, None)).await), "sold_out");
    // Bids on a fixed-price... (B is competitive but closed): refused as closed.
    assert_eq!(
        code(&h.engine.place_bid(bid(B, 5, 30_00)).await),
        "bidding_closed"
    );
}
