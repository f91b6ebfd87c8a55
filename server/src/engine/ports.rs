//! The engine's seams: what it needs from storage and from the live edge, as traits it owns.
//!
//! Storage ports ([`JournalStore`], [`BookSource`], [`KeyStore`], bundled by [`Storage`])
//! are generic parameters chosen once at start ([`crate::engine::Engine::start`]), so the
//! hot path pays no dynamic dispatch; Postgres implements them in `engine/pg/`, the unit
//! tests in memory (`engine/testing.rs`). Live ports ([`Publisher`], [`AnswerSink`]) are
//! trait objects, as cheap as the `Arc`s they replace: the WebSocket hub and each
//! connection's outbox implement them today, and a second transport (a Redis fan-out for
//! several nodes) would be another implementation, not an edit inside the shards.

use std::{future::Future, sync::Arc, time::Instant};

use chrono::{DateTime, Utc};

use crate::{
    domain::{bidding::BookParams, AuctionId, AuctionState, Cents, ItemId, UserId},
    engine::{
        answer::BidReply,
        idempotency::Scope,
        journal::Record,
        state::{ItemState, NotLive},
    },
};

/// Why storage did not do what the engine asked. The journal's reaction depends on which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Storage could not be reached or did not answer in time. For a commit, the outcome is
    /// known (nothing written) unless the connection died while the statement ran; that one
    /// uncertain case is contained by reloading the items from storage (docs/ARCHITECTURE.md).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Storage answered and refused the write because of its data (a constraint, a value it
    /// cannot hold): nothing of it was written, and the same data would fail again. A batch
    /// refused this way is split to find the entry at fault, so one bad entry never fails
    /// the others.
    #[error("storage refused the data: {0}")]
    Rejected(String),
    /// Anything else (an unexpected answer, a bug): treated like `Unavailable`.
    #[error("storage error: {0}")]
    Internal(String),
}

/// The write side of one shard's journal. Each shard owns one and calls it from one task,
/// hence `&mut self`: an implementation may keep a connection and prepared statements.
pub trait JournalStore: Send + 'static {
    /// Writes one batch in one transaction: all of it or none of it. No client-side
    /// timeout: abandoning a write that may still commit would make its outcome unknown;
    /// implementations bound it on the server side instead.
    ///
    /// A purchase's commitment gets its id from storage; its answer names it, so the answer
    /// (stored under the purchase's key in the same transaction) holds a placeholder that
    /// the store replaces with the id ([`crate::engine::answer::COMMITMENT_PLACEHOLDER`]),
    /// and the ids come back, by position in `batch`, for the journal to do the same.
    fn commit(
        &mut self,
        batch: &[Record],
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send;
}

/// What a commit assigned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// (position in the batch, commitment id) of every purchase.
    pub commitments: Vec<(usize, i64)>,
}

/// An item as stored, with what its book needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredItem {
    pub item: ItemId,
    pub auction: AuctionId,
    /// Sold by bidding (else at a fixed price: no book, only stock).
    pub competitive: bool,
    pub params: BookParams,
    /// The auction's effective state (a manager's override if any, else the calendar's).
    pub auction_state: AuctionState,
    /// Whether a manager pinned that state.
    pub overridden: bool,
    /// Units the item has in all.
    pub units: u32,
    /// When its bidding close was recorded (with its winners), if it was.
    pub closed: bool,
    /// The winners recorded at that close: (bidder, amount), for recovery to check against
    /// the replay of the bids.
    pub winners: Vec<(UserId, Cents)>,
    /// What the reoffer phase may still sell of it (0: nothing, or the donor opted out, or
    /// it was won), and at what price each.
    pub stock: StockParams,
    /// Changes other than bids recorded for it (its close, each purchase): they count into
    /// its version (`ItemState::version`) with its bids.
    pub events: u64,
    /// Units the reoffer phase sold.
    pub reoffer_sold: u32,
}

/// An item's reoffer stock as stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StockParams {
    pub left: u32,
    pub price: Cents,
}

/// A recorded bid, in the form a replay needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBid {
    pub bidder: UserId,
    pub amount: Cents,
    pub max_proxy: Option<Cents>,
    pub at: DateTime<Utc>,
    /// The bidder's paddle number; `None` if the bidder's row is gone (the item is then not
    /// served, see `recovery::build`).
    pub paddle: Option<i32>,
}

