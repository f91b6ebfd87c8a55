//! The numbers of auction night, from the engine's committed state only (never a shard's
//! book): the managers' live close dashboard (staff) and the hall's projector (public).
//! Built here so that the live edge, which sends them every half second, and the pages,
//! whose first view shows them without JavaScript, show the same numbers.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    domain::{AuctionId, AuctionState, Cents, ItemId},
    engine::{bidder_label, Engine, ItemState},
};

/// The window rates are taken over.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Items closing within this are listed as closing soon.
const CLOSING_SOON: chrono::Duration = chrono::Duration::minutes(10);
/// Rows in each dashboard list.
const TOP: usize = 10;
/// Rows in each projector list: what a hall can read from its seats.
const SCREEN_ROWS: usize = 8;

/// Per-minute rates of one auction, from its recent totals.
#[derive(Clone, Debug, Default)]
pub struct Rates {
    /// (when, bids committed, reoffer units sold), oldest first, over [`RATE_WINDOW`].
    samples: VecDeque<(Instant, u64, u64)>,
}

impl Rates {
    /// Notes the auction's totals at `now`, forgetting samples older than the window.
    pub fn record(&mut self, now: Instant, bids: u64, units: u64) {
        self.samples.push_back((now, bids, units));
        while self
            .samples
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// (bids, units) per minute over the samples held.
    fn per_minute(&self) -> (f64, f64) {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return (0.0, 0.0);
        };
        let secs = last.0.duration_since(first.0).as_secs_f64();
        if secs < 1.0 {
            return (0.0, 0.0);
        }
        let per_minute = |delta: u64| delta as f64 * 60.0 / secs;
        (
            per_minute(last.1.saturating_sub(first.1)),
            per_minute(last.2.saturating_sub(first.2)),
        )
    }
}

/// One item on the dashboard.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemLine {
    pub item_id: ItemId,
    pub current_bid: Option<Cents>,
    pub bid_count: u64,
    pub bidders: u32,
    pub closes_at: DateTime<Utc>,
    pub extended: bool,
    pub closed: bool,
    pub leading_bidder_id: Option<String>,
}

impl From<&ItemState> for ItemLine {
    fn from(s: &ItemState) -> ItemLine {
        ItemLine {
            item_id: s.item,
            current_bid: s.price,
            bid_count: s.bid_count,
            bidders: s.bidders,
            closes_at: s.closes_at,
            extended: s.extended,
            closed: s.closed,
            leading_bidder_id: s.leader_paddle.map(bidder_label),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Errors {
    pub storage_unavailable: u64,
    pub refused: u64,
    pub rate_limited: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reoffer {
    pub units_sold: u64,
    pub units_remaining: u64,
    pub buys_per_minute: f64,
}

/// The `dashboard` frame (docs/protocol.md): staff only.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardFrame {
    pub r#type: &'static str,
    pub auction_id: AuctionId,
    pub state: Option<AuctionState>,
    pub server_time: DateTime<Utc>,
    pub bids_total: u64,
    pub bids_per_minute: f64,
    /// Leading bids and reoffer sales so far.
    pub committed_total: Cents,
    pub items_open: usize,
    pub items_closed: usize,
    pub in_extension: usize,
    pub closing_soon: Vec<ItemLine>,
    pub top_by_price: Vec<ItemLine>,
    pub top_by_bidders: Vec<ItemLine>,
    /// Sockets open on this server.
    pub watchers: i64,
    /// What the engine refused or could not record since it started (all auctions).
    pub errors: Errors,
    pub reoffer: Reoffer,
}

/// Totals of one auction's items: (bids committed, reoffer units sold).
pub fn totals(items: &[ItemState]) -> (u64, u64) {
    items.iter().fold((0, 0), |(bids, units), s| {
        (bids + s.bid_count, units + u64::from(s.reoffer_sold))
    })
}

/// The winning bids (every winner's amount on an item of several units) plus reoffer
/// sales: what the night has raised so far.
fn committed_total(items: &[ItemState]) -> Cents {
    Cents(
        items
            .iter()
            .map(|s| s.winning_total.0 + i64::from(s.reoffer_sold).saturating_mul(s.unit_price.0))
            .sum(),
    )
}

/// Open competitive items closing within [`CLOSING_SOON`], soonest first.
fn closing_soon<'a>(competitive: &[&'a ItemState], now: DateTime<Utc>) -> Vec<&'a ItemState> {
    let mut soon: Vec<&ItemState> = competitive
        .iter()
        .copied()
        .filter(|s| !s.closed && s.closes_at <= now + CLOSING_SOON)
        .collect();
    soon.sort_by_key(|s| (s.closes_at, s.item));
    soon
}

