//! What the engine tells the rest of the server about items: their committed state.
//!
//! The shards' books may hold bids that are not yet durable; nobody outside the engine
//! ever sees a book. They see the [`ReadModel`]: each item's state as last committed (or as
//! loaded from storage), which snapshots, pages and the publisher all read. It is recorded
//! before anyone is told, so a client subscribing in between gets the new state in its
//! snapshot instead of missing it.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use dashmap::{mapref::entry::Entry, DashMap};

use crate::{
    domain::{AuctionId, Cents, ItemId},
    engine::ports::Publisher,
};

/// The committed state of one item, as subscribers and pages see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemState {
    pub item: ItemId,
    pub auction: AuctionId,
    pub price: Option<Cents>,
    pub bid_count: u64,
    /// The item's bid seq (bids only, gap-free).
    pub seq: u64,
    /// Counts every committed change of the item (bids, its close, each purchase): what
    /// tells a newer state from an older one.
    pub version: u64,
    pub leader_paddle: Option<i32>,
    pub next_minimum: Cents,
    pub opening: Cents,
    pub closes_at: DateTime<Utc>,
    /// Sold by bidding (a fixed-price item has only stock).
    pub competitive: bool,
    /// Its bidding close is recorded, with its winners.
    pub closed: bool,
    /// Units the reoffer phase may sell now (while it is open), and the price of each.
    pub stock_left: u32,
    pub unit_price: Cents,
    /// Units the reoffer phase sold.
    pub reoffer_sold: u32,
    /// A late bid moved its close past the calendar's (soft close).
    pub extended: bool,
    /// Distinct bidders.
    pub bidders: u32,
    /// What its bidding would raise if it closed now: the price shown for one unit; for
    /// several units, what each of the winners so far would pay (the award rule).
    pub winning_total: Cents,
}

impl ItemState {
    /// Whether bidding on the item has closed at `now` (recorded, or its time has come).
    pub fn closed_at(&self, now: DateTime<Utc>) -> bool {
        self.closed || now >= self.closes_at
    }
}

/// What the engine answered, counted since the start (the manager's live dashboard shows
/// them, with rates). Relaxed atomics: a count, not a synchronisation.
#[derive(Debug, Default)]
pub struct Tally {
    pub bids_accepted: AtomicU64,
    pub refused: AtomicU64,
    pub unavailable: AtomicU64,
    pub rate_limited: AtomicU64,
    pub purchases: AtomicU64,
    pub units_bought: AtomicU64,
}

/// A [`Tally`] read at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TallyNow {
    pub bids_accepted: u64,
    pub refused: u64,
    pub unavailable: u64,
    pub rate_limited: u64,
    pub purchases: u64,
    pub units_bought: u64,
}

