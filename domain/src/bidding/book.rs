//! One item's bid book: who leads, at what price, until when.
//!
//! The book is the whole truth about an item's competitive bidding, in a few words of memory
//! and without history: proxy bidding only ever needs the leader and the single strongest
//! competitor (the runner-up's maximum), so placing a bid is a handful of comparisons. The
//! history lives in the journal; [`Book::replay`] folds it back into a book at start-up.
//!
//! See the [module docs](super) for the price rule in full.

use chrono::{DateTime, Duration, Utc};

use super::increments::step;
use super::soft_close::closes_after_bid;
use crate::money::Cents;

/// A bidder, by user id (the `i64` inside the server's `UserId`). A plain integer here so the
/// rules depend on nothing but money and time.
pub type BidderId = i64;

/// What an item's book is created with: the item's pricing and its closing times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookParams {
    /// The opening (minimum) bid: the first bid must be at least this.
    pub opening: Cents,
    /// The item's fixed `bid_increment`, or `None` for the price-banded table.
    pub increment: Option<Cents>,
    /// When bidding on the item closes, before any soft-close extension.
    pub closes_at: DateTime<Utc>,
    /// The latest the item may close however late bids keep coming.
    pub hard_deadline: DateTime<Utc>,
    /// How long a late bid keeps the item open (zero disables soft close).
    pub soft_close_window: Duration,
}

/// A bid as the bidder sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BidRequest {
    pub bidder: BidderId,
    /// The explicit bid: the price is never shown below the leader's explicit amount.
    pub amount: Cents,
    /// The most the bidder lets the system bid for them (`maxProxyAmount`). `None` means the
    /// amount is also the maximum.
    pub max_proxy: Option<Cents>,
}

/// A bid as the journal recorded it, for [`Book::replay`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedBid {
    pub bidder: BidderId,
    pub amount: Cents,
    pub max_proxy: Option<Cents>,
    /// When the bid was accepted: replay needs it to redo soft-close extensions.
    pub at: DateTime<Utc>,
}

/// What an accepted bid changed; everything the engine needs for the reply, the journal row,
/// the broadcast and the outbid notice, without asking the book again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// This item's sequence number for the bid: 1, 2, 3… with no gaps, refusals take none.
    pub seq: u64,
    /// The visible price (`currentBid`) after the bid.
    pub price: Cents,
    /// Who leads after the bid.
    pub leader: BidderId,
    /// Whether the bidder who just bid leads (`leading` in the reply). `false` means another
    /// bidder's proxy maximum already covered this bid: the bidder is outbid at once.
    pub leading: bool,
    /// Whether the lead changed hands with this bid.
    pub leader_changed: bool,
    /// The bidder who lost the lead to this bid, to send the outbid notice to. `Some` only when
    /// `leader_changed` and there was a leader before (never on the first bid).
    pub previous_leader: Option<BidderId>,
    /// The least the next bid must be.
    pub next_minimum: Cents,
    /// When the item closes now (possibly extended by this bid).
    pub closes_at: DateTime<Utc>,
    /// Whether this bid moved `closes_at` (soft close).
    pub extended: bool,
}

/// Why a bid was not accepted. A refusal leaves the book untouched and consumes no sequence
/// number. These are ordinary outcomes the bidder is told about, not failures; the `Error`
/// derive is only there for the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Bidding on the item closed at `closes_at` (the bid came at or after it).
    #[error("bidding on this item closed at {closes_at}")]
    Closed { closes_at: DateTime<Utc> },
    /// The amount is below the least acceptable bid; `minimum` is that least bid.
    #[error("bid must be at least {minimum}")]
    BelowMinimum { minimum: Cents },
    /// The proxy maximum is below the bid's own amount: almost surely a typo, so we ask rather
    /// than guess which of the two was meant.
    #[error("maximum must not be below the bid amount {amount}")]
    MaxBelowAmount { amount: Cents },
    /// The leader bid again without raising their maximum: accepting it would change nothing
    /// but burn a sequence number and send a broadcast.
    #[error("you already lead with a maximum of {current_max}; a new bid must raise it")]
    MaxNotRaised { current_max: Cents },
}

impl Refusal {
    /// A stable, machine-readable code for the API's `{"error": code}` body.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Closed { .. } => "bidding_closed",
            Refusal::BelowMinimum { .. } => "bid_too_low",
            Refusal::MaxBelowAmount { .. } => "max_below_amount",
            Refusal::MaxNotRaised { .. } => "max_not_raised",
        }
    }
}

