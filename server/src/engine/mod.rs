//! The bid engine: the authoritative bid book of every item lives in memory, inside a
//! sharded actor.
//!
//! ```text
//!  edge (live/ socket session, http/bids.rs, pages/bidding.rs)
//!     │ Engine::submit / place_bid ── key checked once, claimed once (idempotency.rs)
//!     ▼ Command (bounded queue per shard)
//!  shard task (shard.rs) ── one per shard, owns its items' books, one command at a time,
//!     │                     rules in domain::bidding, no lock on the hot path
//!     ▼ Queued::Entry (bounded channel)
//!  journal task (journal.rs) ── group commit: every entry waiting goes to storage in ONE
//!     │                         transaction (ports::JournalStore; Postgres: pg/journal.rs)
//!     ▼ after commit only
//!  Responder (responder.rs) ── the answer: to a waiting caller, or into an AnswerSink
//!  fan-out ── ReadModel (state.rs) records the committed state, then the Publisher
//!             (the WebSocket hub) tells subscribers: price, outbid, closing
//! ```
//!
//! The engine reaches storage only through `ports::Storage` (Postgres in `pg/`, memory in
//! the unit tests) and the live edge only through `ports::Publisher` and
//! `ports::AnswerSink`: it imports no edge.
//!
//! Invariant: acknowledged ⇒ committed. A shard applies a bid to its book at once (so the
//! next bid sees it) but nobody hears of it until the journal has committed it. When a
//! write fails, every entry decided on the item's book since is refused and the item is
//! reloaded from storage before it takes another bid (journal.rs).

pub mod answer;
pub mod command;
pub mod gate;
pub mod idempotency;
pub mod journal;
pub mod pg;
pub mod ports;
pub mod recovery;
pub mod responder;
pub mod shard;
pub mod state;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    clock::Clock,
    domain::{AuctionId, AuctionState, ItemId},
    metrics::JournalMetrics,
};

pub use answer::{BidReply, Outcome};
pub use command::{BidInput, BuyInput, PendingBid, Submitted};
pub use ports::{AnswerSink, Answering, Publisher, StoreError};
pub use responder::Responder;
pub use state::{bidder_label, ItemState, TallyNow};

use command::{Command, Order, Waiting};
use gate::Gates;
use idempotency::Idempotency;
use shard::{Inbox, Shard, ShardParts};
use state::{ReadModel, Tally};

/// How many commands may wait for one shard. Beyond it, callers wait (backpressure) rather
/// than the shard's memory growing without bound during a storm.
const SHARD_QUEUE: usize = 8192;
/// First looks at items (a subscribe, a page) waiting for one shard. Small: a look at an
/// item that is live costs nothing (the read model answers), so only looks at items not
/// loaded yet come here, and a flood of made-up ids must not hold memory or bids up.
const TOUCH_QUEUE: usize = 256;
/// How long a first look at an item waits for its book.
const TOUCH_WAIT: Duration = Duration::from_secs(5);

/// The handle the edges use. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shards: Arc<[ShardQueues]>,
    tally: Arc<Tally>,
    idempotency: Arc<Idempotency>,
    gates: Arc<Gates>,
    read_model: Arc<ReadModel>,
    publisher: Arc<dyn Publisher>,
}

struct ShardQueues {
    commands: mpsc::Sender<Command>,
    touches: mpsc::Sender<Command>,
}

/// Engine tasks, to wait for at shutdown.
pub struct EngineTasks(pub Vec<tokio::task::JoinHandle<()>>);

/// What the engine is started with.
pub struct EngineParts<S> {
    pub storage: S,
    pub publisher: Arc<dyn Publisher>,
    pub clock: Arc<dyn Clock>,
    pub shards: usize,
    pub metrics: JournalMetrics,
    pub shutdown: CancellationToken,
}

/// Truncates to whole microseconds: Postgres keeps microseconds, and a replay must see the
/// exact instant the live book saw, or a soft-close extension could come out differently.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

