//! A session without a socket: frames in, outbox out, over an engine on in-memory storage.
// Money literals are written dollars_cents (`10_00` is $10.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use std::sync::{
    atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering},
    Arc,
};

use chrono::{TimeZone, Utc};
use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::{
    clock::ManualClock,
    config::RateLimitConfig,
    domain::{bidding::BookParams, AuctionId, Cents, ItemId, UserId},
    engine::{testing::MemoryStorage, EngineParts},
    live::hub::Hub,
    metrics::JournalMetrics,
};

const ITEM: ItemId = ItemId(7);

struct NoAccounts;

impl Accounts for NoAccounts {
    fn status(&self, _user: UserId) -> BoxFuture<'_, Option<(i32, bool)>> {
        Box::pin(async { None })
    }
}

struct Harness {
    live: Live,
    storage: MemoryStorage,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn harness() -> Harness {
    let t0 = Utc.with_ymd_and_hms(2026, 5, 2, 20, 0, 0).single().unwrap();
    let storage = MemoryStorage::default();
    storage.add_item(
        ITEM,
        AuctionId(1),
        BookParams {
            opening: Cents(5_00),
            increment: None,
            closes_at: t0 + chrono::Duration::hours(1),
            hard_deadline: t0 + chrono::Duration::hours(1),
            soft_close_window: chrono::Duration::zero(),
        },
    );
    storage.add_bidder(UserId(1), 101);
    let hub = Arc::new(Hub::default());
    let clock = Arc::new(ManualClock::new(t0));
    let shutdown = CancellationToken::new();
    let (engine, _tasks) = Engine::start(EngineParts {
        storage: storage.clone(),
        publisher: hub.clone(),
        clock: clock.clone(),
        shards: 1,
        metrics: JournalMetrics::default(),
        shutdown: shutdown.clone(),
    })
    .await
    .unwrap();
    Harness {
        live: Live {
            engine,
            hub,
            clock,
            limits: Arc::new(RateLimits::new(&RateLimitConfig::default())),
            accounts: Arc::new(NoAccounts),
        },
        storage,
        _shutdown: shutdown.drop_guard(),
    }
}

fn bidder(id: i64) -> Who {
    Who {
        id: UserId(id),
        paddle: AtomicI32::new(100 + id as i32),
        verified: AtomicBool::new(true),
        staff: false,
    }
}

/// Everything queued for the client, parsed.
fn sent(session: &Session) -> Vec<Value> {
    session
        .outbox()
        .drain()
        .messages
        .iter()
        .map(|m| serde_json::from_str(m.as_str()).unwrap())
        .collect()
}

fn kinds(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match m["type"].as_str() {
            Some("error") => format!("error:{}", m["error"].as_str().unwrap_or("")),
            Some(kind) => kind.to_string(),
            None => "?".into(),
        })
        .collect()
}

