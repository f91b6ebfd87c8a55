//! Who wins an item when its bidding closes.
//!
//! # The rule
//!
//! - **One unit** (almost every item): the leader wins it at the price shown (`currentBid`).
//! - **N units** ("six seats at the pastor's table", one competitive item with
//!   `quantity_total` 6): the N distinct bidders with the highest maxima win one unit each.
//!   On equal maxima the bidder who reached that maximum first ranks first, the book's own tie
//!   rule, so the first-ranked is always the book's leader. The leader pays the price shown;
//!   every other winner pays their own highest explicit bid: what they typed, never their
//!   secret maximum (that is only ever used to bid for them). Nobody wins a second unit: a
//!   bidder bids for a seat, not a table.
//! - Units nobody won (no bids, or fewer bidders than units) stay unsold and go to the
//!   reoffer phase.
//!
//! [`Standings`] follows each bidder's maximum and highest amount as bids are accepted (the
//! book itself keeps no history), and [`awards`] applies the rule.

use std::collections::HashMap;

use super::book::{BidderId, Book, RecordedBid};
use crate::Cents;

/// One bidder's standing on one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    /// The most the bidder let the system bid for them.
    pub max: Cents,
    /// The seq of the bid that first reached `max` (earlier ranks first on equal maxima).
    pub max_seq: u64,
    /// The highest amount the bidder bid explicitly.
    pub amount: Cents,
}

/// Every bidder's standing on one item, from its accepted bids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standings {
    by_bidder: HashMap<BidderId, Standing>,
}

impl Standings {
    /// An accepted bid, with the seq the book gave it.
    pub fn record(&mut self, bidder: BidderId, amount: Cents, max_proxy: Option<Cents>, seq: u64) {
        let max = max_proxy.unwrap_or(amount).max(amount);
        let standing = self.by_bidder.entry(bidder).or_insert(Standing {
            max,
            max_seq: seq,
            amount,
        });
        if max > standing.max {
            standing.max = max;
            standing.max_seq = seq;
        }
        standing.amount = standing.amount.max(amount);
    }

    /// The standings after `bids`, the item's accepted bids in seq order (seq 1, 2, …).
    pub fn from_bids(bids: &[RecordedBid]) -> Standings {
        let mut standings = Standings::default();
        for (index, bid) in bids.iter().enumerate() {
            standings.record(bid.bidder, bid.amount, bid.max_proxy, index as u64 + 1);
        }
        standings
    }

    /// Bidders from the strongest down: by maximum, then by who reached it first.
    pub fn ranked(&self) -> Vec<(BidderId, Standing)> {
        let mut ranked: Vec<(BidderId, Standing)> =
            self.by_bidder.iter().map(|(b, s)| (*b, *s)).collect();
        ranked.sort_by(|(_, a), (_, b)| b.max.cmp(&a.max).then(a.max_seq.cmp(&b.max_seq)));
        ranked
    }

    pub fn bidders(&self) -> usize {
        self.by_bidder.len()
    }
}

/// One unit won.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Award {
    pub bidder: BidderId,
    /// What the winner pays for the unit.
    pub amount: Cents,
}

/// The winners of an item of `units` units whose bidding closed with `book` and
/// `standings` (see the module docs). At most one award per bidder, the leader's first.
pub fn awards(book: &Book, standings: &Standings, units: u32) -> Vec<Award> {
    let (Some(leader), Some(price)) = (book.leader(), book.price()) else {
        return Vec::new();
    };
    let mut out = vec![Award {
        bidder: leader,
        amount: price,
    }];
    out.extend(
        standings
            .ranked()
            .into_iter()
            .filter(|(bidder, _)| *bidder != leader)
            .take((units as usize).saturating_sub(1))
            .map(|(bidder, standing)| Award {
                bidder,
                amount: standing.amount,
            }),
    );
    out.truncate(units as usize);
    out
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, TimeZone, Utc};

    use super::*;
    use crate::bidding::{BidRequest, BookParams};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 2, 20, 0, 0).single().unwrap()
    }

    fn book() -> Book {
        Book::new(BookParams {
            opening: Cents(10_00),
            increment: Some(Cents(5_00)),
            closes_at: t0() + Duration::hours(1),
            hard_deadline: t0() + Duration::hours(1),
            soft_close_window: Duration::zero(),
        })
    }

    /// Places bids (bidder, amount, max) and keeps the standings as the engine does.
    fn bid_all(bids: &[(BidderId, i64, Option<i64>)]) -> (Book, Standings) {
        let mut book = book();
        let mut standings = Standings::default();
        for (i, (bidder, amount, max)) in bids.iter().enumerate() {
            let request = BidRequest {
                bidder: *bidder,
                amount: Cents(*amount),
                max_proxy: max.map(Cents),
            };
            let accepted = book
                .place(request, t0() + Duration::seconds(i as i64))
                .unwrap_or_else(|r| panic!("bid {i} refused: {r}"));
            standings.record(*bidder, Cents(*amount), max.map(Cents), accepted.seq);
        }
        (book, standings)
    }

    #[test]
    fn no_bids_award_nothing() {
        assert!(awards(&book(), &Standings::default(), 1).is_empty());
        assert!(awards(&book(), &Standings::default(), 5).is_empty());
    }

    #[test]
    fn one_unit_goes_to_the_leader_at_the_price_shown() {
        // Ann's proxy (max 200) defends against Bob's 150: she leads at 155.
        let (book, standings) = bid_all(&[(1, 100_00, Some(200_00)), (2, 150_00, None)]);
        assert_eq!(
            awards(&book, &standings, 1),
            [Award {
                bidder: 1,
                amount: Cents(155_00)
            }]
        );
    }

    #[test]
    fn on_equal_maxima_the_earlier_bidder_wins() {
        // Bob matches Ann's maximum exactly: Ann reached it first and keeps the item.
        let (book, standings) = bid_all(&[(1, 50_00, Some(120_00)), (2, 120_00, None)]);
        assert_eq!(book.leader(), Some(1));
        assert_eq!(awards(&book, &standings, 1)[0].bidder, 1);
        // With two units, Bob gets the second at what he typed.
        assert_eq!(
            awards(&book, &standings, 2),
            [
                Award {
                    bidder: 1,
                    amount: Cents(120_00)
                },
                Award {
                    bidder: 2,
                    amount: Cents(120_00)
                }
            ]
        );
    }

    #[test]
    fn several_units_go_to_distinct_bidders_each_at_their_own_amount() {
        let (book, standings) = bid_all(&[
            (1, 10_00, None),
            (2, 15_00, Some(40_00)),
            (3, 20_00, None),
            // Ann again, higher: one bidder, one unit, whatever she bid.
            (1, 45_00, None),
            (4, 50_00, None),
        ]);
        assert_eq!(book.leader(), Some(4));
        let won = awards(&book, &standings, 3);
        assert_eq!(
            won,
            [
                Award {
                    bidder: 4,
                    amount: book.price().unwrap()
                },
                Award {
                    bidder: 1,
                    amount: Cents(45_00)
                },
                // Bob's maximum (40) outranks Carol's 20; he pays what he typed, 15.
                Award {
                    bidder: 2,
                    amount: Cents(15_00)
                },
            ]
        );
        // More units than bidders: each bidder one, the rest unsold.
        assert_eq!(awards(&book, &standings, 10).len(), 4);
    }
}
