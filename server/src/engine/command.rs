//! What handlers hand the engine, and what a shard takes.

use tokio::sync::oneshot;

use crate::{
    domain::{AuctionId, Cents, ItemId, UserId},
    engine::{
        answer::BidReply,
        idempotency::{self, Scope},
        responder::Responder,
        state::ItemState,
    },
};

/// A bid as a handler received it (REST body, WebSocket frame, page form).
#[derive(Clone, Debug)]
pub struct BidInput {
    pub item: ItemId,
    pub bidder: UserId,
    pub paddle: i32,
    pub amount: Cents,
    pub max_proxy: Option<Cents>,
    /// Checked once, where every bid path meets (`idempotency::validate_key`).
    pub idempotency_key: Option<String>,
}

/// A reoffer purchase as a handler received it (REST body, WebSocket frame, page form).
#[derive(Clone, Debug)]
pub struct BuyInput {
    pub item: ItemId,
    pub buyer: UserId,
    pub quantity: u32,
    /// Checked once, where every purchase path meets (`idempotency::validate_key`).
    pub idempotency_key: Option<String>,
}

/// A bid or a purchase on its way to its shard: what the engine's entry points share
/// (the key's check and claim, the queue).
pub(crate) enum Order {
    Bid(BidInput),
    Buy(BuyInput),
}

impl Order {
    pub fn item(&self) -> ItemId {
        match self {
            Order::Bid(input) => input.item,
            Order::Buy(input) => input.item,
        }
    }

    /// Its idempotency key, with whose and what for.
    pub fn key(&self) -> Option<(UserId, Scope, &str)> {
        match self {
            Order::Bid(input) => input
                .idempotency_key
                .as_deref()
                .map(|k| (input.bidder, Scope::Bid, k)),
            Order::Buy(input) => input
                .idempotency_key
                .as_deref()
                .map(|k| (input.buyer, Scope::Purchase, k)),
        }
    }

    /// What its key stands for.
    pub fn request_hash(&self) -> [u8; 32] {
        match self {
            Order::Bid(i) => idempotency::request_hash(i.item, i.amount, i.max_proxy),
            Order::Buy(i) => idempotency::purchase_hash(i.item, i.quantity),
        }
    }

    pub fn into_command(self, request_hash: Option<[u8; 32]>, reply: Responder) -> Command {
        match self {
            Order::Bid(input) => Command::Bid {
                input,
                request_hash,
                reply,
            },
            Order::Buy(input) => Command::Buy {
                input,
                request_hash,
                reply,
            },
        }
    }
}

/// Commands a shard takes from its bid queue, one at a time.
pub enum Command {
    Bid {
        input: BidInput,
        /// The hash of what the bid's idempotency key stands for, when it has one.
        request_hash: Option<[u8; 32]>,
        reply: Responder,
    },
    /// A reoffer purchase: first come, first served, no holds.
    Buy {
        input: BuyInput,
        /// The hash of what the purchase's idempotency key stands for, when it has one.
        request_hash: Option<[u8; 32]>,
        reply: Responder,
    },
    /// The item's settings changed: reload it from storage.
    Reload { item: ItemId },
    /// The auction's calendar changed: reload every book of it (sent to every shard).
    AuctionChanged { auction: AuctionId },
    /// Make sure the item's book is loaded; answered with its committed state, or `None`
    /// when the item is not live.
    Touch {
        item: ItemId,
        reply: oneshot::Sender<Option<ItemState>>,
    },
}

impl Command {
    /// The item the command is about (none for an auction-wide one).
    pub fn item(&self) -> Option<ItemId> {
        match self {
            Command::Bid { input, .. } => Some(input.item),
            Command::Buy { input, .. } => Some(input.item),
            Command::Touch { item, .. } | Command::Reload { item } => Some(*item),
            Command::AuctionChanged { .. } => None,
        }
    }

    /// Answers a command that cannot run (a touch hears that the item is not live).
    pub fn refuse(self, reply: BidReply) {
        match self {
            Command::Bid { reply: tx, .. } | Command::Buy { reply: tx, .. } => tx.send(reply),
            Command::Touch { reply: tx, .. } => {
                let _ = tx.send(None);
            }
            Command::Reload { .. } | Command::AuctionChanged { .. } => {}
        }
    }
}

/// What became of a bid handed to [`crate::engine::Engine::submit`] without waiting.
pub enum Submitted {
    /// It is queued for its shard, or was answered at once (a retried idempotency key, an
    /// invalid key) by its responder.
    Done,
    /// It cannot go on without waiting: its key must be looked up in storage or is being
    /// answered for a concurrent duplicate, or its shard's queue is full. Finish it with
    /// [`crate::engine::Engine::finish_placing`], in order with the sender's later bids.
    MustWait(Box<PendingBid>),
}

/// A bid that `submit` could not hand on without waiting.
pub struct PendingBid(pub(crate) Waiting);

pub(crate) enum Waiting {
    /// Its idempotency key is not claimed yet.
    Claim(Order, Responder),
    /// Ready for the shard of the item (its key, if any, is claimed), which is full.
    Queue(ItemId, Command),
}
