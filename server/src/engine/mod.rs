//! The bid engine: the authoritative bid book of every item lives in memory, inside a
//! sharded actor.
//!
//! ```text
//!  handler (http/bids.rs, ws/connection.rs)
//!     │ Engine::place_bid ── idempotency registry (claim the key once)
//!     ▼
//!  shard task (shard.rs) ── one per shard, owns its items' books, one command at a time,
//!     │                     rules in domain::bidding, no lock on the hot path
//!     ▼ JournalEntry (bounded channel)
//!  journal task (journal.rs) ── group commit: every entry waiting is written in ONE
//!     │                         statement (UNNEST), then acks go out
//!     ▼ after commit only
//!  replies (oneshot) + fan-out (hub.rs): price, outbid, closing to WebSocket subscribers
//! ```
//!
//! Invariant: acknowledged ⇒ committed. A shard applies a bid to its book at once (so the
//! next bid sees it) but nobody hears of it until the journal has committed it. When a
//! commit fails, every entry of that batch and every later entry of the same generation is
//! answered `storage_unavailable`, and every item they touched is reloaded from Postgres
//! before it takes another command.

pub mod gate;
pub mod idempotency;
pub mod journal;
pub mod messages;
pub mod recovery;
pub mod shard;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use prometheus_client::metrics::histogram::Histogram;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    clock::Clock,
    domain::{AuctionId, AuctionState, Cents, ItemId, UserId},
    metrics::JournalMetrics,
    ws::hub::{Conn, Hub},
};

pub use gate::Gates;
pub use idempotency::Idempotency;

/// How many commands may wait for one shard. Beyond it, callers wait (backpressure) rather
/// than the shard's memory growing without bound during a storm.
const SHARD_QUEUE: usize = 8192;

/// A bid as a handler received it (REST body or WebSocket frame).
#[derive(Clone, Debug)]
pub struct BidInput {
    pub item: ItemId,
    pub bidder: UserId,
    pub paddle: i32,
    pub amount: Cents,
    pub max_proxy: Option<Cents>,
    pub idempotency_key: Option<String>,
}

/// The answer to a bid: the HTTP status and the exact JSON body. The same bytes go to the
/// REST caller, into `bid_result` on the WebSocket, and into the idempotency table, so a
/// retry gets the original answer byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidReply {
    pub status: StatusCode,
    pub body: Arc<str>,
}

impl BidReply {
    /// An error answer in the API's `{"error", "message"}` shape.
    pub fn error(status: StatusCode, code: &str, message: &str) -> BidReply {
        BidReply {
            status,
            body: Arc::from(json!({ "error": code, "message": message }).to_string()),
        }
    }

