//! What every scenario shares: the collector task that owns the statistics, the progress bar,
//! and the post-run check against the server's bid lists and live state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::check::{self, CheckReport, FinalState, ItemEvidence, ListedBid, SentBid};
use crate::setup::World;
use crate::stats::{Outcome, Stats};
use crate::ws::{self, ItemSnapshot, ServerFrame, Socket, Sources, Target};

/// One answered (or failed) request, sent to the collector.
pub struct Sample {
    /// Which series it belongs to (index into the scenario's series).
    pub series: usize,
    /// When it was meant to happen; the second of the run is taken from it.
    pub intended: Instant,
    pub latency: Duration,
    pub outcome: Outcome,
}

/// The sending half, cloned into every task. Unbounded: the collector is a tight loop and a
/// bounded channel would make a slow collector slow the load down (coordinated omission).
pub type Samples = mpsc::UnboundedSender<Sample>;

/// Live counters for the progress bar.
#[derive(Default)]
pub struct Live {
    pub ok: AtomicU64,
    pub refused: AtomicU64,
    pub errors: AtomicU64,
}

/// Starts the collector: returns the sender and a handle yielding one `Stats` per series.
/// Samples intended before `measure_from` (a warm-up: books loading on first use,
/// connections settling) are shown live but left out of the statistics.
pub fn collector(
    series: usize,
    measure_from: Instant,
    live: Arc<Live>,
) -> (Samples, tokio::task::JoinHandle<Vec<Stats>>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
    let handle = tokio::spawn(async move {
        let mut stats: Vec<Stats> = (0..series).map(|_| Stats::new()).collect();
        while let Some(s) = rx.recv().await {
            let warming_up = s.intended < measure_from;
            let second = s.intended.saturating_duration_since(measure_from).as_secs();
            // The progress bar counts the headline series (the first) only.
            if s.series == 0 {
                match &s.outcome {
                    Outcome::Ok => live.ok.fetch_add(1, Ordering::Relaxed),
                    Outcome::Refused(_) => live.refused.fetch_add(1, Ordering::Relaxed),
                    Outcome::Error(_) => live.errors.fetch_add(1, Ordering::Relaxed),
                };
            }
            if warming_up {
                continue;
            }
            if let Some(st) = stats.get_mut(s.series) {
                st.record(second, s.latency, &s.outcome);
            }
        }
        stats
    });
    (tx, handle)
}

/// A progress bar over the measured phase that shows the live counts.
pub fn progress(seconds: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(seconds.max(1));
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}s {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Ticks the progress bar twice a second with the live counters until it is finished.
pub fn tick_progress(
    bar: ProgressBar,
    live: Arc<Live>,
    start: Instant,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let ok = live.ok.load(Ordering::Relaxed);
            bar.set_position(start.elapsed().as_secs());
            bar.set_message(format!(
                "ok {ok} ({:.0}/s)  refused {}  errors {}",
                (ok - last.min(ok)) as f64 * 2.0,
                live.refused.load(Ordering::Relaxed),
                live.errors.load(Ordering::Relaxed)
            ));
            last = ok;
            if bar.is_finished() {
                break;
            }
        }
    })
}

/// The post-run check: lists every item's bids over the API, reads every item's live state
/// over a WebSocket, and compares both with what this run sent and was told.
pub async fn verify(world: &World, target: &Target, sent: &[SentBid]) -> Result<CheckReport> {
    Ok(verify_keeping_lists(world, target, sent).await?.0)
}

/// Every item's bid list, as `GET /api/items/{id}/bids` gave it, by item id.
pub type BidLists = HashMap<i64, Vec<ListedBid>>;