/// One item's stored state: what `recovery::build` turns into a book.
pub type StoredBook = (StoredItem, Vec<StoredBid>);

/// Items asked for, each with its stored state or why it has none.
pub type LoadedItems = Vec<(ItemId, Result<StoredBook, NotLive>)>;

/// Where books come from: at start, and for one item on first use, after a failed write or
/// when its settings change.
pub trait BookSource: Send + Sync + 'static {
    /// Every item that takes bids now, each with its recorded bids in seq order, handed to
    /// `each` one item at a time, so memory holds one item's bids, never the whole table.
    fn load_all<F>(&self, each: F) -> impl Future<Output = Result<(), StoreError>> + Send
    where
        F: FnMut(StoredItem, Vec<StoredBid>) + Send;

    /// The given items, in one round of queries whatever their number; every item asked for
    /// is answered, in any order.
    fn load_items(
        &self,
        items: &[ItemId],
    ) -> impl Future<Output = Result<LoadedItems, StoreError>> + Send;

    /// The auction's items that have a book (they follow its calendar).
    fn auction_items(
        &self,
        auction: AuctionId,
    ) -> impl Future<Output = Result<Vec<ItemId>, StoreError>> + Send;
}

/// A stored idempotency key's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAnswer {
    /// What the key stood for (`idempotency::request_hash`).
    pub request_hash: [u8; 32],
    pub reply: BidReply,
}

/// Where bids' idempotency keys and their answers are kept across restarts. The journal
/// writes them, in the same transaction as the bids; this port reads them.
pub trait KeyStore: Send + Sync + 'static {
    /// Every stored key, handed to `each` (at start). Returns how many.
    fn each_key<F>(&self, each: F) -> impl Future<Output = Result<usize, StoreError>> + Send
    where
        F: FnMut(UserId, Scope, &str) + Send;

    /// The stored answers of the given keys, in the order asked (`None`: never stored).
    fn lookup(
        &self,
        keys: &[(UserId, Scope, String)],
    ) -> impl Future<Output = Result<Vec<Option<StoredAnswer>>, StoreError>> + Send;
}

/// The storage ports, bundled so the engine takes one value.
pub trait Storage: Send + Sync + 'static {
    type Journal: JournalStore;
    type Books: BookSource;
    type Keys: KeyStore;
    /// A journal store for one shard (called once per shard at start).
    fn journal(&self) -> Self::Journal;
    fn books(&self) -> Arc<Self::Books>;
    fn keys(&self) -> Arc<Self::Keys>;
}

/// Whoever tells the world about committed state: the WebSocket hub today. Every call is
/// made only after the state it carries is durable.
pub trait Publisher: Send + Sync + 'static {
    /// An item's committed state changed (a commit, or a book reloaded with other state).
    /// Called while the engine's read model holds that item's entry, so one item's states
    /// reach the publisher in the order they were recorded: the last price sent is always
    /// the recorded one.
    fn item_changed(&self, state: &ItemState);
    /// The item's close moved later (soft close), by a committed bid.
    fn extended(&self, state: &ItemState);
    /// `user` lost the lead on the item, by a committed bid.
    fn outbid(&self, user: UserId, state: &ItemState);
    /// The item's bidding closed, recorded with its winners (bidder, amount; none when
    /// unsold): the final word on the item, to everyone watching and to each winner.
    fn item_closed(&self, state: &ItemState, winners: &[(UserId, Cents)]);
    /// Units were sold (reoffer): what is left, to everyone watching.
    fn stock_changed(&self, state: &ItemState);
    /// The auction's state changed (calendar flip or a manager's override).
    fn auction_state(&self, auction: AuctionId, state: AuctionState);
}

/// What an answer answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answering {
    Bid,
    Buy,
}

/// One connection's answers, for bids and purchases that do not wait for theirs (a
/// WebSocket's).
pub trait AnswerSink: Send + Sync + 'static {
    /// The answer to the bid or purchase sent with `reference`, read at `received`.
    fn answer(&self, what: Answering, reference: Option<&str>, received: Instant, reply: &BidReply);
}