/// A recorded bid that the rules refuse on replay: the journal and the rules disagree, which
/// recovery must not paper over (skipping it would shift every later sequence number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("recorded bid #{index} (seq {}, bidder {bidder}) is refused on replay: {refusal}", index + 1)]
pub struct ReplayError {
    /// Position of the bid in the slice given to [`Book::replay`] (its seq is `index + 1`).
    pub index: usize,
    pub bidder: BidderId,
    pub refusal: Refusal,
}

/// The current leader. Kept together so "there is a price" and "there is a leader" cannot
/// disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lead {
    bidder: BidderId,
    /// The most the system will bid for the leader.
    max: Cents,
    /// The explicit amount of the bid that took the lead: the price floor while they keep it.
    amount: Cents,
    /// The visible price.
    price: Cents,
}

/// One item's bid book. See the [module docs](super) for the rules it enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Book {
    opening: Cents,
    increment: Option<Cents>,
    lead: Option<Lead>,
    /// The highest maximum of any bidder other than the leader. Every such maximum is at most
    /// the price (each was beaten), so one number stands for the whole field.
    runner_up_max: Option<Cents>,
    bid_count: u64,
    last_seq: u64,
    closes_at: DateTime<Utc>,
    hard_deadline: DateTime<Utc>,
    window: Duration,
}

impl Book {
    /// An empty book. A hard deadline before `closes_at` is read as "no extension" rather than
    /// as a reason to close early, and a negative window as zero: the calendar validation
    /// refuses both, and the book must not crash on them either.
    pub fn new(params: BookParams) -> Book {
        Book {
            opening: params.opening,
            increment: params.increment,
            lead: None,
            runner_up_max: None,
            bid_count: 0,
            last_seq: 0,
            closes_at: params.closes_at,
            hard_deadline: params.hard_deadline.max(params.closes_at),
            window: params.soft_close_window.max(Duration::zero()),
        }
    }

    /// Rebuilds a book from its journal: `bids` are the accepted bids in seq order, as
    /// [`Book::place`] accepted them. Every one must be accepted again, giving the same seq
    /// numbers, prices and closing time the live book had; the first one that is not is
    /// reported rather than skipped.
    pub fn replay(params: BookParams, bids: &[RecordedBid]) -> Result<Book, ReplayError> {
        let mut book = Book::new(params);
        for (index, bid) in bids.iter().enumerate() {
            let request = BidRequest {
                bidder: bid.bidder,
                amount: bid.amount,
                max_proxy: bid.max_proxy,
            };
            if let Err(refusal) = book.place(request, bid.at) {
                return Err(ReplayError {
                    index,
                    bidder: bid.bidder,
                    refusal,
                });
            }
        }
        Ok(book)
    }

    /// Places a bid at `now` (the engine's clock, never read here).
    ///
    /// Checks, in order: closed (`now >= closes_at`), amount below the next minimum, maximum
    /// below amount, and for the current leader a maximum that does not raise theirs. A refusal
    /// changes nothing; an accepted bid takes the next seq and may extend the close.
    pub fn place(&mut self, bid: BidRequest, now: DateTime<Utc>) -> Result<Accepted, Refusal> {
        // Half-open window: at `closes_at` exactly the scheduler is closing the item, and a bid
        // stamped that instant must not slip in after the winner was announced.
        if now >= self.closes_at {
            return Err(Refusal::Closed {
                closes_at: self.closes_at,
            });
        }
        let minimum = self.next_minimum();
        if bid.amount < minimum {
            return Err(Refusal::BelowMinimum { minimum });
        }
        let max = match bid.max_proxy {
            Some(max) if max < bid.amount => {
                return Err(Refusal::MaxBelowAmount { amount: bid.amount })
            }
            Some(max) => max,
            None => bid.amount,
        };

        // Work out the new state in locals, then commit it: nothing below can refuse after the
        // book has started to change.
        let (lead, runner_up_max) = match self.lead {
            None => (
                Lead {
                    bidder: bid.bidder,
                    max,
                    amount: bid.amount,
                    price: bid.amount,
                },
                None,
            ),
            Some(lead) if lead.bidder == bid.bidder => {
                if max <= lead.max {
                    return Err(Refusal::MaxNotRaised {
                        current_max: lead.max,
                    });
                }
                // Only the maximum moves: a leader never bids against themselves, so the
                // explicit amount of a raise is not a new price floor.
                (Lead { max, ..lead }, self.runner_up_max)
            }
            // Strictly higher: on equal maxima the earlier bid keeps the lead.
            Some(lead) if max > lead.max => (
                Lead {
                    bidder: bid.bidder,
                    max,
                    amount: bid.amount,
                    price: lead.price, // recomputed below
                },
                Some(lead.max),
            ),
            // The leader's proxy covers the challenger; the challenger's maximum is now the
            // strongest competition (it is above the old price, hence above every other loser).
            Some(lead) => (lead, Some(max)),
        };
        let price = price_for(self.increment, lead.max, lead.amount, runner_up_max);
        let lead = Lead { price, ..lead };
        let previous_leader = self.lead.map(|l| l.bidder);
        let leader_changed = previous_leader != Some(lead.bidder);

        let closes_at = closes_after_bid(self.closes_at, self.hard_deadline, self.window, now);
        let extended = closes_at != self.closes_at;

        self.lead = Some(lead);
        self.runner_up_max = runner_up_max;
        self.bid_count += 1;
        self.last_seq += 1;
        self.closes_at = closes_at;

        Ok(Accepted {
            seq: self.last_seq,
            price,
            leader: lead.bidder,
            leading: lead.bidder == bid.bidder,
            leader_changed,
            previous_leader: if leader_changed {
                previous_leader
            } else {
                None
            },
            next_minimum: self.next_minimum(),
            closes_at,
            extended,
        })
    }

