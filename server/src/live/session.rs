//! One connection's logic, without its socket: what each client message does. The socket
//! loop (socket.rs) only moves frames; everything decided about them is here, so it is
//! tested without a socket.
//!
//! A bid is handed to its shard at once when it can be (`Engine::submit`), with a responder
//! that puts the durable answer straight into the outbox: no task waits per bid, so a bid
//! waiting for its commit never stalls pings or price updates. The rare bid that must wait
//! (its idempotency key needs a storage lookup, its shard's queue is full, the account must
//! be re-read) goes to a second, per-connection task; while that task holds bids, later
//! bids follow them through it, so a bidder's bids reach the engine in the order sent.
//!
//! # Limits
//!
//! A connection is cheap for the client and must stay cheap for the server, whatever the
//! client sends: it follows at most [`MAX_TOPICS`] topics; control frames (subscribe,
//! unsubscribe, ping, anything unreadable) are metered by a token bucket, and so are
//! subscriptions to items whose book is not loaded (each may cost a storage read; every
//! published item is loaded when it is published, so pages rarely need one). What is over
//! a budget is answered `slow_down` and dropped. Snapshots are not metered: they come from
//! the hub's cache, and a client that asks for more than it reads overflows its outbox and
//! is cut off. Bids have their own limits (at most [`MAX_PENDING_BIDS`] awaiting answers,
//! the per-account write limit).

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering},
        Arc,
    },
    time::Instant,
};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use crate::{
    clock::Clock,
    domain::UserId,
    engine::{Answering, BidInput, BidReply, BuyInput, Engine, PendingBid, Responder, Submitted},
    error::AppError,
    limits::RateLimits,
    live::{
        hub::{Hub, Topic},
        outbox::Outbox,
        protocol::{self, BidFrame, BuyFrame, ClientMessage},
    },
    services::reoffer::MAX_UNITS_PER_PURCHASE,
};

/// Topics one connection may follow: a catalog page of items plus its auction.
pub const MAX_TOPICS: usize = 500;
/// Bids one connection may have waiting; beyond it the sender is told to slow down.
pub const MAX_PENDING_BIDS: u32 = 64;
/// Control frames: a burst for a page that starts up, then a few a second (clock pings
/// every few seconds, a subscribe when the page changes).
const CONTROL_BURST: f64 = 30.0;
const CONTROL_PER_SECOND: f64 = 10.0;
/// Subscriptions to items whose book is not loaded: each may cost the engine a storage read
/// (batched, and remembered when the item is not live). Published items are loaded when
/// published, so these are items of past auctions after a restart, or made-up ids: a page
/// of them at once, then a few a second.
const MISS_BURST: f64 = 100.0;
const MISS_PER_SECOND: f64 = 10.0;

/// Whatever account details a session re-reads (an account that was unverified when the
/// socket opened may have clicked its link since).
pub trait Accounts: Send + Sync + 'static {
    /// The account's paddle number and whether its email is verified, read afresh.
    fn status(&self, user: UserId) -> BoxFuture<'_, Option<(i32, bool)>>;
}

/// What a session needs from the rest of the server. Cheap to clone.
#[derive(Clone)]
pub struct Live {
    pub engine: Engine,
    pub hub: Arc<Hub>,
    pub clock: Arc<dyn Clock>,
    pub limits: Arc<RateLimits>,
    pub accounts: Arc<dyn Accounts>,
}

/// The signed-in bidder of a connection. `verified` flips when the bid task re-reads the
/// account and finds the email confirmed since the connection opened.
pub struct Who {
    pub id: UserId,
    pub paddle: AtomicI32,
    pub verified: AtomicBool,
    /// A manager or admin: may follow an auction's dashboard.
    pub staff: bool,
}

/// A token bucket (tokio's clock, so tests may pause it).
struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    at: tokio::time::Instant,
}