/// [`verify`], also returning the bid lists it read (the close's check replays them).
pub async fn verify_keeping_lists(
    world: &World,
    target: &Target,
    sent: &[SentBid],
) -> Result<(CheckReport, BidLists)> {
    // A bid whose answer timed out may still be committing; give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut by_item: HashMap<i64, Vec<&SentBid>> = HashMap::new();
    for b in sent {
        by_item.entry(b.item).or_default().push(b);
    }
    let finals = final_states(world, target).await?;
    let mut evidence = Vec::with_capacity(world.items.len());
    let mut lists = BidLists::new();
    for item in &world.items {
        let listed = world
            .admin
            .bids(item.id)
            .await
            .with_context(|| format!("listing the bids of {}", item.id))?;
        lists.insert(item.id.0, listed.clone());
        evidence.push(ItemEvidence {
            item: item.id.0,
            params: world.params(item),
            sent: by_item.remove(&item.id.0).unwrap_or_default(),
            listed,
            final_state: finals.get(&item.id.0).cloned(),
        });
    }
    Ok((check::check(&evidence), lists))
}

/// How far the server's clock is ahead of ours, from the fastest of a few `ping`/`pong`
/// round trips (offset ≈ serverTime − (clientTime + rtt/2), as the web client does). The
/// close is scheduled and measured on the server's clock.
pub async fn server_clock_offset(socket: &mut Socket) -> Result<chrono::Duration> {
    let mut best: Option<(i64, i64)> = None;
    for _ in 0..5 {
        let sent = chrono::Utc::now().timestamp_micros();
        let frame = serde_json::json!({ "type": "ping", "clientTime": sent / 1000 }).to_string();
        socket.send(Message::Text(frame.into())).await?;
        let pong = loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .context("no pong within 5 s")?;
            match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(ServerFrame::Pong(p)) = ws::parse_frame(text.as_str()) {
                        break p;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).context("reading a pong"),
                None => bail!("the server closed the socket before answering a ping"),
            }
        };
        let back = chrono::Utc::now().timestamp_micros();
        let rtt = back - sent;
        // serverTime is in milliseconds: the offset is good to a millisecond or so.
        let offset = pong.server_time * 1000 - (sent + rtt / 2);
        if best.is_none_or(|(r, _)| rtt < r) {
            best = Some((rtt, offset));
        }
    }
    let (_, offset) = best.context("no pong")?;
    Ok(chrono::Duration::microseconds(offset))
}

/// Every item's snapshot, from one admin connection (at most 500 topics per subscribe).
async fn final_states(world: &World, target: &Target) -> Result<HashMap<i64, FinalState>> {
    let sources = Sources::parse("")?;
    let mut socket = ws::connect(target, &sources, world.admin.token()).await?;
    let mut out = HashMap::new();
    for chunk in world.items.chunks(500) {
        let topics: Vec<String> = chunk.iter().map(|i| format!("item:{}", i.id)).collect();
        let frame = serde_json::json!({ "type": "subscribe", "topics": &topics }).to_string();
        socket.send(Message::Text(frame.into())).await?;
        let mut wanted = chunk.len();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while wanted > 0 {
            let msg = match tokio::time::timeout_at(deadline, socket.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(e).context("reading snapshots"),
                Ok(None) => bail!("the server closed the socket while sending snapshots"),
                Err(_) => bail!("no snapshots within 30 s ({wanted} missing)"),
            };
            let Message::Text(text) = msg else { continue };
            let snapshot = match ws::parse_frame(text.as_str())? {
                ServerFrame::Snapshot(text) => text,
                ServerFrame::Error(text) => bail!("the server refused the subscription: {text}"),
                _ => continue,
            };
            {
                if let Ok(s) = serde_json::from_str::<ItemSnapshot>(&snapshot) {
                    out.insert(
                        s.item_id.0,
                        FinalState {
                            current_bid: s.current_bid,
                            seq: s.seq,
                            leader: s.leading_bidder_id,
                        },
                    );
                    wanted -= 1;
                }
            }
        }
        // A connection follows at most 500 topics: let go of these before the next chunk.
        let frame = serde_json::json!({ "type": "unsubscribe", "topics": topics }).to_string();
        socket.send(Message::Text(frame.into())).await?;
    }
    let _ = socket.close(None).await;
    Ok(out)
}
