//! The live close feeds, every half second, for each auction someone follows:
//! `dashboard:<auction>` (the managers' numbers, staff only) and `display:<auction>` (the
//! hall's projector, public). Both are built by `services::dashboard` from the engine's
//! committed state only, so the pages' first view shows the same numbers.
//!
//! The projector has a topic of its own rather than following item topics: one screen
//! would otherwise follow every item of the night and add up the total itself, and the
//! winners would have to be pieced together from `closed` frames it may have missed while
//! reconnecting. One conflated frame per half second carries exactly what the screen
//! shows, whatever it missed.

use std::{collections::HashMap, sync::Arc, time::Duration, time::Instant};

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{
    clock::Clock,
    domain::AuctionId,
    engine::Engine,
    live::hub::Hub,
    services::dashboard::{self, totals, Rates},
};

/// How often the feeds are sent: a commit shows within this (and one frame's build).
const EVERY: Duration = Duration::from_millis(500);

fn text<T: Serialize>(frame: &T) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(frame).unwrap_or_else(|e| {
        tracing::error!(error = %e, "serialising a live close frame");
        "{}".into()
    }))
}

/// One dashboard frame of `auction` now.
pub fn frame(
    engine: &Engine,
    hub: &Hub,
    auction: AuctionId,
    now: DateTime<Utc>,
    rates: &Rates,
) -> Utf8Bytes {
    text(&dashboard::dashboard(
        engine,
        hub.connection_count(),
        auction,
        now,
        rates,
    ))
}

/// One projector frame of `auction` now.
pub fn display_frame(engine: &Engine, auction: AuctionId, now: DateTime<Utc>) -> Utf8Bytes {
    text(&dashboard::display(engine, auction, now))
}

/// Sends every followed auction's dashboard and display every [`EVERY`], until shutdown.
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
        let (dashboards, displays) = hub.followed_feeds();
        rates.retain(|auction, _| dashboards.contains(auction));
        let now = clock.now();
        for auction in dashboards {
            let rate = rates.entry(auction).or_default();
            let (bids, units) = totals(&engine.auction_items(auction));
            rate.record(Instant::now(), bids, units);
            hub.publish_dashboard(auction, frame(&engine, &hub, auction, now, rate));
        }
        for auction in displays {
            hub.publish_display(auction, display_frame(&engine, auction, now));
        }
    }
}