impl Engine {
    /// Starts the shard tasks, each with its own journal, and rebuilds every book from
    /// storage first (recovery.rs), so the first bid after a restart sees the committed
    /// state.
    pub async fn start<S: ports::Storage>(
        parts: EngineParts<S>,
    ) -> Result<(Engine, EngineTasks), StoreError> {
        let EngineParts {
            storage,
            publisher,
            clock,
            shards,
            metrics,
            shutdown,
        } = parts;
        let shards = shards.max(1);
        let gates = Arc::new(Gates::default());
        let read_model = Arc::new(ReadModel::default());
        let tally = Arc::new(Tally::default());
        let keys = storage.keys();
        let books = storage.books();
        let idempotency = Arc::new(Idempotency::new(keys.clone()));
        let started = std::time::Instant::now();
        // Independent reads, each in a task of its own so that both streams are drained as
        // fast as they come (polled together on one task, each would wait while the other
        // is being processed): together they take the longer one's time, not the sum (1M
        // bids with their keys: about 1.2 s and 0.8 s on the development box).
        let reading_keys = {
            let idempotency = idempotency.clone();
            tokio::spawn(async move { idempotency.load_seen(keys.as_ref()).await })
        };
        let loading_books = {
            let (gates, books) = (gates.clone(), books.clone());
            tokio::spawn(async move { recovery::load_all(books.as_ref(), &gates, shards).await })
        };
        let joined = |e: tokio::task::JoinError| StoreError::Internal(e.to_string());
        let keys_read = reading_keys.await.map_err(joined)??;
        let loaded = loading_books.await.map_err(joined)??;
        tracing::info!(
            items = loaded.iter().map(|s| s.len()).sum::<usize>(),
            bids = loaded
                .iter()
                .flat_map(|s| s.iter())
                .filter_map(|b| b.bidding.as_ref())
                .map(|b| b.book.last_seq())
                .sum::<u64>(),
            idempotency_keys = keys_read,
            ms = started.elapsed().as_millis() as u64,
            "bid books rebuilt from storage"
        );
        let mut queues = Vec::with_capacity(shards);
        let mut tasks = Vec::new();
        for (index, loaded) in loaded.into_iter().enumerate() {
            let (commands, commands_rx) = mpsc::channel(SHARD_QUEUE);
            let (touches, touches_rx) = mpsc::channel(TOUCH_QUEUE);
            // Every log line of a shard, its loader and its journal names the shard.
            let span = tracing::info_span!("shard", index);
            let (journal, journal_task) = span.in_scope(|| {
                journal::spawn(
                    storage.journal(),
                    tally.clone(),
                    read_model.clone(),
                    publisher.clone(),
                    metrics.clone(),
                    shutdown.clone(),
                )
            });
            let shard = span.in_scope(|| {
                Shard::new(
                    ShardParts {
                        index,
                        clock: clock.clone(),
                        read_model: read_model.clone(),
                        publisher: publisher.clone(),
                        books: books.clone(),
                        gates: gates.clone(),
                        journal,
                    },
                    loaded,
                )
            });
            let inbox = Inbox {
                commands: commands_rx,
                touches: touches_rx,
            };
            tasks.push(tokio::spawn(
                shard.run(inbox, shutdown.clone()).instrument(span),
            ));
            tasks.push(journal_task);
            queues.push(ShardQueues { commands, touches });
        }
        let engine = Engine {
            tally,
            shards: queues.into(),
            idempotency,
            gates,
            read_model,
            publisher,
        };
        Ok((engine, EngineTasks(tasks)))
    }

    fn shard_for(&self, item: ItemId) -> &ShardQueues {
        &self.shards[recovery::shard_index(item, self.shards.len())]
    }