#[tokio::test]
async fn a_subscribe_sends_the_committed_snapshot_and_a_repeat_comes_from_the_cache() {
    let h = harness().await;
    let mut ann = Session::new(h.live.clone(), None);
    ann.text(r#"{"type":"subscribe","topics":["item:it_7","auction:a_1"]}"#)
        .await;
    let raw = ann.outbox().drain().messages;
    // Money as written decimals, never through a float.
    assert!(
        raw[0].as_str().contains(r#""nextMinimum":5.00"#),
        "{}",
        raw[0].as_str()
    );
    let got: Vec<Value> = raw
        .iter()
        .map(|m| serde_json::from_str(m.as_str()).unwrap())
        .collect();
    assert_eq!(kinds(&got), ["snapshot", "snapshot"]);
    assert_eq!(got[0]["topic"], "item:it_7");
    assert_eq!(got[1]["items"][0]["itemId"], "it_7");
    let built = h.live.hub.metrics().snapshots_built.get();
    for _ in 0..50 {
        ann.text(r#"{"type":"subscribe","topics":["item:it_7"]}"#)
            .await;
    }
    let got = kinds(&sent(&ann));
    let snapshots = got.iter().filter(|k| *k == "snapshot").count();
    let refused = got.iter().filter(|k| *k == "error:slow_down").count();
    // The first frame took one of the burst of 30 (a token may refill meanwhile).
    assert!((29..=31).contains(&snapshots), "{got:?}");
    assert_eq!(snapshots + refused, 50, "{got:?}");
    assert_eq!(
        h.live.hub.metrics().snapshots_built.get(),
        built,
        "served from the cache"
    );
    assert_eq!(ann.topic_count(), 2);
}

#[tokio::test]
async fn a_guest_is_told_to_log_in_and_a_bidder_gets_the_durable_answer() {
    let h = harness().await;
    let mut guest = Session::new(h.live.clone(), None);
    guest
        .text(r#"{"type":"bid","ref":"g","itemId":"it_7","amount":10.00}"#)
        .await;
    let got = sent(&guest);
    assert_eq!(got[0]["type"], "bid_result");
    assert_eq!(got[0]["status"], 401);

    let mut ann = Session::new(h.live.clone(), Some(bidder(1)));
    ann.text(r#"{"type":"subscribe","topics":["item:it_7"]}"#)
        .await;
    sent(&ann);
    ann.text(r#"{"type":"bid","ref":"a","itemId":"it_7","amount":10.00,"idempotencyKey":"b-1"}"#)
        .await;
    let mut got = Vec::new();
    for _ in 0..200 {
        got.extend(sent(&ann));
        if got.iter().any(|m| m["type"] == "price") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let result = got.iter().find(|m| m["type"] == "bid_result").unwrap();
    assert_eq!(
        (result["ref"].as_str(), result["status"].as_u64()),
        (Some("a"), Some(201))
    );
    assert!(got.iter().any(|m| m["type"] == "price" && m["seq"] == 1));
    assert_eq!(h.storage.bids(ITEM).len(), 1);
    ann.close().await;
    assert_eq!(h.live.hub.subscriber_count(Topic::Item(ITEM)), 0);
}

#[tokio::test]
async fn a_flood_of_subscribes_costs_bounded_work() {
    let h = harness().await;
    let mut flood = Session::new(h.live.clone(), None);
    // Every frame names the live item, the auction and 200 made-up items, again and again.
    let mut topics = vec!["item:it_7".to_string(), "auction:a_1".to_string()];
    topics.extend((0..200).map(|i| format!("item:it_{}", 1_000_000 + i)));
    let frame = serde_json::json!({ "type": "subscribe", "topics": topics }).to_string();
    let loads = h.storage.db().loads;
    let built = h.live.hub.metrics().snapshots_built.get();
    let started = std::time::Instant::now();
    let mut frames = 0;
    while !flood.outbox().overflowed() && frames < 10_000 {
        flood.text(&frame).await;
        frames += 1;
        // The socket writes what is queued; a flooder that also reads never overflows.
        if frames % 2 == 0 {
            flood.outbox().drain();
        }
    }
    let looked_up = h.storage.db().loads - loads;
    assert!(
        looked_up <= MISS_BURST as usize + 10,
        "made-up items cost a storage read each, within the miss budget: {looked_up}"
    );
    let snapshots = h.live.hub.metrics().snapshots_built.get() - built;
    // The item's snapshot is built once; the auction's at most once a second (its maximum
    // age), however slow a loaded machine makes this loop: not once per frame.
    let allowed = 2 + started.elapsed().as_secs();
    assert!(
        snapshots <= allowed,
        "snapshots come from the cache: {snapshots} built in {:?} ({frames} frames)",
        started.elapsed()
    );
    assert!(flood.topic_count() <= 2, "made-up items are not followed");
    assert!(h.live.hub.metrics().frames_refused.get() > 0);
    // Whatever it sent, the flooder's queue is capped.
    assert!(flood.outbox().queued_bytes() <= crate::live::outbox::MAX_QUEUED_BYTES * 2);

    // A bidder on the same item is answered meanwhile.
    let mut ann = Session::new(h.live.clone(), Some(bidder(1)));
    ann.text(r#"{"type":"bid","ref":"a","itemId":"it_7","amount":10.00}"#)
        .await;
    for _ in 0..200 {
        if ann
            .outbox()
            .drain()
            .messages
            .iter()
            .any(|m| m.as_str().contains(r#""status":201"#))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the bid was not answered");
}

#[tokio::test]
async fn an_overflowed_connection_gets_no_more_work() {
    let h = harness().await;
    let mut slow = Session::new(h.live.clone(), None);
    let big = "x".repeat(300 * 1024);
    slow.outbox().push(axum::extract::ws::Utf8Bytes::from(big));
    assert!(slow.outbox().overflowed());
    let built = h.live.hub.metrics().snapshots_built.get();
    slow.text(r#"{"type":"subscribe","topics":["item:it_7"]}"#)
        .await;
    assert_eq!(slow.topic_count(), 0);
    assert_eq!(h.live.hub.metrics().snapshots_built.get(), built);
}

/// A signed-out bidder whose bid task is `task`, holding one job.
fn bidder_with_task(jobs: mpsc::Sender<Job>, task: tokio::task::JoinHandle<()>) -> Bidder {
    Bidder {
        who: None,
        worker: Some(Worker {
            jobs,
            busy: Arc::new(AtomicUsize::new(1)),
            task,
        }),
    }
}

#[tokio::test]
async fn a_bid_task_that_panicked_is_replaced_not_left_busy() {
    let (jobs, _queue) = mpsc::channel::<Job>(1);
    let task = tokio::spawn(async { panic!("a bug in the bid task") });
    while !task.is_finished() {
        tokio::task::yield_now().await;
    }
    // It held a job when it died.
    let mut bidder = bidder_with_task(jobs, task);
    assert!(
        !bidder.worker_busy(),
        "later bids go straight to the engine again"
    );
    // What the next bid that must wait does first (hand_to_worker).
    bidder.drop_dead_worker();
    assert!(
        bidder.worker.is_none(),
        "the next bid that must wait starts a new task"
    );
}

#[tokio::test]
async fn a_live_bid_task_with_jobs_is_busy() {
    let (jobs, mut queue) = mpsc::channel::<Job>(1);
    let task = tokio::spawn(async move { while queue.recv().await.is_some() {} });
    let bidder = bidder_with_task(jobs, task);
    assert!(
        bidder.worker_busy(),
        "later bids must follow the waiting one"
    );
    bidder
        .worker
        .as_ref()
        .unwrap()
        .busy
        .store(0, Ordering::Release);
    assert!(!bidder.worker_busy());
    assert!(bidder.worker.is_some(), "a live task is kept");
}

#[tokio::test]
async fn only_staff_follow_the_dashboard_and_it_shows_committed_bids() {
    let h = harness().await;
    let mut ann = Session::new(h.live.clone(), Some(bidder(1)));
    ann.text(r#"{"type":"subscribe","topics":["dashboard:a_1"]}"#)
        .await;
    assert_eq!(kinds(&sent(&ann)), ["error:forbidden"]);
    let manager = Who {
        staff: true,
        ..bidder(2)
    };
    let mut desk = Session::new(h.live.clone(), Some(manager));
    let reply = h
        .live
        .engine
        .place_bid(crate::engine::BidInput {
            item: ITEM,
            bidder: UserId(1),
            paddle: 101,
            amount: Cents(10_00),
            max_proxy: None,
            idempotency_key: None,
        })
        .await;
    assert_eq!(reply.status, 201);
    for _ in 0..100 {
        if h.live.engine.committed_state(ITEM).map(|s| s.seq) == Some(1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    desk.text(r#"{"type":"subscribe","topics":["dashboard:a_1"]}"#)
        .await;
    let raw = desk.outbox().drain().messages;
    let text = raw[0].as_str();
    assert!(text.starts_with(r#"{"type":"dashboard""#), "{text}");
    assert!(text.contains(r#""bidsTotal":1"#), "{text}");
    assert!(text.contains(r#""committedTotal":10.00"#), "{text}");
    assert!(
        text.contains(r#""topByPrice":[{"itemId":"it_7","currentBid":10.00"#),
        "{text}"
    );
}