impl Bucket {
    fn new(burst: f64, per_second: f64) -> Bucket {
        Bucket {
            tokens: burst,
            burst,
            per_second,
            at: tokio::time::Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One connection.
pub struct Session {
    live: Live,
    outbox: Arc<Outbox>,
    topics: HashSet<Topic>,
    bidder: Bidder,
    control: Bucket,
    misses: Bucket,
}

impl Session {
    /// A session for a new connection of `who` (none: a guest, who may watch but not bid).
    pub fn new(live: Live, who: Option<Who>) -> Session {
        let outbox = live.hub.connect(who.as_ref().map(|w| w.id));
        Session {
            outbox,
            topics: HashSet::new(),
            bidder: Bidder {
                who: who.map(Arc::new),
                worker: None,
            },
            control: Bucket::new(CONTROL_BURST, CONTROL_PER_SECOND),
            misses: Bucket::new(MISS_BURST, MISS_PER_SECOND),
            live,
        }
    }

    /// What the socket writes.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// A text frame from the client.
    pub async fn text(&mut self, text: &str) {
        if self.outbox.overflowed() {
            // The connection is being closed as too slow: no more work for it.
            return;
        }
        match ClientMessage::parse(text) {
            Ok(ClientMessage::Bid(frame)) => self.bid(frame),
            Ok(ClientMessage::Buy(frame)) => self.buy(frame),
            Ok(message) => {
                if self.control.take() {
                    self.control_message(message).await;
                } else {
                    self.slow_down();
                }
            }
            Err(why) => {
                if self.control.take() {
                    self.outbox.push(protocol::error("bad_message", &why));
                } else {
                    self.slow_down();
                }
            }
        }
    }

    /// A binary frame: not part of the protocol.
    pub fn binary(&mut self) {
        if self.control.take() {
            self.outbox
                .push(protocol::error("bad_frame", "Send JSON text frames."));
        } else {
            self.slow_down();
        }
    }

    fn slow_down(&self) {
        self.live.hub.metrics().frames_refused.inc();
        self.outbox.push(protocol::error(
            "slow_down",
            "Too many messages; some were ignored. Wait a moment.",
        ));
    }

    async fn control_message(&mut self, message: ClientMessage) {
        match message {
            ClientMessage::Ping { client_time } => self
                .outbox
                .push(protocol::pong(client_time, self.live.clock.now())),
            ClientMessage::Subscribe { topics } => self.subscribe(topics).await,
            ClientMessage::Unsubscribe { topics } => {
                for topic in topics.iter().filter_map(|n| Topic::parse(n)) {
                    if self.topics.remove(&topic) {
                        self.live.hub.unsubscribe(&self.outbox, topic);
                    }
                }
            }
            ClientMessage::Bid(frame) => self.bid(frame),
            ClientMessage::Buy(frame) => self.buy(frame),
        }
    }

    async fn subscribe(&mut self, names: Vec<String>) {
        for name in names.iter().take(MAX_TOPICS) {
            let Some(topic) = Topic::parse(name) else {
                self.outbox.push(protocol::error(
                    "bad_topic",
                    &format!(
                        "Unknown topic {:?}; use item:<id>, auction:<id>, dashboard:<id> or display:<id>.",
                        name.chars().take(60).collect::<String>()
                    ),
                ));
                continue;
            };
            if matches!(topic, Topic::Dashboard(_))
                && !self.bidder.who.as_ref().is_some_and(|w| w.staff)
            {
                self.outbox.push(protocol::error(
                    "forbidden",
                    "The live dashboard is for the auction's managers.",
                ));
                continue;
            }
            if !self.topics.contains(&topic) && self.topics.len() >= MAX_TOPICS {
                self.live.hub.metrics().frames_refused.inc();
                self.outbox.push(protocol::error(
                    "too_many_topics",
                    "This connection follows too many topics.",
                ));
                break;
            }
            // An item topic is followed only when the item has live bidding: naming random
            // ids must not grow the hub.
            if let Topic::Item(item) = topic {
                if self.live.engine.committed_state(item).is_none() {
                    if !self.misses.take() {
                        self.slow_down();
                        break;
                    }
                    if self.live.engine.live_state(item).await.is_none() {
                        self.outbox.push(protocol::error(
                            "not_live",
                            &format!("Item {item} has no live bidding."),
                        ));
                        continue;
                    }
                }
            }
            if self.topics.insert(topic) {
                self.live.hub.subscribe(&self.outbox, topic);
            }
            // A snapshot on every subscribe, also a repeated one: that is how a client
            // resyncs after a reconnect. It is read after subscribing, so no committed
            // change can fall between the two.
            let now = self.live.clock.now();
            if let Some(snapshot) = self.live.hub.snapshot(topic, &self.live.engine, now) {
                self.outbox.push(snapshot);
            }
        }
    }

    /// Takes one bid frame: answered at once when it cannot run, handed to its shard when it
    /// can, given to the connection's bid task when it must wait.
    fn bid(&mut self, frame: BidFrame) {
        let received = Instant::now();
        let reference = frame.reference.as_deref().map(Box::from);
        if !self.outbox.bid_started(MAX_PENDING_BIDS) {
            // Not counted as in flight: answered here, not by a responder.
            self.outbox.answer_at_once(
                Answering::Bid,
                reference.as_deref(),
                received,
                &BidReply::too_many_bids(),
            );
            self.live.engine.count_rate_limited();
            return;
        }
        let responder = Responder::sink(self.outbox.clone(), Answering::Bid, reference, received);
        let Some(who) = self.bidder.who.clone() else {
            return responder.send(refusal(&AppError::unauthenticated()));
        };
        // Later bids follow earlier ones that are still waiting in the bid task.
        let job = if self.bidder.worker_busy() || !who.verified.load(Ordering::Acquire) {
            Job::Check(frame, responder)
        } else {
            match checked_input(&self.live, &who, frame) {
                Err(reply) => return responder.send(reply),
                Ok(input) => match self.live.engine.submit(input, responder) {
                    Submitted::Done => return,
                    Submitted::MustWait(pending) => Job::Place(pending),
                },
            }
        };
        self.bidder.hand_to_worker(&self.live, who, job);
    }

    /// Takes one `buy` frame (a reoffer purchase), as [`Session::bid`] takes a bid: answered
    /// at once when it cannot run, else handed to the item's shard, in order with the
    /// connection's bids.
    fn buy(&mut self, frame: BuyFrame) {
        let received = Instant::now();
        let reference = frame.reference.as_deref().map(Box::from);
        if !self.outbox.bid_started(MAX_PENDING_BIDS) {
            self.outbox.answer_at_once(
                Answering::Buy,
                reference.as_deref(),
                received,
                &BidReply::too_many_bids(),
            );
            self.live.engine.count_rate_limited();
            return;
        }
        let responder = Responder::sink(self.outbox.clone(), Answering::Buy, reference, received);
        let Some(who) = self.bidder.who.clone() else {
            return responder.send(refusal(&AppError::unauthenticated()));
        };
        let job = if self.bidder.worker_busy() || !who.verified.load(Ordering::Acquire) {
            Job::CheckBuy(frame, responder)
        } else {
            match checked_buy(&self.live, &who, frame) {
                Err(reply) => return responder.send(reply),
                Ok(input) => match self.live.engine.submit_buy(input, responder) {
                    Submitted::Done => return,
                    Submitted::MustWait(pending) => Job::Place(pending),
                },
            }
        };
        self.bidder.hand_to_worker(&self.live, who, job);
    }

    /// The connection closed: leaves every topic, and lets the bid task finish what it holds
    /// (each bid is answered by its responder, into an outbox nobody reads any more).
    pub async fn close(self) {
        self.live
            .hub
            .disconnect(&self.outbox, self.topics.iter().copied());
        if let Some(worker) = self.bidder.worker {
            drop(worker.jobs);
            let _ = worker.task.await;
        }
    }

    /// Topics followed (tests).
    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }
}

/// An edge refusal (unauthenticated, rate limited, not verified) as a bid's answer.
fn refusal(e: &AppError) -> BidReply {
    BidReply::error(e.status.as_u16(), &e.code, &e.message)
}

/// The bid, once the bidder may bid (within the write rate limit). Its idempotency key is
/// checked by the engine, where every bid path meets.
fn checked_input(live: &Live, who: &Who, frame: BidFrame) -> Result<BidInput, BidReply> {
    if let Err(limited) = live.limits.check_write_account(who.id) {
        live.engine.count_rate_limited();
        return Err(refusal(&AppError::from(limited)));
    }
    Ok(BidInput {
        item: frame.item_id,
        bidder: who.id,
        paddle: who.paddle.load(Ordering::Relaxed),
        amount: frame.amount,
        max_proxy: frame.max_proxy_amount,
        idempotency_key: frame.idempotency_key,
    })
}

/// The purchase, once the buyer may buy (within the write rate limit and the units a
/// purchase may take). Its idempotency key is checked by the engine.
fn checked_buy(live: &Live, who: &Who, frame: BuyFrame) -> Result<BuyInput, BidReply> {
    if let Err(limited) = live.limits.check_write_account(who.id) {
        live.engine.count_rate_limited();
        return Err(refusal(&AppError::from(limited)));
    }
    if frame.quantity == 0 || frame.quantity > MAX_UNITS_PER_PURCHASE {
        return Err(refusal(
            &AppError::validation(format!("quantity must be 1 to {MAX_UNITS_PER_PURCHASE}."))
                .on_field("quantity"),
        ));
    }
    Ok(BuyInput {
        item: frame.item_id,
        buyer: who.id,
        quantity: frame.quantity,
        idempotency_key: frame.idempotency_key,
    })
}

/// A connection's bidder and its bid task, started on the first bid that must wait: most
/// connections never need one, and an idle connection should cost a few KB.
struct Bidder {
    who: Option<Arc<Who>>,
    worker: Option<Worker>,
}

struct Worker {
    jobs: mpsc::Sender<Job>,
    /// Jobs handed to the task and not yet passed on to the engine.
    busy: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// Work for the bid task.
enum Job {
    /// A frame to check in full (re-reading an unverified account) and place.
    Check(BidFrame, Responder),
    /// The same for a purchase.
    CheckBuy(BuyFrame, Responder),
    /// A bid the engine could not take without waiting.
    Place(Box<PendingBid>),
}

impl Bidder {
    /// Whether a live bid task still holds bids that later ones must follow. A task that
    /// ended holds none (see `drop_dead_worker`).
    fn worker_busy(&self) -> bool {
        self.worker
            .as_ref()
            .is_some_and(|w| !w.task.is_finished() && w.busy.load(Ordering::Acquire) > 0)
    }

    /// Forgets a bid task that ended, which only a panic does while the connection is open.
    /// Its jobs' responders were dropped with it and so answered `storage_unavailable`; its
    /// `busy` count is stale, and left in place it would send every later bid to a closed
    /// queue, to be answered "too many bids" until the bidder reconnects.
    fn drop_dead_worker(&mut self) {
        if self.worker.as_ref().is_some_and(|w| w.task.is_finished()) {
            self.worker = None;
        }
    }

    fn hand_to_worker(&mut self, live: &Live, who: Arc<Who>, job: Job) {
        self.drop_dead_worker();
        let worker = self.worker.get_or_insert_with(|| {
            // As many jobs as bids may be in flight, so sending never finds it full.
            let (jobs, queue) = mpsc::channel::<Job>(MAX_PENDING_BIDS as usize);
            let busy = Arc::new(AtomicUsize::new(0));
            let task = tokio::spawn(bid_worker(live.clone(), who, queue, busy.clone()));
            Worker { jobs, busy, task }
        });
        worker.busy.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = worker.jobs.try_send(job) {
            // Cannot happen (see the capacity), but a bid must never vanish unanswered.
            worker.busy.fetch_sub(1, Ordering::AcqRel);
            let reply = BidReply::too_many_bids();
            match e.into_inner() {
                Job::Check(_, responder) | Job::CheckBuy(_, responder) => responder.send(reply),
                Job::Place(pending) => drop(pending),
            }
        }
    }
}

/// Runs the connection's bids that must wait, in order. Each is answered by its responder.
async fn bid_worker(
    live: Live,
    who: Arc<Who>,
    mut queue: mpsc::Receiver<Job>,
    busy: Arc<AtomicUsize>,
) {
    while let Some(job) = queue.recv().await {
        match job {
            Job::Place(pending) => live.engine.finish_placing(pending).await,
            Job::Check(frame, responder) => {
                recheck_verified(&live, &who).await;
                if !who.verified.load(Ordering::Acquire) {
                    responder.send(refusal(&AppError::email_not_verified()));
                } else {
                    match checked_input(&live, &who, frame) {
                        Err(reply) => responder.send(reply),
                        Ok(input) => live.engine.place_bid_with(input, responder).await,
                    }
                }
            }
            Job::CheckBuy(frame, responder) => {
                recheck_verified(&live, &who).await;
                if !who.verified.load(Ordering::Acquire) {
                    responder.send(refusal(&AppError::email_not_verified()));
                } else {
                    match checked_buy(&live, &who, frame) {
                        Err(reply) => responder.send(reply),
                        Ok(input) => live.engine.buy_with(input, responder).await,
                    }
                }
            }
        }
        busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Re-reads an account that was unverified at connect time: the person may have just
/// clicked the link.
async fn recheck_verified(live: &Live, who: &Who) {
    if who.verified.load(Ordering::Acquire) {
        return;
    }
    if let Some((paddle, verified)) = live.accounts.status(who.id).await {
        who.paddle.store(paddle, Ordering::Relaxed);
        who.verified.store(verified, Ordering::Release);
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