/// The dashboard of `auction` now. `watchers` is the number of sockets open, which only
/// the live edge knows.
pub fn dashboard(
    engine: &Engine,
    watchers: i64,
    auction: AuctionId,
    now: DateTime<Utc>,
    rates: &Rates,
) -> DashboardFrame {
    let items = engine.auction_items(auction);
    let (bids_total, units_sold) = totals(&items);
    let (bids_per_minute, buys_per_minute) = rates.per_minute();
    let competitive: Vec<&ItemState> = items.iter().filter(|s| s.competitive).collect();
    let mut by_price = competitive.clone();
    by_price.sort_by(|a, b| b.price.cmp(&a.price).then(a.item.cmp(&b.item)));
    let mut by_bidders = competitive.clone();
    by_bidders.sort_by(|a, b| b.bidders.cmp(&a.bidders).then(a.item.cmp(&b.item)));
    let lines = |list: Vec<&ItemState>| list.into_iter().take(TOP).map(ItemLine::from).collect();
    let tally = engine.tally();
    DashboardFrame {
        r#type: "dashboard",
        auction_id: auction,
        state: engine.auction_state(auction),
        server_time: now,
        bids_total,
        bids_per_minute: (bids_per_minute * 10.0).round() / 10.0,
        committed_total: committed_total(&items),
        items_open: competitive.iter().filter(|s| !s.closed).count(),
        items_closed: competitive.iter().filter(|s| s.closed).count(),
        in_extension: competitive
            .iter()
            .filter(|s| s.extended && !s.closed)
            .count(),
        closing_soon: lines(closing_soon(&competitive, now)),
        top_by_price: lines(by_price.into_iter().filter(|s| s.price.is_some()).collect()),
        top_by_bidders: lines(by_bidders.into_iter().filter(|s| s.bidders > 0).collect()),
        watchers,
        errors: Errors {
            storage_unavailable: tally.unavailable,
            refused: tally.refused,
            rate_limited: tally.rate_limited,
        },
        reoffer: Reoffer {
            units_sold,
            units_remaining: items.iter().map(|s| u64::from(s.stock_left)).sum(),
            buys_per_minute: (buys_per_minute * 10.0).round() / 10.0,
        },
    }
}

/// An item closing soon, as the projector shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScreenLine {
    pub item_id: ItemId,
    pub current_bid: Option<Cents>,
    pub bid_count: u64,
    pub closes_at: DateTime<Utc>,
    pub extended: bool,
}

/// An item won, as the projector shows it: the winner's paddle only.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScreenWinner {
    pub item_id: ItemId,
    /// `p_<n>`: the paddle number, as `price` frames show the leader.
    pub paddle: String,
    pub amount: Cents,
    pub closed_at: DateTime<Utc>,
}

/// The `display` frame (docs/protocol.md): public, for the hall's projector. It carries
/// only what the catalog shows anyone already (prices, deadlines, the leader's paddle), plus
/// the total raised; none of the dashboard's staff numbers (rates, errors, watchers) and
/// never a name, an email or a bidder's maximum.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisplayFrame {
    pub r#type: &'static str,
    pub auction_id: AuctionId,
    pub state: Option<AuctionState>,
    pub server_time: DateTime<Utc>,
    pub total_raised: Cents,
    pub items_open: usize,
    pub closing_soon: Vec<ScreenLine>,
    pub latest_winners: Vec<ScreenWinner>,
}

/// The projector's view of `auction` now.
pub fn display(engine: &Engine, auction: AuctionId, now: DateTime<Utc>) -> DisplayFrame {
    let items = engine.auction_items(auction);
    let competitive: Vec<&ItemState> = items.iter().filter(|s| s.competitive).collect();
    let mut won: Vec<&ItemState> = competitive
        .iter()
        .copied()
        .filter(|s| s.closed && s.price.is_some() && s.leader_paddle.is_some())
        .collect();
    won.sort_by(|a, b| b.closes_at.cmp(&a.closes_at).then(b.item.cmp(&a.item)));
    DisplayFrame {
        r#type: "display",
        auction_id: auction,
        state: engine.auction_state(auction),
        server_time: now,
        total_raised: committed_total(&items),
        items_open: competitive.iter().filter(|s| !s.closed).count(),
        closing_soon: closing_soon(&competitive, now)
            .into_iter()
            .take(SCREEN_ROWS)
            .map(|s| ScreenLine {
                item_id: s.item,
                current_bid: s.price,
                bid_count: s.bid_count,
                closes_at: s.closes_at,
                extended: s.extended,
            })
            .collect(),
        // An item of several units has several winners; the screen names its top one (the
        // paddle `closed` frames name too), which is what the hall cheers for.
        latest_winners: won
            .into_iter()
            .take(SCREEN_ROWS)
            .filter_map(|s| {
                Some(ScreenWinner {
                    item_id: s.item,
                    paddle: bidder_label(s.leader_paddle?),
                    amount: s.price?,
                    closed_at: s.closes_at,
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_minute_over_the_window() {
        let mut rates = Rates::default();
        let t0 = Instant::now();
        assert_eq!(rates.per_minute(), (0.0, 0.0));
        rates.record(t0, 100, 0);
        rates.record(t0 + Duration::from_secs(30), 160, 3);
        assert_eq!(rates.per_minute(), (120.0, 6.0));
        // Samples older than the window are dropped.
        rates.record(t0 + Duration::from_secs(85), 160, 3);
        assert_eq!(rates.samples.len(), 2);
        assert_eq!(rates.per_minute(), (0.0, 0.0));
    }
}
