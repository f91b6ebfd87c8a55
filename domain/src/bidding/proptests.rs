//! [`Book`] against a naive reference model, over random bid sequences.
//!
//! The book keeps three numbers and updates them incrementally; the reference keeps every
//! accepted bid and recomputes everything from scratch after each step, straight from the
//! definitions in the module docs. If the book's shortcut (the runner-up's maximum stands for
//! the whole field, the lead-taking amount is remembered) were wrong anywhere, the two would
//! disagree on some sequence.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::increments::step;
use super::*;
use crate::money::Cents;

/// Every accepted bid, in order, and the item's parameters. Nothing derived is stored.
struct Reference {
    params: BookParams,
    /// (bidder, explicit amount, maximum, accepted at)
    accepted: Vec<(BidderId, Cents, Cents, DateTime<Utc>)>,
}

impl Reference {
    /// Index of the leading bid among the first `len` bids: the highest maximum, and on equal
    /// maxima the earliest bid.
    fn leading_bid(&self, len: usize) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, bid) in self.accepted[..len].iter().enumerate() {
            if best.is_none_or(|b| bid.2 > self.accepted[b].2) {
                best = Some(i);
            }
        }
        best
    }

    fn leader(&self) -> Option<BidderId> {
        self.leading_bid(self.accepted.len())
            .map(|i| self.accepted[i].0)
    }

    fn leader_max(&self) -> Option<Cents> {
        self.leading_bid(self.accepted.len())
            .map(|i| self.accepted[i].2)
    }

    /// The explicit amount of the bid by which the current leader took the lead: the bid after
    /// which the leader never changed again.
    fn lead_taking_amount(&self, leader: BidderId) -> Cents {
        let leader_after = |len: usize| self.leading_bid(len).map(|i| self.accepted[i].0);
        let mut i = self.accepted.len() - 1;
        while i > 0 && leader_after(i) == Some(leader) {
            i -= 1;
        }
        self.accepted[i].1
    }

    fn price(&self) -> Option<Cents> {
        let leader = self.leader()?;
        let leader_max = self.leader_max()?;
        let amount = self.lead_taking_amount(leader);
        let mut others: Vec<Cents> = self
            .accepted
            .iter()
            .filter(|b| b.0 != leader)
            .map(|b| b.2)
            .collect();
        others.sort();
        let floor = match others.last() {
            None => amount,
            Some(&r) => amount.max(Cents(r.0 + step(self.params.increment, r).0)),
        };
        Some(floor.min(leader_max))
    }

    /// The winners of `units` units, from the definitions in `award.rs`: bidders ranked by
    /// their highest maximum, then by the position of the first bid that reached it; the
    /// first pays the price, the others their highest explicit amount.
    fn awards(&self, units: usize) -> Vec<(BidderId, Cents)> {
        let mut bidders: Vec<BidderId> = Vec::new();
        for b in &self.accepted {
            if !bidders.contains(&b.0) {
                bidders.push(b.0);
            }
        }
        let mut ranked: Vec<(BidderId, Cents, usize, Cents)> = bidders
            .into_iter()
            .map(|bidder| {
                let mine = || {
                    self.accepted
                        .iter()
                        .enumerate()
                        .filter(move |(_, b)| b.0 == bidder)
                };
                let max = mine().map(|(_, b)| b.2).max().unwrap_or(Cents(0));
                let first = mine()
                    .find(|(_, b)| b.2 == max)
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                let amount = mine().map(|(_, b)| b.1).max().unwrap_or(Cents(0));
                (bidder, max, first, amount)
            })
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
        ranked
            .into_iter()
            .take(units)
            .enumerate()
            .map(|(i, (bidder, _, _, amount))| {
                (
                    bidder,
                    if i == 0 {
                        self.price().unwrap_or(amount)
                    } else {
                        amount
                    },
                )
            })
            .collect()
    }

    fn minimum(&self) -> Cents {
        match self.price() {
            None => self.params.opening.max(Cents(1)),
            Some(p) => Cents(p.0 + step(self.params.increment, p).0),
        }
    }

    /// Closed form of soft close: the latest of the original close and, for every accepted bid,
    /// its time plus the window capped at the deadline.
    fn closes_at(&self) -> DateTime<Utc> {
        let p = &self.params;
        self.accepted
            .iter()
            .map(|b| (b.3 + p.soft_close_window).min(p.hard_deadline))
            .fold(p.closes_at, DateTime::max)
    }

    fn decide(&self, bid: BidRequest, now: DateTime<Utc>) -> Result<(), Refusal> {
        if now >= self.closes_at() {
            return Err(Refusal::Closed {
                closes_at: self.closes_at(),
            });
        }
        if bid.amount < self.minimum() {
            return Err(Refusal::BelowMinimum {
                minimum: self.minimum(),
            });
        }
        let max = bid.max_proxy.unwrap_or(bid.amount);
        if max < bid.amount {
            return Err(Refusal::MaxBelowAmount { amount: bid.amount });
        }
        if let (Some(leader), Some(leader_max)) = (self.leader(), self.leader_max()) {
            if leader == bid.bidder && max <= leader_max {
                return Err(Refusal::MaxNotRaised {
                    current_max: leader_max,
                });
            }
        }
        Ok(())
    }
}

/// How a step picks its proxy maximum, relative to the state at the time it runs (the
/// strategy cannot see the book, so amounts are offsets from whatever the minimum then is).
#[derive(Clone, Debug)]
enum MaxChoice {
    NoProxy,
    /// amount + offset (negative offsets are refused as `MaxBelowAmount`)
    AboveAmount(i64),
    /// exactly the leader's maximum: the tie rule
    EqualToLeader,
    /// the leader's maximum + offset: near-ties and caps
    NearLeader(i64),
}