    /// Not durable: the journal could not commit. Never stored under an idempotency key,
    /// so a retry runs the bid again.
    pub fn storage_unavailable() -> BidReply {
        BidReply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "Your bid was not recorded because the database is not answering. Please try again in a moment.",
        )
    }

    /// An API error (unauthenticated, rate limited…) as a bid's answer.
    pub fn from_api_error(e: &crate::error::AppError) -> BidReply {
        BidReply::error(e.status, &e.code, &e.message)
    }

    pub fn is_storage_unavailable(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Where a bid's answer goes once it is known (for an accepted bid: once it is durable).
pub enum ReplyTo {
    /// A caller waiting for it (a REST handler, the no-JavaScript form, the demo bot).
    Caller(oneshot::Sender<BidReply>),
    /// Straight into a WebSocket connection's outbox as a `bid_result` echoing the client's
    /// `ref`. No task waits for the answer: the journal delivers it, one wake-up less per bid.
    Socket {
        conn: Arc<Conn>,
        reference: Option<Box<str>>,
        /// When the frame was read, and where the time to its answer is counted: the
        /// server's own share of the bidder's wait (queueing and the commit included).
        received: Instant,
        answer_seconds: Histogram,
    },
}

/// The one thing that answers a bid: delivers the answer where it is wanted and, for a bid
/// with an idempotency key, records it under the key first (so a retry that arrives the
/// moment the bidder hears the answer finds it). Travels with the bid through shard and
/// journal; if it is dropped unanswered (shutdown, a task gone), it answers
/// `storage_unavailable`, which also releases the key, so no key can be left claimed for
/// ever and no caller waits for ever.
pub struct Responder {
    to: Option<ReplyTo>,
    key: Option<ClaimedKey>,
}

/// An idempotency key this bid claimed, to be finished with the bid's answer.
struct ClaimedKey {
    registry: Arc<Idempotency>,
    user: UserId,
    key: String,
}

impl Responder {
    pub fn new(to: ReplyTo) -> Responder {
        Responder {
            to: Some(to),
            key: None,
        }
    }

    /// A responder for a caller that awaits the answer.
    pub fn caller() -> (Responder, oneshot::Receiver<BidReply>) {
        let (tx, rx) = oneshot::channel();
        (Responder::new(ReplyTo::Caller(tx)), rx)
    }

    fn with_key(mut self, registry: Arc<Idempotency>, user: UserId, key: String) -> Responder {
        self.key = Some(ClaimedKey {
            registry,
            user,
            key,
        });
        self
    }

    pub fn send(mut self, reply: BidReply) {
        self.deliver(reply);
    }

    fn deliver(&mut self, reply: BidReply) {
        if let Some(claimed) = self.key.take() {
            claimed.registry.finish(claimed.user, &claimed.key, &reply);
        }
        match self.to.take() {
            Some(ReplyTo::Caller(tx)) => {
                let _ = tx.send(reply);
            }
            Some(ReplyTo::Socket {
                conn,
                reference,
                received,
                answer_seconds,
            }) => {
                conn.push(crate::ws::protocol::bid_result(
                    reference.as_deref(),
                    reply.status.as_u16(),
                    &reply.body,
                ));
                conn.bid_answered();
                answer_seconds.observe(received.elapsed().as_secs_f64());
            }
            None => {}
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.to.is_some() || self.key.is_some() {
            self.deliver(BidReply::storage_unavailable());
        }
    }
}

/// Commands a shard takes, one at a time.
pub enum Command {
    Bid {
        input: BidInput,
        request_hash: Option<[u8; 32]>,
        reply: Responder,
    },
    /// Make sure the item's book is loaded (publishing its committed state to the hub).
    Touch {
        item: ItemId,
        reply: oneshot::Sender<()>,
    },
    /// The item's settings or its auction's calendar changed: reload it from Postgres.
    Reload { item: ItemId },
}

/// What became of a bid handed to [`Engine::submit`] without waiting.
pub enum Submitted {
    /// It is queued for its shard, or was answered at once (a retried idempotency key) by
    /// its responder.
    Done,
    /// It cannot go on without waiting: its key must be looked up in Postgres or is being
    /// answered for a concurrent duplicate, or its shard's queue is full. Finish it with
    /// [`Engine::finish_placing`], in order with the sender's later bids.
    MustWait(PendingBid),
}

/// A bid that [`Engine::submit`] could not hand on without waiting.
pub struct PendingBid(Waiting);

enum Waiting {
    /// Its idempotency key is not claimed yet.
    Claim(BidInput, Responder),
    /// Ready for its shard (its key, if any, is claimed), which is full.
    Queue(Command),
}

fn command_item(command: &Command) -> ItemId {
    match command {
        Command::Bid { input, .. } => input.item,
        Command::Touch { item, .. } | Command::Reload { item } => *item,
    }
}

/// The engine is stopping and its shard takes no more commands.
fn refuse_shutting_down(command: Command) {
    if let Command::Bid { reply, .. } = command {
        reply.send(BidReply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "The server is restarting. Please try again in a moment.",
        ));
    }
}

/// The handle handlers use. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shards: Arc<[mpsc::Sender<Command>]>,
    pub idempotency: Arc<Idempotency>,
    pub gates: Arc<Gates>,
    pub hub: Arc<Hub>,
}

