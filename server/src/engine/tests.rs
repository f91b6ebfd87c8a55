//! The engine over in-memory ports: no database, every failure on demand.
// Money literals are written dollars_cents (`10_00` is $10.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::{
    clock::ManualClock,
    domain::{bidding::BookParams, Cents, UserId},
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
    _shutdown: tokio_util::sync::DropGuard,
}

/// An engine of one shard (so that A and B share a journal) over `storage`, which already
/// holds items A and B and bidders 1 to 9 (paddle 100 + id).
async fn harness_with(storage: MemoryStorage) -> Harness {
    let heard = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    let (engine, _tasks) = Engine::start(EngineParts {
        storage: storage.clone(),
        publisher: heard.clone(),
        clock: Arc::new(ManualClock::new(t0())),
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
        (UserId(1), "k-1".into()),
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