#[derive(Clone, Debug)]
struct Step {
    bidder: BidderId,
    /// cents above (or below: refused) the minimum at the time
    amount_offset: i64,
    max: MaxChoice,
    /// seconds since the previous step; slightly negative sometimes, as clocks jitter
    gap_secs: i64,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let amount = prop_oneof![
        4 => 0i64..3_000,
        1 => -2_000i64..0,
        1 => 0i64..100_000,
    ];
    let max = prop_oneof![
        2 => Just(MaxChoice::NoProxy),
        3 => (-500i64..20_000).prop_map(MaxChoice::AboveAmount),
        1 => Just(MaxChoice::EqualToLeader),
        1 => (-1_000i64..1_000).prop_map(MaxChoice::NearLeader),
    ];
    (1i64..=5, amount, max, -5i64..120).prop_map(|(bidder, amount_offset, max, gap_secs)| Step {
        bidder,
        amount_offset,
        max,
        gap_secs,
    })
}

fn params_strategy() -> impl Strategy<Value = BookParams> {
    let t0 = Utc
        .with_ymd_and_hms(2025, 5, 5, 17, 0, 0)
        .single()
        .expect("valid date");
    (
        0i64..10_000,
        prop::option::weighted(0.3, 1i64..3_000),
        0i64..300,
    )
        .prop_map(move |(opening, increment, window)| BookParams {
            opening: Cents(opening),
            increment: increment.map(Cents),
            closes_at: t0 + Duration::minutes(30),
            hard_deadline: t0 + Duration::minutes(45),
            soft_close_window: Duration::seconds(window),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn book_matches_reference_after_every_step(
        params in params_strategy(),
        steps in prop::collection::vec(step_strategy(), 1..60),
    ) {
        let mut book = Book::new(params);
        let mut reference = Reference { params, accepted: Vec::new() };
        let mut now = params.closes_at - Duration::minutes(30);
        let mut last_price: Option<Cents> = None;
        let mut last_close = book.closes_at();
        let mut recorded = Vec::new();

        for s in steps {
            now += Duration::seconds(s.gap_secs);
            let amount = Cents(reference.minimum().0 + s.amount_offset);
            let leader_max = reference.leader_max().unwrap_or(amount);
            let max_proxy = match s.max {
                MaxChoice::NoProxy => None,
                MaxChoice::AboveAmount(d) => Some(Cents(amount.0 + d)),
                MaxChoice::EqualToLeader => Some(leader_max),
                MaxChoice::NearLeader(d) => Some(Cents(leader_max.0 + d)),
            };
            let bid = BidRequest { bidder: s.bidder, amount, max_proxy };
            let previous_leader = reference.leader();

            let expected = reference.decide(bid, now);
            let got = book.place(bid, now);
            match (expected, got) {
                (Err(want), got) => {
                    prop_assert_eq!(got, Err(want));
                }
                (Ok(()), Err(refusal)) => {
                    prop_assert!(false, "refused {:?} with {:?}, reference accepts", bid, refusal);
                }
                (Ok(()), Ok(accepted)) => {
                    reference.accepted.push((bid.bidder, amount, max_proxy.unwrap_or(amount), now));
                    recorded.push(RecordedBid { bidder: bid.bidder, amount, max_proxy, at: now });
                    let leader = reference.leader();
                    prop_assert_eq!(accepted.seq, reference.accepted.len() as u64, "seq gap-free");
                    prop_assert_eq!(Some(accepted.leader), leader);
                    prop_assert_eq!(Some(accepted.price), reference.price());
                    prop_assert_eq!(accepted.leading, leader == Some(bid.bidder));
                    prop_assert_eq!(accepted.leader_changed, leader != previous_leader);
                    let outbid = if leader != previous_leader { previous_leader } else { None };
                    prop_assert_eq!(accepted.previous_leader, outbid);
                    prop_assert_eq!(accepted.next_minimum, reference.minimum());
                    prop_assert_eq!(accepted.closes_at, reference.closes_at());
                    prop_assert_eq!(accepted.extended, accepted.closes_at != last_close);
                }
            }

            // Invariants after every step, accepted or refused.
            prop_assert_eq!(book.last_seq(), reference.accepted.len() as u64);
            prop_assert_eq!(book.bid_count(), reference.accepted.len() as u64);
            prop_assert_eq!(book.leader(), reference.leader());
            prop_assert_eq!(book.price(), reference.price());
            prop_assert_eq!(book.next_minimum(), reference.minimum());
            if let (Some(price), Some(max)) = (book.price(), book.leader_max()) {
                prop_assert!(price <= max, "price {} above leader max {}", price, max);
            }
            prop_assert!(book.price() >= last_price, "price fell");
            prop_assert!(book.closes_at() >= last_close, "close moved back");
            prop_assert!(book.closes_at() <= params.hard_deadline, "close past deadline");
            last_price = book.price();
            last_close = book.closes_at();
        }

        let standings = award::Standings::from_bids(&recorded);
        for units in 1..=6usize {
            let got: Vec<(BidderId, Cents)> = award::awards(&book, &standings, units as u32)
                .into_iter()
                .map(|a| (a.bidder, a.amount))
                .collect();
            prop_assert_eq!(&got, &reference.awards(units), "{} units", units);
            // The first winner is always the book's leader.
            prop_assert_eq!(got.first().map(|a| a.0), book.leader());
        }
        prop_assert_eq!(Book::replay(params, &recorded), Ok(book));
    }
}
