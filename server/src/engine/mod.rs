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

use std::{sync::Arc, time::Duration};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    clock::Clock,
    domain::{AuctionId, AuctionState, Cents, ItemId, UserId},
    ws::hub::Hub,
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

    pub fn is_storage_unavailable(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Commands a shard takes, one at a time.
pub enum Command {
    Bid {
        input: BidInput,
        request_hash: Option<[u8; 32]>,
        reply: oneshot::Sender<BidReply>,
    },
    /// Make sure the item's book is loaded (publishing its committed state to the hub).
    Touch {
        item: ItemId,
        reply: oneshot::Sender<()>,
    },
    /// The item's settings or its auction's calendar changed: reload it from Postgres.
    Reload { item: ItemId },
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
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Engine, EngineTasks)> {
        let shards = shards.max(1);
        let gates = Arc::new(Gates::default());
        let idempotency = Arc::new(Idempotency::new(db.clone()));
        let started = std::time::Instant::now();
        let loaded = recovery::load_all(&db, &gates, shards).await?;
        tracing::info!(
            items = loaded.iter().map(|s| s.len()).sum::<usize>(),
            bids = loaded
                .iter()
                .flat_map(|s| s.iter())
                .map(|b| b.book.last_seq())
                .sum::<u64>(),
            ms = started.elapsed().as_millis() as u64,
            "bid books rebuilt from Postgres"
        );
        let mut senders = Vec::with_capacity(shards);
        let mut tasks = Vec::new();
        for (index, books) in loaded.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(SHARD_QUEUE);
            let (journal, journal_task) = journal::spawn(db.clone(), hub.clone(), shutdown.clone());
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
        let Some(key) = input.idempotency_key.clone() else {
            return self.send_bid(input, None).await;
        };
        let hash = idempotency::request_hash(input.item, input.amount, input.max_proxy);
        if let idempotency::Claim::Answered(reply) =
            self.idempotency.claim(input.bidder, &key, hash).await
        {
            return reply;
        }
        // From here the key is ours and must be finished whatever happens to the caller (a
        // client that hangs up drops the handler's future): a task of its own runs the bid
        // and records its answer, or every retry of the key would wait for ever.
        let engine = self.clone();
        let bidder = input.bidder;
        let run = tokio::spawn(async move {
            let reply = engine.send_bid(input, Some(hash)).await;
            engine.idempotency.finish(bidder, &key, &reply);
            reply
        });
        run.await
            .unwrap_or_else(|_| BidReply::storage_unavailable())
    }

    async fn send_bid(&self, input: BidInput, request_hash: Option<[u8; 32]>) -> BidReply {
        let (tx, rx) = oneshot::channel();
        let shard = self.shard_for(input.item);
        if shard
            .send(Command::Bid {
                input,
                request_hash,
                reply: tx,
            })
            .await
            .is_err()
        {
            return BidReply::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "The server is restarting. Please try again in a moment.",
            );
        }
        rx.await.unwrap_or_else(|_| BidReply::storage_unavailable())
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
