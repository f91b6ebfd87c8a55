//! Rebuilding books from what storage has committed: at start for every live item, and for
//! one item after a failed write or a change of its settings. The journal is the truth; a
//! book is the replay of its item's accepted bids in seq order (`Book::replay`), and the
//! winners recorded at its close must be what that replay awards (`awards`). Storage hands
//! over rows ([`BookSource`]); turning them into books is pure and lives here.

use std::{collections::HashMap, sync::Arc};

use chrono::Duration;

use crate::{
    domain::{
        bidding::{awards, Book, RecordedBid, ReplayError, Standings},
        AuctionId, Cents, ItemId, UserId,
    },
    engine::{
        gate::{Gate, Gates},
        ports::{BookSource, StockParams, StoreError, StoredBid, StoredItem},
        state::{ItemState, NotLive},
    },
};

/// A competitive item's bidding: its book, and what the shard keeps around it.
pub struct Bidding {
    pub book: Book,
    /// Each bidder's standing (for the winners of an item of several units).
    pub standings: Standings,
    pub leader_paddle: Option<i32>,
    /// Paddle numbers of this item's bidders (for `leadingBidderId`).
    pub paddles: HashMap<i64, i32>,
}

/// One item in its shard: its bidding (competitive items), its close, its stock.
pub struct LoadedBook {
    pub item: ItemId,
    pub auction: AuctionId,
    pub gate: Arc<Gate>,
    pub bidding: Option<Bidding>,
    /// The item's opening bid (competitive) or price: what a page shows before any bid.
    pub opening: Cents,
    /// When bidding closes by the calendar (a competitive item's book may close later).
    pub closes_at: chrono::DateTime<chrono::Utc>,
    /// Units in all.
    pub units: u32,
    /// Its bidding close is recorded (decided, or being written by the journal).
    pub closed: bool,
    /// What the reoffer phase may still sell of it.
    pub stock: StockParams,
    /// Changes other than bids (its close, each purchase), for its version.
    pub events: u64,
    /// Units the reoffer phase sold.
    pub reoffer_sold: u32,
}

impl LoadedBook {
    pub fn state(&self) -> ItemState {
        let (price, bid_count, seq, next_minimum, closes_at, leader_paddle, bidders) =
            match &self.bidding {
                Some(b) => (
                    b.book.price(),
                    b.book.bid_count(),
                    b.book.last_seq(),
                    b.book.next_minimum(),
                    b.book.closes_at(),
                    b.leader_paddle,
                    b.standings.bidders() as u32,
                ),
                None => (None, 0, 0, self.opening, self.closes_at, None, 0),
            };
        let winning_total = match &self.bidding {
            // Ranking every bidder only where it matters: items of several units.
            Some(b) if self.units > 1 => Cents(
                awards(&b.book, &b.standings, self.units)
                    .iter()
                    .map(|a| a.amount.0)
                    .sum(),
            ),
            _ => price.unwrap_or(Cents(0)),
        };
        ItemState {
            item: self.item,
            auction: self.auction,
            price,
            bid_count,
            seq,
            version: seq + self.events,
            leader_paddle,
            next_minimum,
            opening: self.opening,
            closes_at,
            competitive: self.bidding.is_some(),
            closed: self.closed,
            stock_left: self.stock.left,
            unit_price: self.stock.price,
            reoffer_sold: self.reoffer_sold,
            extended: closes_at > self.closes_at,
            bidders,
            winning_total,
        }
    }

    /// The item's close time: its book's (extensions included), or the calendar's.
    pub fn close_time(&self) -> chrono::DateTime<chrono::Utc> {
        match &self.bidding {
            Some(b) => b.book.closes_at(),
            None => self.closes_at,
        }
    }
}

/// Replays one item's recorded bids. The journal is the truth of what was accepted: if the
/// calendar has since moved the close before a recorded bid, the replay's close is moved
/// after it (the close changes no price or leader). A recorded bid the rules still refuse,
/// or recorded winners that are not what the replay awards, mean the journal and the rules
/// disagree: the item is not served at all (answered 503) rather than with a book whose
/// sequence numbers or winners would contradict the tables.
pub fn build(item: &StoredItem, bids: &[StoredBid], gates: &Gates) -> Result<LoadedBook, NotLive> {
    let gate = gates.get_or_insert(item.auction, item.auction_state, item.overridden);
    let mut loaded = LoadedBook {
        item: item.item,
        auction: item.auction,
        gate,
        bidding: None,
        opening: item.params.opening,
        closes_at: item.params.closes_at,
        units: item.units,
        closed: item.closed,
        stock: item.stock,
        events: item.events,
        reoffer_sold: item.reoffer_sold,
    };
    if !item.competitive {
        return Ok(loaded);
    }
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
    let standings = Standings::from_bids(&recorded);
    if item.closed {
        let replayed: Vec<(UserId, Cents)> = awards(&book, &standings, item.units)
            .into_iter()
            .map(|a| (UserId(a.bidder), a.amount))
            .collect();
        let mut recorded_winners = item.winners.clone();
        let mut expected = replayed.clone();
        recorded_winners.sort();
        expected.sort();
        if recorded_winners != expected {
            tracing::error!(
                item = item.item.0,
                recorded = ?item.winners,
                replayed = ?replayed,
                "the recorded winners are not what the bids award; the item is not served until this is fixed"
            );
            return Err(NotLive::Inconsistent);
        }
    }
    let paddles: HashMap<i64, i32> = bids
        .iter()
        .filter_map(|b| Some((b.bidder.0, b.paddle?)))
        .collect();
    let leader_paddle = book.leader().and_then(|l| paddles.get(&l).copied());
    loaded.bidding = Some(Bidding {
        book,
        standings,
        leader_paddle,
        paddles,
    });
    Ok(loaded)
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