    /// Places a bid and waits for its durable answer. With an idempotency key, a retry of
    /// the same bid gets the original answer, the same key with another payload gets 422,
    /// and concurrent duplicates make one effect.
    pub async fn place_bid(&self, input: BidInput) -> BidReply {
        self.answer_of(Order::Bid(input)).await
    }

    /// Buys reoffer units and waits for the durable answer; idempotency keys as for bids.
    pub async fn buy(&self, input: BuyInput) -> BidReply {
        self.answer_of(Order::Buy(input)).await
    }

    async fn answer_of(&self, order: Order) -> BidReply {
        let (responder, answer) = Responder::caller();
        self.place_with(order, responder).await;
        answer
            .await
            .unwrap_or_else(|_| BidReply::storage_unavailable())
    }

    /// Places a bid, waiting as long as it takes to hand it to its shard (a key lookup, a
    /// full queue); the responder answers. The caller may go away afterwards: the responder
    /// travels with the bid and finishes its key whatever happens.
    pub async fn place_bid_with(&self, input: BidInput, responder: Responder) {
        self.place_with(Order::Bid(input), responder).await
    }

    /// As [`Engine::place_bid_with`], for a reoffer purchase.
    pub async fn buy_with(&self, input: BuyInput, responder: Responder) {
        self.place_with(Order::Buy(input), responder).await
    }

    async fn place_with(&self, order: Order, responder: Responder) {
        let (hash, responder) = match order.key() {
            None => (None, responder),
            Some((user, scope, key)) => {
                if let Err(reply) = idempotency::validate_key(key) {
                    return responder.send(reply);
                }
                let hash = order.request_hash();
                match self.idempotency.claim(user, scope, key, hash).await {
                    idempotency::Claim::Answered(reply) => return responder.send(reply),
                    idempotency::Claim::Mine => (Some(hash), self.holding_key(&order, responder)),
                }
            }
        };
        let item = order.item();
        self.queue(item, order.into_command(hash, responder)).await;
    }

    /// The responder of an order whose key this caller has just claimed: it finishes the key.
    fn holding_key(&self, order: &Order, responder: Responder) -> Responder {
        match order.key() {
            Some((user, scope, key)) => responder.holding(responder::ClaimedKey {
                registry: self.idempotency.clone(),
                user,
                scope,
                key: key.to_string(),
            }),
            None => responder,
        }
    }

    /// Hands a command about `item` to its shard, waiting for room in its queue.
    async fn queue(&self, item: ItemId, command: Command) {
        if let Err(mpsc::error::SendError(command)) =
            self.shard_for(item).commands.send(command).await
        {
            command.refuse(BidReply::shutting_down());
        }
    }

    /// Hands a bid to its shard without waiting, when that can be done: the common case of a
    /// WebSocket bid, answered by its responder straight into the socket's outbox.
    pub fn submit(&self, input: BidInput, responder: Responder) -> Submitted {
        self.submit_order(Order::Bid(input), responder)
    }

    /// As [`Engine::submit`], for a reoffer purchase (a socket's `buy`).
    pub fn submit_buy(&self, input: BuyInput, responder: Responder) -> Submitted {
        self.submit_order(Order::Buy(input), responder)
    }

    fn submit_order(&self, order: Order, responder: Responder) -> Submitted {
        let (hash, responder) = match order.key() {
            None => (None, responder),
            Some((user, scope, key)) => {
                if let Err(reply) = idempotency::validate_key(key) {
                    responder.send(reply);
                    return Submitted::Done;
                }
                let hash = order.request_hash();
                match self.idempotency.try_claim(user, scope, key, hash) {
                    idempotency::TryClaim::Answered(reply) => {
                        responder.send(reply);
                        return Submitted::Done;
                    }
                    idempotency::TryClaim::MustWait => {
                        return Submitted::MustWait(Box::new(PendingBid(Waiting::Claim(
                            order, responder,
                        ))))
                    }
                    idempotency::TryClaim::Mine => {
                        (Some(hash), self.holding_key(&order, responder))
                    }
                }
            }
        };
        let item = order.item();
        let command = order.into_command(hash, responder);
        match self.shard_for(item).commands.try_send(command) {
            Ok(()) => Submitted::Done,
            Err(mpsc::error::TrySendError::Closed(command)) => {
                command.refuse(BidReply::shutting_down());
                Submitted::Done
            }
            Err(mpsc::error::TrySendError::Full(command)) => {
                Submitted::MustWait(Box::new(PendingBid(Waiting::Queue(item, command))))
            }
        }
    }

