//! Competitive bidding rules: increments, proxy bidding, soft close. Pure and synchronous; the
//! engine owns one [`Book`] per item, feeds it bids with the time from its clock, and does all
//! the I/O (journal, replies, broadcasts, mail) with what [`Book::place`] returns.
//!
//! # The rules
//!
//! A bid has an explicit `amount` and an optional proxy maximum (`maxProxyAmount`); its
//! maximum is the proxy maximum, or the amount when there is none. A proxy maximum below the
//! amount is refused.
//!
//! - **Minimum.** The first bid must be at least the opening bid (and at least one cent). Every
//!   later bid must be at least the *next minimum*: price + one step, where the step is the
//!   item's fixed increment or else the table in [`increments`] at the current price. A refusal
//!   says what the minimum is.
//! - **Leader.** The bidder with the highest maximum leads. On equal maxima the earlier bid
//!   leads: the challenger who only matches the leader's maximum is outbid at that maximum.
//! - **Price.** With `L` the leader's maximum, `a` the explicit amount of the bid by which the
//!   leader took the lead, and `r` the highest maximum of any other bidder:
//!
//!   ```text
//!   price = min(L, max(a, r + step(r)))     (no other bidder: price = a)
//!   ```
//!
//!   That is eBay's "one increment over the runner-up, capped at the leader's maximum", with
//!   one addition: the price is never shown below what the leader explicitly bid. So the first
//!   bid sets the price to its own amount (the spec's `125.00` with a maximum of `200.00` shows
//!   `currentBid: 125.00`), and a challenger who bids `250` against a maximum of `200` leads at
//!   `250`, not at `210`: they said `250` out loud, and a price below a bid someone typed would
//!   look like a bug to everyone watching.
//! - **Leader raising their maximum.** A bid by the current leader must still reach the next
//!   minimum and must raise their maximum (else it is refused: a no-op must not take a seq).
//!   It changes only the maximum, never the explicit amount `a`: a leader never bids against
//!   themselves. The price then stays, except in one case: if it was held down by the leader's
//!   old maximum (after a tie or a near-tie), it rises to what the competition already
//!   justified, `r + step(r)`. The rule is the same formula throughout, so the price depends on
//!   the bids, not on the order of the leader's raises.
//! - **Monotone.** The price never falls, and every accepted bid by a non-leader strictly raises
//!   it, so each losing bidder's maximum is at or below the price: the runner-up's maximum alone
//!   stands for the whole field, which is why [`Book`] keeps no history.
//! - **Sequence.** Every accepted bid gets the item's next seq (1, 2, 3… without gaps); refused
//!   bids get none and change nothing.
//! - **Closing.** Bids at or after `closes_at` are refused. A bid accepted in the last
//!   soft-close window moves `closes_at` to `now + window`, never past the hard deadline and
//!   never backwards ([`soft_close`]).

// Money literals here are written dollars_cents (`2_500_00` is $2,500.00) so a table or a test
// reads like prices; clippy takes that for inconsistent thousands grouping.
#![allow(clippy::inconsistent_digit_grouping)]

pub mod award;
pub mod book;
pub mod increments;
pub mod soft_close;

#[cfg(test)]
mod proptests;

pub use award::{awards, Award, Standing, Standings};
pub use book::{
    Accepted, BidRequest, BidderId, Book, BookParams, RecordedBid, Refusal, ReplayError,
};
pub use increments::{increment_for, step};
pub use soft_close::closes_after_bid;