/// Engine tasks, to wait for at shutdown.
pub struct EngineTasks(pub Vec<tokio::task::JoinHandle<()>>);

/// Truncates to whole microseconds: Postgres keeps microseconds, and a replay must see the
/// exact instant the live book saw, or a soft-close extension could come out differently.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

impl Engine {
    /// Starts `shards` shard tasks, each with its own journal, and rebuilds every book from
    /// Postgres first (recovery.rs), so the first bid after a restart sees the committed
    /// state.
    pub async fn start(
        db: PgPool,
        clock: Arc<dyn Clock>,
        hub: Arc<Hub>,
        shards: usize,
        metrics: JournalMetrics,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Engine, EngineTasks)> {
        let shards = shards.max(1);
        let gates = Arc::new(Gates::default());
        let idempotency = Arc::new(Idempotency::new(db.clone()));
        let started = std::time::Instant::now();
        // Independent reads, each in a task of its own so that both streams are drained as
        // fast as they come (polled together on one task, each would wait while the other
        // is being processed): together they take the longer one's time, not the sum (1M
        // bids with their keys: about 1.2 s and 0.8 s on the development box).
        let reading_keys = {
            let (idempotency, db) = (idempotency.clone(), db.clone());
            tokio::spawn(async move { idempotency.load_seen(&db).await })
        };
        let loading_books = {
            let (gates, db) = (gates.clone(), db.clone());
            tokio::spawn(async move { recovery::load_all(&db, &gates, shards).await })
        };
        let keys = reading_keys.await??;
        let loaded = loading_books.await??;
        tracing::info!(
            items = loaded.iter().map(|s| s.len()).sum::<usize>(),
            bids = loaded
                .iter()
                .flat_map(|s| s.iter())
                .map(|b| b.book.last_seq())
                .sum::<u64>(),
            idempotency_keys = keys,
            ms = started.elapsed().as_millis() as u64,
            "bid books rebuilt from Postgres"
        );
        let mut senders = Vec::with_capacity(shards);
        let mut tasks = Vec::new();
        for (index, books) in loaded.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(SHARD_QUEUE);
            let (journal, journal_task) =
                journal::spawn(db.clone(), hub.clone(), metrics.clone(), shutdown.clone());
            let shard = shard::Shard::new(
                index,
                db.clone(),
                clock.clone(),
                hub.clone(),
                gates.clone(),
                journal,
                books,
            );
            tasks.push(tokio::spawn(shard.run(rx, shutdown.clone())));
            tasks.push(journal_task);
            senders.push(tx);
        }
        let engine = Engine {
            shards: senders.into(),
            idempotency,
            gates,
            hub,
        };
        Ok((engine, EngineTasks(tasks)))
    }

    fn shard_for(&self, item: ItemId) -> &mpsc::Sender<Command> {
        // Items are routed by id: the same item always lands on the same shard.
        &self.shards[(item.0.unsigned_abs() % self.shards.len() as u64) as usize]
    }

    /// Places a bid and waits for its durable answer. With an idempotency key, a retry of
    /// the same bid gets the original answer, the same key with another payload gets 422,
    /// and concurrent duplicates make one effect.
    pub async fn place_bid(&self, input: BidInput) -> BidReply {
        let (responder, answer) = Responder::caller();
        self.place_bid_with(input, responder).await;
        answer
            .await
            .unwrap_or_else(|_| BidReply::storage_unavailable())
    }

    /// Places a bid, waiting as long as it takes to hand it to its shard (a key lookup, a
    /// full queue); the responder answers. The caller may go away afterwards: the responder
    /// travels with the bid and finishes its key whatever happens.
    pub async fn place_bid_with(&self, input: BidInput, responder: Responder) {
        let (input, hash, responder) = match &input.idempotency_key {
            None => (input, None, responder),
            Some(key) => {
                let hash = idempotency::request_hash(input.item, input.amount, input.max_proxy);
                match self.idempotency.claim(input.bidder, key, hash).await {
                    idempotency::Claim::Answered(reply) => return responder.send(reply),
                    idempotency::Claim::Mine => {
                        let responder = self.holding_key(&input, responder);
                        (input, Some(hash), responder)
                    }
                }
            }
        };
        self.queue(Command::Bid {
            input,
            request_hash: hash,
            reply: responder,
        })
        .await;
    }

    /// The responder of a bid whose key this caller has just claimed: it finishes the key.
    fn holding_key(&self, input: &BidInput, responder: Responder) -> Responder {
        match &input.idempotency_key {
            Some(key) => responder.with_key(self.idempotency.clone(), input.bidder, key.clone()),
            None => responder,
        }
    }

    /// Hands a command to its shard, waiting for room in its queue.
    async fn queue(&self, command: Command) {
        if let Err(mpsc::error::SendError(command)) =
            self.shard_for(command_item(&command)).send(command).await
        {
            refuse_shutting_down(command);
        }
    }

    /// Hands a bid to its shard without waiting, when that can be done: the common case of a
    /// WebSocket bid, answered by its responder straight into the socket's outbox.
    pub fn submit(&self, input: BidInput, responder: Responder) -> Submitted {
        let (hash, responder) = match &input.idempotency_key {
            None => (None, responder),
            Some(key) => {
                let hash = idempotency::request_hash(input.item, input.amount, input.max_proxy);
                match self.idempotency.try_claim(input.bidder, key, hash) {
                    idempotency::TryClaim::Answered(reply) => {
                        responder.send(reply);
                        return Submitted::Done;
                    }
                    idempotency::TryClaim::MustWait => {
                        return Submitted::MustWait(PendingBid(Waiting::Claim(input, responder)))
                    }
                    idempotency::TryClaim::Mine => {
                        (Some(hash), self.holding_key(&input, responder))
                    }
                }
            }
        };
        let command = Command::Bid {
            input,
            request_hash: hash,
            reply: responder,
        };
        match self.shard_for(command_item(&command)).try_send(command) {
            Ok(()) => Submitted::Done,
            Err(mpsc::error::TrySendError::Closed(command)) => {
                refuse_shutting_down(command);
                Submitted::Done
            }
            Err(mpsc::error::TrySendError::Full(command)) => {
                Submitted::MustWait(PendingBid(Waiting::Queue(command)))
            }
        }
    }

    /// Finishes handing on a bid that [`Engine::submit`] could not.
    pub async fn finish_placing(&self, pending: PendingBid) {
        match pending.0 {
            Waiting::Claim(input, responder) => self.place_bid_with(input, responder).await,
            Waiting::Queue(command) => self.queue(command).await,
        }
    }

    /// Loads the item's book if needed; afterwards the hub holds its committed snapshot.
    pub async fn touch(&self, item: ItemId) {
        let (tx, rx) = oneshot::channel();
        if self
            .shard_for(item)
            .send(Command::Touch { item, reply: tx })
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }

    /// Asks the item's shard to reload it (its price or the auction's calendar changed).
    pub async fn reload_item(&self, item: ItemId) {
        let _ = self.shard_for(item).send(Command::Reload { item }).await;
    }

    /// Reloads every live item of an auction (its calendar changed: closes and deadlines).
    pub async fn reload_auction(&self, db: &PgPool, auction: AuctionId) -> sqlx::Result<()> {
        let items: Vec<i64> = sqlx::query_scalar("SELECT id FROM items WHERE auction_id = $1 AND type = 'competitive' AND status = 'published'")
            .bind(auction.0)
            .fetch_all(db)
            .await?;
        for item in items {
            self.reload_item(ItemId(item)).await;
        }
        Ok(())
    }

    /// The auction's state changed (calendar flip or a manager's override): bids follow it
    /// at once, and `auction:<id>` subscribers hear of it.
    pub fn auction_state_changed(&self, auction: AuctionId, state: AuctionState, overridden: bool) {
        self.gates.set(auction, state, overridden);
        self.hub.publish_auction_state(auction, state);
    }
}