    /// The least amount the next bid must be: the opening bid (at least one cent) while there
    /// are no bids, then the price plus one step at the price's band.
    pub fn next_minimum(&self) -> Cents {
        match self.lead {
            // A free item (opening 0) still needs a real bid, or it could be "won" for nothing.
            None => self.opening.max(Cents(1)),
            Some(lead) => add(lead.price, step(self.increment, lead.price)),
        }
    }

    /// The visible price (`currentBid`), or `None` before the first bid.
    pub fn price(&self) -> Option<Cents> {
        self.lead.map(|l| l.price)
    }

    /// The leading bidder, or `None` before the first bid.
    pub fn leader(&self) -> Option<BidderId> {
        self.lead.map(|l| l.bidder)
    }

    /// The leader's maximum. Secret to everyone but the leader: never broadcast it.
    pub fn leader_max(&self) -> Option<Cents> {
        self.lead.map(|l| l.max)
    }

    /// The highest maximum among bidders other than the leader (also secret).
    pub fn runner_up_max(&self) -> Option<Cents> {
        self.runner_up_max
    }

    /// How many bids were accepted.
    pub fn bid_count(&self) -> u64 {
        self.bid_count
    }

    /// The seq of the last accepted bid (0 before any). Equal to [`Book::bid_count`] today; kept
    /// apart because seq orders the item's events for clients, and other events (a manual
    /// close, say) may take numbers from it later.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The item's opening bid.
    pub fn opening(&self) -> Cents {
        self.opening
    }

    /// The item's fixed increment, if it has one.
    pub fn increment(&self) -> Option<Cents> {
        self.increment
    }

    /// When the item closes now (after any extensions).
    pub fn closes_at(&self) -> DateTime<Utc> {
        self.closes_at
    }

    /// The latest the item can close.
    pub fn hard_deadline(&self) -> DateTime<Utc> {
        self.hard_deadline
    }

    /// The soft-close window.
    pub fn soft_close_window(&self) -> Duration {
        self.window
    }

    /// Whether a bid at `now` could still be accepted, time-wise.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        now < self.closes_at
    }
}

/// The price rule (module docs): the lowest amount that beats the strongest competitor's
/// maximum by one step, never below the leader's explicit amount, never above the leader's
/// maximum.
fn price_for(
    increment: Option<Cents>,
    leader_max: Cents,
    leader_amount: Cents,
    runner_up_max: Option<Cents>,
) -> Cents {
    let floor = match runner_up_max {
        None => leader_amount,
        Some(r) => leader_amount.max(add(r, step(increment, r))),
    };
    floor.min(leader_max)
}

/// Saturating: amounts are bounded by the API (`MAX_CENTS`), but the rules must not panic or
/// wrap on any `Cents` they are handed.
fn add(a: Cents, b: Cents) -> Cents {
    Cents(a.0.saturating_add(b.0))
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