    /// Finishes handing on a bid or purchase that [`Engine::submit`] could not.
    pub async fn finish_placing(&self, pending: Box<PendingBid>) {
        match pending.0 {
            Waiting::Claim(order, responder) => self.place_with(order, responder).await,
            Waiting::Queue(item, command) => self.queue(item, command).await,
        }
    }

    /// The item's committed state, loading its book first if it is not loaded yet; `None`
    /// when the item is not live (missing, not published, not sold by bidding) or its book
    /// could not be loaded within a few seconds.
    pub async fn live_state(&self, item: ItemId) -> Option<ItemState> {
        if let Some(state) = self.read_model.get(item) {
            return Some(state);
        }
        let (reply, answer) = oneshot::channel();
        let touch = Command::Touch { item, reply };
        let asked = async {
            self.shard_for(item).touches.send(touch).await.ok()?;
            answer.await.ok().flatten()
        };
        tokio::time::timeout(TOUCH_WAIT, asked).await.ok().flatten()
    }

    /// The item's committed state if its book is loaded (never waits).
    pub fn committed_state(&self, item: ItemId) -> Option<ItemState> {
        self.read_model.get(item)
    }

    /// The committed states of an auction's live items, by id.
    pub fn auction_items(&self, auction: AuctionId) -> Vec<ItemState> {
        self.read_model.auction_items(auction)
    }

    /// Changes whenever an item of the auction changes (a cache key for what is built from
    /// all of its items).
    pub fn auction_version(&self, auction: AuctionId) -> u64 {
        self.read_model.auction_version(auction)
    }

    /// The auction's state as the engine follows it, if it has a live item or changed state
    /// since the start.
    pub fn auction_state(&self, auction: AuctionId) -> Option<AuctionState> {
        self.gates.state(auction)
    }

    /// The auction's state changed (calendar flip or a manager's override): bids follow it
    /// at once, and the publisher tells `auction:<id>` subscribers.
    pub fn auction_state_changed(&self, auction: AuctionId, state: AuctionState, overridden: bool) {
        self.gates.set(auction, state, overridden);
        self.publisher.auction_state(auction, state);
    }

    /// The auction's calendar (or state) changed: its state as above, and every book of it
    /// is read again, so closes and deadlines follow the new dates at once.
    pub async fn calendar_changed(
        &self,
        auction: AuctionId,
        state: AuctionState,
        overridden: bool,
    ) {
        self.auction_state_changed(auction, state, overridden);
        for shard in self.shards.iter() {
            let _ = shard
                .commands
                .send(Command::AuctionChanged { auction })
                .await;
        }
    }

    /// The item's settings changed, or it was published or withdrawn: its book (or the
    /// memory that it is not live) is read again.
    pub async fn item_changed(&self, item: ItemId) {
        let _ = self
            .shard_for(item)
            .commands
            .send(Command::Reload { item })
            .await;
    }

    /// What the engine answered since the start.
    pub fn tally(&self) -> TallyNow {
        self.tally.now()
    }

    /// An edge refused a bid or purchase for its rate (counted with the engine's answers).
    pub fn count_rate_limited(&self) {
        Tally::add(&self.tally.rate_limited, 1);
    }

    /// Periodic upkeep (the scheduler calls it every minute): forgets answered keys held in
    /// memory for long enough (they stay in storage).
    pub fn housekeeping(&self) {
        self.idempotency.forget_old();
    }
}
