//! Rebuilding books from what storage has committed: at start for every live item, and for
//! one item after a failed write or a change of its settings. The journal is the truth; a
//! book is the replay of its item's accepted bids in seq order (`Book::replay`). Storage
//! hands over rows ([`BookSource`]); turning them into books is pure and lives here.

use std::{collections::HashMap, sync::Arc};

use chrono::Duration;

use crate::{
    domain::{
        bidding::{Book, RecordedBid, ReplayError},
        AuctionId, ItemId,
    },
    engine::{
        gate::{Gate, Gates},
        ports::{BookSource, StoreError, StoredBid, StoredItem},
        state::{ItemState, NotLive},
    },
};

/// A book with what the shard needs around it.
pub struct LoadedBook {
    pub item: ItemId,
    pub auction: AuctionId,
    pub gate: Arc<Gate>,
    pub book: Book,
    pub leader_paddle: Option<i32>,
    /// Paddle numbers of this item's bidders (for `leadingBidderId`).
    pub paddles: HashMap<i64, i32>,
}

impl LoadedBook {
    pub fn state(&self) -> ItemState {
        ItemState {
            item: self.item,
            auction: self.auction,
            price: self.book.price(),
            bid_count: self.book.bid_count(),
            seq: self.book.last_seq(),
            leader_paddle: self.leader_paddle,
            next_minimum: self.book.next_minimum(),
            opening: self.book.opening(),
            closes_at: self.book.closes_at(),
        }
    }
}

/// Replays one item's recorded bids. The journal is the truth of what was accepted: if the
/// calendar has since moved the close before a recorded bid, the replay's close is moved
/// after it (the close changes no price or leader). A recorded bid the rules still refuse
/// means the journal and the rules disagree: the item is not served at all (answered 503)
/// rather than with a truncated book whose sequence numbers would collide with the table.
pub fn build(item: &StoredItem, bids: &[StoredBid], gates: &Gates) -> Result<LoadedBook, NotLive> {
    if let Some(orphan) = bids.iter().find(|b| b.paddle.is_none()) {
        tracing::error!(
            item = item.item.0,
            bidder = orphan.bidder.0,
            "a recorded bid's bidder no longer exists; the item is not served until this is fixed"
        );
        return Err(NotLive::Inconsistent);
    }
    let recorded: Vec<RecordedBid> = bids
        .iter()
        .map(|b| RecordedBid {
            bidder: b.bidder.0,
            amount: b.amount,
            max_proxy: b.max_proxy,
            at: b.at,
        })
        .collect();
    let mut params = item.params;
    if let Some(last) = recorded.last() {
        if params.closes_at <= last.at {
            params.closes_at = last.at + Duration::microseconds(1);
            params.hard_deadline = params.hard_deadline.max(params.closes_at);
        }
    }
    let book = Book::replay(params, &recorded).map_err(|e: ReplayError| {
        tracing::error!(item = item.item.0, error = %e, "replay refused a recorded bid; the item is not served until this is fixed");
        NotLive::Inconsistent
    })?;
    let paddles: HashMap<i64, i32> = bids
        .iter()
        .filter_map(|b| Some((b.bidder.0, b.paddle?)))
        .collect();
    let leader_paddle = book.leader().and_then(|l| paddles.get(&l).copied());
    Ok(LoadedBook {
        item: item.item,
        auction: item.auction,
        gate: gates.get_or_insert(item.auction, item.auction_state, item.overridden),
        book,
        leader_paddle,
        paddles,
    })
}

/// The shard that owns an item: the same item always lands on the same shard.
pub fn shard_index(item: ItemId, shards: usize) -> usize {
    (item.0.unsigned_abs() % shards.max(1) as u64) as usize
}

/// Every live item's book, grouped by shard. An item whose journal does not replay is left
/// unloaded: its first command loads it again and is refused (see [`build`]).
pub async fn load_all<B: BookSource>(
    source: &B,
    gates: &Gates,
    shards: usize,
) -> Result<Vec<Vec<LoadedBook>>, StoreError> {
    let mut out: Vec<Vec<LoadedBook>> = (0..shards.max(1)).map(|_| Vec::new()).collect();
    source
        .load_all(|item, bids| {
            if let Ok(book) = build(&item, &bids, gates) {
                out[shard_index(item.item, shards)].push(book);
            }
        })
        .await?;
    Ok(out)
}
