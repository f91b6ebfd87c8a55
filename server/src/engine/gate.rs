//! Whether an auction takes bids right now. Shards read it on every bid, so it is a pair of
//! atomics per auction rather than anything behind a lock; the scheduler and managers'
//! overrides write it.

use std::sync::{
    atomic::{AtomicBool, AtomicU8, Ordering},
    Arc,
};

use dashmap::DashMap;

use crate::domain::{AuctionId, AuctionState};

#[derive(Debug)]
pub struct Gate {
    state: AtomicU8,
    overridden: AtomicBool,
}

/// Why an auction does not take bids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shut {
    NotYetOpen,
    Over,
    PausedByManager,
}

impl Gate {
    pub fn new(state: AuctionState, overridden: bool) -> Gate {
        Gate {
            state: AtomicU8::new(state as u8),
            overridden: AtomicBool::new(overridden),
        }
    }

    pub fn state(&self) -> AuctionState {
        let raw = self.state.load(Ordering::Acquire);
        AuctionState::ALL
            .get(raw as usize)
            .copied()
            .unwrap_or(AuctionState::Draft)
    }

    /// Bids are taken while the auction is in its bidding window. After the calendar's
    /// bidding close the auction is `paused`, but an item whose close a late bid extended
    /// (soft close) stays open until its own close: the item's book refuses the rest. A
    /// manager's explicit pause stops everything.
    pub fn admits_bids(&self) -> Result<(), Shut> {
        let overridden = self.overridden.load(Ordering::Acquire);
        match self.state() {
            AuctionState::Bidding => Ok(()),
            AuctionState::Paused if !overridden => Ok(()),
            AuctionState::Paused => Err(Shut::PausedByManager),
            AuctionState::Draft | AuctionState::Registration | AuctionState::Catalog => {
                Err(Shut::NotYetOpen)
            }
            _ => Err(Shut::Over),
        }
    }

    /// Reoffer purchases are taken while the reoffer phase is open (by the calendar, or a
    /// manager's opening it). A manager's pause stops them too.
    pub fn admits_buys(&self) -> Result<(), Shut> {
        let overridden = self.overridden.load(Ordering::Acquire);
        match self.state() {
            AuctionState::Reoffer => Ok(()),
            AuctionState::Paused if overridden => Err(Shut::PausedByManager),
            AuctionState::Draft
            | AuctionState::Registration
            | AuctionState::Catalog
            | AuctionState::Bidding
            | AuctionState::Paused => Err(Shut::NotYetOpen),
            AuctionState::Closed | AuctionState::Settlement => Err(Shut::Over),
        }
    }
}

/// Every auction's gate, shared by the shards.
#[derive(Default, Debug)]
pub struct Gates {
    map: DashMap<AuctionId, Arc<Gate>>,
}

impl Gates {
    /// The gate of `auction`, created with the given state when it is new.
    pub fn get_or_insert(
        &self,
        auction: AuctionId,
        state: AuctionState,
        overridden: bool,
    ) -> Arc<Gate> {
        self.map
            .entry(auction)
            .or_insert_with(|| Arc::new(Gate::new(state, overridden)))
            .clone()
    }

    pub fn state(&self, auction: AuctionId) -> Option<AuctionState> {
        self.map.get(&auction).map(|g| g.state())
    }

    pub fn set(&self, auction: AuctionId, state: AuctionState, overridden: bool) {
        let gate = self.get_or_insert(auction, state, overridden);
        gate.state.store(state as u8, Ordering::Release);
        gate.overridden.store(overridden, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bidding_window_and_soft_close_overtime_admit_bids() {
        for state in AuctionState::ALL {
            let calendar = Gate::new(state, false).admits_bids();
            let pinned = Gate::new(state, true).admits_bids();
            match state {
                AuctionState::Bidding => {
                    assert_eq!(calendar, Ok(()));
                    assert_eq!(pinned, Ok(()));
                }
                AuctionState::Paused => {
                    assert_eq!(calendar, Ok(()), "overtime of extended items");
                    assert_eq!(pinned, Err(Shut::PausedByManager));
                }
                AuctionState::Draft | AuctionState::Registration | AuctionState::Catalog => {
                    assert_eq!(calendar, Err(Shut::NotYetOpen))
                }
                _ => assert_eq!(calendar, Err(Shut::Over)),
            }
        }
    }

    #[test]
    fn state_round_trips_through_the_atomic() {
        let gates = Gates::default();
        gates.set(AuctionId(1), AuctionState::Reoffer, true);
        let g = gates.get_or_insert(AuctionId(1), AuctionState::Draft, false);
        assert_eq!(g.state(), AuctionState::Reoffer);
    }
}
