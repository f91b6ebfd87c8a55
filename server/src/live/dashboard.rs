//! The managers' live close dashboard (`dashboard:<auction>`, staff only): every half
//! second, for each auction someone follows, one frame of what the night looks like,
//! built from the engine's committed state only (never a shard's book) and its answer
//! counts.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{
    clock::Clock,
    domain::{AuctionId, AuctionState, Cents, ItemId},
    engine::{bidder_label, Engine, ItemState},
    live::hub::Hub,
};

/// How often the dashboard is sent: a commit shows within this (and one frame's build).
const EVERY: Duration = Duration::from_millis(500);
/// The window rates are taken over.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Items closing within this are listed as closing soon.
const CLOSING_SOON: chrono::Duration = chrono::Duration::minutes(10);
/// Rows in each list.
const TOP: usize = 10;

/// Per-minute rates of one auction, from its recent totals.
#[derive(Clone, Debug, Default)]
pub struct Rates {
    /// (when, bids committed, reoffer units sold), oldest first, over [`RATE_WINDOW`].
    samples: VecDeque<(Instant, u64, u64)>,
}

impl Rates {
    fn record(&mut self, now: Instant, bids: u64, units: u64) {
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemLine {
    item_id: ItemId,
    current_bid: Option<Cents>,
    bid_count: u64,
    bidders: u32,
    closes_at: DateTime<Utc>,
    extended: bool,
    closed: bool,
    leading_bidder_id: Option<String>,
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Errors {
    storage_unavailable: u64,
    refused: u64,
    rate_limited: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Reoffer {
    units_sold: u64,
    units_remaining: u64,
    buys_per_minute: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Frame {
    r#type: &'static str,
    auction_id: AuctionId,
    state: Option<AuctionState>,
    server_time: DateTime<Utc>,
    bids_total: u64,
    bids_per_minute: f64,
    /// Leading bids and reoffer sales so far.
    committed_total: Cents,
    items_open: usize,
    items_closed: usize,
    in_extension: usize,
    closing_soon: Vec<ItemLine>,
    top_by_price: Vec<ItemLine>,
    top_by_bidders: Vec<ItemLine>,
    /// Sockets open on this server.
    watchers: i64,
    /// What the engine refused or could not record since it started (all auctions).
    errors: Errors,
    reoffer: Reoffer,
}

/// Totals of one auction's items: (bids committed, reoffer units sold).
fn totals(items: &[ItemState]) -> (u64, u64) {
    items.iter().fold((0, 0), |(bids, units), s| {
        (bids + s.bid_count, units + u64::from(s.reoffer_sold))
    })
}

/// One dashboard frame of `auction` now.
pub fn frame(
    engine: &Engine,
    hub: &Hub,
    auction: AuctionId,
    now: DateTime<Utc>,
    rates: &Rates,
) -> Utf8Bytes {
    let items = engine.auction_items(auction);
    let (bids_total, units_sold) = totals(&items);
    let (bids_per_minute, buys_per_minute) = rates.per_minute();
    let committed_total = Cents(
        items
            .iter()
            .map(|s| {
                s.price.map(|p| p.0).unwrap_or(0)
                    + i64::from(s.reoffer_sold).saturating_mul(s.unit_price.0)
            })
            .sum(),
    );
    let competitive: Vec<&ItemState> = items.iter().filter(|s| s.competitive).collect();
    let mut closing_soon: Vec<&ItemState> = competitive
        .iter()
        .copied()
        .filter(|s| !s.closed && s.closes_at <= now + CLOSING_SOON)
        .collect();
    closing_soon.sort_by_key(|s| s.closes_at);
    let mut by_price = competitive.clone();
    by_price.sort_by(|a, b| b.price.cmp(&a.price).then(a.item.cmp(&b.item)));
    let mut by_bidders = competitive.clone();
    by_bidders.sort_by(|a, b| b.bidders.cmp(&a.bidders).then(a.item.cmp(&b.item)));
    let lines = |list: Vec<&ItemState>| list.into_iter().take(TOP).map(ItemLine::from).collect();
    let tally = engine.tally();
    let frame = Frame {
        r#type: "dashboard",
        auction_id: auction,
        state: engine.auction_state(auction),
        server_time: now,
        bids_total,
        bids_per_minute: (bids_per_minute * 10.0).round() / 10.0,
        committed_total,
        items_open: competitive.iter().filter(|s| !s.closed).count(),
        items_closed: competitive.iter().filter(|s| s.closed).count(),
        in_extension: competitive
            .iter()
            .filter(|s| s.extended && !s.closed)
            .count(),
        closing_soon: lines(closing_soon),
        top_by_price: lines(by_price.into_iter().filter(|s| s.price.is_some()).collect()),
        top_by_bidders: lines(by_bidders.into_iter().filter(|s| s.bidders > 0).collect()),
        watchers: hub.connection_count(),
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
    };
    Utf8Bytes::from(serde_json::to_string(&frame).unwrap_or_else(|_| "{}".into()))
}

/// Sends every followed auction's dashboard every [`EVERY`], until shutdown.
pub async fn run(
    engine: Engine,
    hub: Arc<Hub>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    let mut rates: HashMap<AuctionId, Rates> = HashMap::new();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let followed = hub.dashboards();
        rates.retain(|auction, _| followed.contains(auction));
        let now = clock.now();
        for auction in followed {
            let rate = rates.entry(auction).or_default();
            let (bids, units) = totals(&engine.auction_items(auction));
            rate.record(Instant::now(), bids, units);
            hub.publish_dashboard(auction, frame(&engine, &hub, auction, now, rate));
        }
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