impl Tally {
    pub fn now(&self) -> TallyNow {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TallyNow {
            bids_accepted: get(&self.bids_accepted),
            refused: get(&self.refused),
            unavailable: get(&self.unavailable),
            rate_limited: get(&self.rate_limited),
            purchases: get(&self.purchases),
            units_bought: get(&self.units_bought),
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The public name of a bidder: their paddle number, never a name or an email.
pub fn bidder_label(paddle: i32) -> String {
    format!("p_{paddle}")
}

/// Why an item has no book: answered to bids, and remembered for a while so that asking
/// again costs no load (see `shard.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotLive {
    /// No such item.
    Missing,
    /// Sold at a fixed price, not by bidding.
    NotCompetitive,
    /// Not (or no longer) published.
    NotPublished,
    /// Its recorded bids do not replay under the current rules (logged when found).
    Inconsistent,
}

/// The committed state of every item with a book, shared by the shards (which write it) and
/// every reader. One entry per item that was ever loaded (a few thousand at most): items
/// that are not live are never recorded here.
#[derive(Default)]
pub struct ReadModel {
    items: DashMap<ItemId, ItemState>,
    /// Bumped whenever an item of the auction is recorded: readers that build something
    /// from all of an auction's items (the `auction:<id>` snapshot) rebuild it only then.
    versions: DashMap<AuctionId, u64>,
}

impl ReadModel {
    pub fn get(&self, item: ItemId) -> Option<ItemState> {
        self.items.get(&item).map(|s| s.clone())
    }

    /// The committed states of an auction's items, by id (the manager's dashboard, the
    /// `auction:<id>` snapshot).
    pub fn auction_items(&self, auction: AuctionId) -> Vec<ItemState> {
        let mut items: Vec<ItemState> = self
            .items
            .iter()
            .filter(|e| e.auction == auction)
            .map(|e| e.clone())
            .collect();
        items.sort_by_key(|s| s.item);
        items
    }

    /// The auction's version (see `versions`); 0 before any of its items was recorded.
    pub fn auction_version(&self, auction: AuctionId) -> u64 {
        self.versions.get(&auction).map(|v| *v).unwrap_or(0)
    }

    fn bump(&self, auction: AuctionId) {
        *self.versions.entry(auction).or_insert(0) += 1;
    }

    /// A book was (re)loaded from storage: its state is what is committed now, so it
    /// replaces whatever was recorded, even at the same seq. Subscribers hear of it only
    /// when it differs from what they were told; a first load tells nobody (nobody can
    /// follow an item before it is live).
    pub fn loaded(&self, state: ItemState, publisher: &dyn Publisher) {
        match self.items.entry(state.item) {
            Entry::Vacant(entry) => {
                let auction = state.auction;
                entry.insert(state);
                self.bump(auction);
            }
            Entry::Occupied(mut entry) => {
                if *entry.get() != state {
                    let auction = state.auction;
                    entry.insert(state);
                    self.bump(auction);
                    publisher.item_changed(entry.get());
                }
            }
        }
    }

    /// A change was committed. The journal's fan-out runs behind its commits: a book
    /// reloaded from storage in the meantime (a calendar change) has already recorded this
    /// version or a later one, read after the commit, and the price and close must not step
    /// back to this one. Returns whether it was recorded (and published).
    pub fn committed(&self, state: ItemState, publisher: &dyn Publisher) -> bool {
        let auction = state.auction;
        // The check, the record and the publication happen under the item's entry lock, so
        // of two writers racing (the fan-out and a reload) the last state published is
        // always the recorded one. (The version is bumped before the lock is let go: a
        // snapshot built after it sees this state.)
        match self.items.entry(state.item) {
            Entry::Occupied(mut entry) => {
                if entry.get().version >= state.version {
                    return false;
                }
                entry.insert(state);
                self.bump(auction);
                publisher.item_changed(entry.get());
            }
            Entry::Vacant(entry) => {
                let recorded = entry.insert(state);
                self.bump(auction);
                publisher.item_changed(&recorded);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::{Heard, Recorder};

    fn state(seq: u64, closes_in_hours: i64) -> ItemState {
        ItemState {
            item: ItemId(1),
            auction: AuctionId(1),
            price: None,
            next_minimum: Cents(5_00),
            opening: Cents(5_00),
            bid_count: seq,
            seq,
            version: seq,
            leader_paddle: None,
            closes_at: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::hours(closes_in_hours),
            competitive: true,
            closed: false,
            stock_left: 0,
            unit_price: Cents(5_00),
            reoffer_sold: 0,
            extended: false,
            bidders: 0,
            winning_total: Cents(0),
        }
    }

    #[test]
    fn a_late_fan_out_never_steps_back_over_a_reloaded_book() {
        let model = ReadModel::default();
        let heard = Recorder::default();
        model.loaded(state(1, 1), &heard);
        assert!(heard.take().is_empty(), "a first load tells nobody");
        // Seq 2 committed; before the journal's fan-out publishes it, a calendar change
        // reloads the book, which reads seq 2 and the new close.
        model.loaded(state(2, 3), &heard);
        assert!(!model.committed(state(2, 1), &heard));
        assert_eq!(model.get(ItemId(1)), Some(state(2, 3)));
        assert_eq!(heard.take(), vec![Heard::Changed(state(2, 3))]);
        // A newer commit is published as usual.
        assert!(model.committed(state(3, 3), &heard));
        assert_eq!(heard.take(), vec![Heard::Changed(state(3, 3))]);
        // A reload with nothing new tells nobody.
        model.loaded(state(3, 3), &heard);
        assert!(heard.take().is_empty());
    }

    #[test]
    fn an_auctions_items_come_by_id() {
        let model = ReadModel::default();
        let heard = Recorder::default();
        for (id, auction) in [(3, 1), (1, 1), (2, 2)] {
            model.loaded(
                ItemState {
                    item: ItemId(id),
                    auction: AuctionId(auction),
                    ..state(0, 1)
                },
                &heard,
            );
        }
        let ids: Vec<ItemId> = model
            .auction_items(AuctionId(1))
            .iter()
            .map(|s| s.item)
            .collect();
        assert_eq!(ids, [ItemId(1), ItemId(3)]);
    }
}
