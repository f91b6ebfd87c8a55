//! `close`: the minute bidding ends. M items close at the same instant (the auction's
//! bidding close; with `--soft-close 0`, the default, nothing extends them) after a bid storm
//! into their last seconds that goes on past the close. Watchers follow every item.
//!
//! Afterwards the run checks the bids (nothing lost or duplicated, prices replay, as every
//! scenario) and the close itself (`close_check`): every item closed once, its winners,
//! status and units sold are what the rules give for its recorded bids, no bid was recorded
//! at or after its close, and a watcher saw its `closed` frame. The headline is the time from
//! each item's close to that frame: the frame is only sent once the winners are committed,
//! so the slowest one bounds "the last winner written".

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use auuction_domain::{Cents, ItemId};
use chrono::{DateTime, Utc};
use futures_util::{stream, SinkExt, StreamExt};
use rand::{rngs::StdRng, SeedableRng};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::storm::{dispatch, Schedule, JOB_QUEUE};
use super::{params, Ctx};
use crate::api::{ItemState, WinnerLine};
use crate::bidder;
use crate::check::SentBid;
use crate::cli::CloseArgs;
use crate::close_check::{self, CloseEvidence, ClosedSeen};
use crate::report::{Report, ScenarioCheck, Series};
use crate::run::{self, Live};
use crate::stats::{Outcome, Stats};
use crate::ws::{self, ServerFrame, Socket};
use crate::zipf::Zipf;

/// Topics one connection may follow.
const TOPICS_PER_SOCKET: usize = 500;

/// A `closed` frame as a watcher received it, with our clock's time of arrival.
struct Heard {
    item: i64,
    at: DateTime<Utc>,
    seen: ClosedSeen,
}

/// Subscribes to `items` and waits for their snapshots, so the watcher is known to follow
/// them before the close.
async fn subscribe(socket: &mut Socket, items: &[ItemId]) -> Result<()> {
    let topics: Vec<String> = items.iter().map(|i| format!("item:{i}")).collect();
    let frame = serde_json::json!({ "type": "subscribe", "topics": topics }).to_string();
    socket.send(Message::Text(frame.into())).await?;
    let mut wanted = items.len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while wanted > 0 {
        let msg = match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(e).context("reading snapshots"),
            Ok(None) => bail!("the server closed a watcher while subscribing"),
            Err(_) => bail!("no snapshots within 30 s ({wanted} missing)"),
        };
        let Message::Text(text) = msg else { continue };
        match ws::parse_frame(text.as_str())? {
            ServerFrame::Snapshot(_) => wanted -= 1,
            ServerFrame::Error(e) => bail!("the server refused a watcher's subscription: {e}"),
            _ => {}
        }
    }
    Ok(())
}

/// Reads a watcher's frames until each of its `count` items has closed or `until` passes.
async fn watch_closes(
    mut socket: Socket,
    count: usize,
    until: tokio::time::Instant,
    out: mpsc::UnboundedSender<Heard>,
) {
    let mut heard = 0;
    while heard < count {
        let msg = match tokio::time::timeout_at(until, socket.next()).await {
            Ok(Some(Ok(m))) => m,
            _ => break,
        };
        let Message::Text(text) = msg else { continue };
        if let Ok(ServerFrame::Closed(c)) = ws::parse_frame(text.as_str()) {
            heard += 1;
            let _ = out.send(Heard {
                item: c.item_id.0,
                at: Utc::now(),
                seen: ClosedSeen {
                    final_price: c.final_price,
                    winner: c.winning_bidder_id,
                    quantity_sold: c.quantity_sold,
                },
            });
        }
    }
    let _ = socket.close(None).await;
}

/// `t` (on the server's clock) as an instant on ours.
fn instant_at(t: DateTime<Utc>, offset: chrono::Duration) -> Instant {
    let from_now = (t - offset - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + from_now
}

fn ms(d: chrono::Duration) -> String {
    format!(
        "{:.1} ms",
        d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
    )
}

/// Every unit won has its `win` commitment, to its winner at its amount, and nothing else
/// does: read from the server's database (development or staging only; read-only).
async fn win_commitments(
    url: &str,
    items: &[i64],
    winners: &[WinnerLine],
) -> Result<ScenarioCheck> {
    let pool = sqlx::PgPool::connect(url)
        .await
        .context("--check-database-url")?;
    let rows: Vec<(i64, i64, i32, i64)> = sqlx::query_as(
        "SELECT item_id, user_id, quantity, price_each FROM commitments
          WHERE source = 'win' AND item_id = ANY($1)",
    )
    .bind(items)
    .fetch_all(&pool)
    .await
    .context("reading the win commitments")?;
    pool.close().await;
    let mut recorded: Vec<(i64, i64, i32, i64)> = rows;
    let mut won: Vec<(i64, i64, i32, i64)> = winners
        .iter()
        .map(|w| (w.item_id.0, w.user_id.0, w.quantity, w.amount.0))
        .collect();
    recorded.sort_unstable();
    won.sort_unstable();
    let passed = recorded == won;
    let problems = if passed {
        Vec::new()
    } else {
        let extra: Vec<String> = recorded
            .iter()
            .filter(|r| !won.contains(r))
            .chain(won.iter().filter(|w| !recorded.contains(w)))
            .take(20)
            .map(|(item, user, q, cents)| format!("it_{item} u_{user} ×{q} at {}", Cents(*cents)))
            .collect();
        vec![format!(
            "commitments and winners differ in: {}",
            extra.join(", ")
        )]
    };
    Ok(ScenarioCheck {
        what: "every unit won has its win commitment".into(),
        expected: "the win commitments are the winners".into(),
        measured: format!(
            "{} win commitments, {} units won",
            recorded.len(),
            won.len()
        ),
        passed,
        problems,
    })
}

pub async fn run(ctx: &Ctx, args: &CloseArgs) -> Result<Report> {
    let items_n = args.items.max(1);
    let bidders_n = args.bidders.max(1);
    let duration = Duration::from_secs(args.duration.max(1));
    let after = Duration::from_secs_f64(args.after_close.clamp(0.0, 600.0));
    // Created closing well after the setup; the close is moved once everyone is connected.
    let mut world = ctx
        .world(
            items_n,
            bidders_n,
            duration + Duration::from_secs(3600),
            args.soft_close.min(3600) as i32,
        )
        .await?;
    let watchers_n = args
        .watchers
        .max(items_n.div_ceil(TOPICS_PER_SOCKET))
        .max(1);
    let mut report = ctx.report(
        "close",
        params(&[
            ("items", items_n.to_string()),
            ("bidders", bidders_n.to_string()),
            ("rate (bids/s)", args.rate.to_string()),
            ("bidding before the close (s)", args.duration.to_string()),
            ("bidding after the close (s)", args.after_close.to_string()),
            ("soft close window (s)", args.soft_close.to_string()),
            ("proxy share", args.proxy_share.to_string()),
            ("watchers", watchers_n.to_string()),
            ("auction", world.auction.id.to_string()),
        ]),
    );

    // Watchers first: item i is followed by watcher i mod W.
    let mut watchers = Vec::with_capacity(watchers_n);
    for socket in ctx.connect_many(None, watchers_n).await {
        watchers.push(socket.context("connecting a watcher")?);
    }
    let offset = run::server_clock_offset(&mut watchers[0]).await?;
    let mut watched: Vec<Vec<ItemId>> = vec![Vec::new(); watchers_n];
    for (i, item) in world.items.iter().enumerate() {
        watched[i % watchers_n].push(item.id);
    }
    for (socket, items) in watchers.iter_mut().zip(&watched) {
        subscribe(socket, items).await?;
    }
    let sockets = ctx.connect_many(Some(&world.bidders), bidders_n).await;

    // The close, on the server's clock, on a whole second: every item closes then.
    let lead = duration + Duration::from_secs(1);
    let close_ms = (Utc::now() + offset + chrono::Duration::from_std(lead)?).timestamp_millis();
    let close = DateTime::<Utc>::from_timestamp_millis(close_ms.div_euclid(1000) * 1000 + 1000)
        .context("the close's time")?;
    world.retime_close(close).await?;
    let close_instant = instant_at(close, offset);
    let start = close_instant
        .checked_sub(duration)
        .context("the close is too soon")?;

    let wait_until = tokio::time::Instant::from_std(close_instant + after)
        + Duration::from_secs(args.wait.max(1));
    let (heard_tx, mut heard_rx) = mpsc::unbounded_channel();
    let watcher_tasks: Vec<_> = watchers
        .into_iter()
        .zip(&watched)
        .map(|(socket, items)| {
            tokio::spawn(watch_closes(
                socket,
                items.len(),
                wait_until,
                heard_tx.clone(),
            ))
        })
        .collect();
    drop(heard_tx);

    let live = Arc::new(Live::default());
    let (samples, collector) = run::collector(1, start, live.clone());
    let bidder::Started {
        senders,
        tasks,
        connect_errors,
    } = bidder::start_all(
        sockets,
        &world.bidders,
        JOB_QUEUE,
        &samples,
        bidder::Settings {
            acks: None,
            drain: Duration::from_secs(10),
            keys: !ctx.common.no_idempotency_keys,
            lag_series: None,
        },
    );
    if senders.is_empty() {
        bail!("no bidder could connect");
    }
    let span = duration + after;
    let total = (args.rate * span.as_secs_f64()).round() as u64;
    let bar = run::progress(span.as_secs().max(1), ctx.common.quiet);
    let ticker = run::tick_progress(bar.clone(), live.clone(), start);
    dispatch(Schedule {
        start,
        interval: Duration::from_secs_f64(1.0 / args.rate.max(0.001)),
        total,
        next: 0,
        rng: StdRng::from_entropy(),
        zipf: Zipf::new(items_n, 0.0),
        next_amount: world
            .items
            .iter()
            .map(|i| AtomicI64::new(i.opening.0))
            .collect(),
        items: world.items.iter().map(|i| i.id).collect(),
        proxy_share: args.proxy_share.clamp(0.0, 1.0),
        senders,
        samples: samples.clone(),
    })
    .await?;
    let mut sent: Vec<SentBid> = Vec::new();
    let mut failures = 0u64;
    for t in tasks {
        match t.await {
            Ok(s) => sent.extend(s),
            Err(_) => failures += 1,
        }
    }
    drop(samples);
    let stats = collector.await?;
    bar.set_message("waiting for the closes");
    for t in watcher_tasks {
        let _ = t.await;
    }
    bar.finish_and_clear();
    ticker.abort();
    let mut heard: HashMap<i64, Heard> = HashMap::new();
    let mut repeated = 0u64;
    while let Some(h) = heard_rx.recv().await {
        if heard.insert(h.item, h).is_some() {
            repeated += 1;
        }
    }

    // The server's side: bids (checked as in every scenario), items and winners.
    let (bid_check, lists) = run::verify_keeping_lists(&world, &ctx.target, &sent).await?;
    let admin = &world.admin;
    let states: Vec<Result<ItemState>> = stream::iter(&world.items)
        .map(|i| async move { admin.item_state(i.id).await })
        .buffered(16)
        .collect()
        .await;
    let states: HashMap<i64, ItemState> = states
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .map(|s| (s.id.0, s))
        .collect();
    let winners = world.admin.winners(world.auction.id).await?;
    let mut winners_by_item: HashMap<i64, Vec<&WinnerLine>> = HashMap::new();
    for w in &winners {
        winners_by_item.entry(w.item_id.0).or_default().push(w);
    }
    let mut maxima: HashMap<i64, HashMap<(String, Cents), Cents>> = HashMap::new();
    for b in &sent {
        if let Some(max) = b.max_proxy {
            maxima
                .entry(b.item)
                .or_default()
                .insert((format!("p_{}", b.paddle), b.amount), max);
        }
    }
    let no_maxima = HashMap::new();
    let evidence: Vec<CloseEvidence<'_>> = world
        .items
        .iter()
        .map(|i| CloseEvidence {
            item: i.id.0,
            params: world.params(i),
            listed: lists.get(&i.id.0).map(Vec::as_slice).unwrap_or(&[]),
            maxima: maxima.get(&i.id.0).unwrap_or(&no_maxima),
            server: states.get(&i.id.0),
            winners: winners_by_item.remove(&i.id.0).unwrap_or_default(),
            closed_frame: heard.get(&i.id.0).map(|h| &h.seen),
        })
        .collect();
    let close_check = close_check::check(&evidence);

    // From each item's close to its closed frame, on the server's clock.
    let mut close_latency = Stats::new();
    let mut last_frame = chrono::Duration::zero();
    let mut early_frames = 0u64;
    for (item, h) in &heard {
        let Some(state) = states.get(item) else {
            continue;
        };
        let after_close = h.at + offset - state.closes_at;
        last_frame = last_frame.max(after_close);
        if after_close < chrono::Duration::zero() {
            early_frames += 1;
        }
        let latency = after_close.to_std().unwrap_or(Duration::ZERO);
        close_latency.record(0, latency, &Outcome::Ok);
    }
    let missing = items_n.saturating_sub(heard.len());
    for _ in 0..missing {
        close_latency.error("no_closed_frame");
    }
    let decided_after = winners
        .iter()
        .filter_map(|w| {
            states
                .get(&w.item_id.0)
                .map(|s| w.determined_at - s.closes_at)
        })
        .max();
    let distinct_closes = {
        let mut closes: Vec<DateTime<Utc>> = states.values().map(|s| s.closes_at).collect();
        closes.sort();
        closes.dedup();
        closes.len()
    };

    report.seconds = span.as_secs_f64();
    report.series.push(Series::from_stats(
        "close to closed frame",
        "from each item's close (its closesAt, on the server's clock) to a watcher's `closed` \
         frame for it, which is sent once its winners are committed",
        &close_latency,
        report.seconds,
    ));
    if let Some(s) = stats.first() {
        report.series.push(Series::from_stats(
            "bid ack",
            "from a bid's intended send time to its bid_result (bids after the close are \
             refused bidding_closed)",
            s,
            report.seconds,
        ));
    }
    let figures = [
        ("scheduled close", close.to_rfc3339()),
        ("distinct close times", distinct_closes.to_string()),
        ("last closed frame after its close", ms(last_frame)),
        (
            "last winner decided after its close (determinedAt)",
            decided_after.map_or("no winners".into(), ms),
        ),
        ("items sold", close_check.sold.to_string()),
        ("closed frames missing", missing.to_string()),
        ("closed frames repeated", repeated.to_string()),
        (
            "closed frames before the close (clock)",
            early_frames.to_string(),
        ),
        ("server clock ahead of ours", ms(offset)),
        ("bids scheduled", total.to_string()),
        ("connect errors", connect_errors.to_string()),
        ("bidder task failures", failures.to_string()),
    ];
    for (k, v) in figures {
        report.figures.insert(k.into(), v);
    }
    if let Some(url) = &ctx.common.check_database_url {
        let ids: Vec<i64> = world.items.iter().map(|i| i.id.0).collect();
        report
            .checks
            .push(win_commitments(url, &ids, &winners).await?);
    }
    report.checks.push(ScenarioCheck {
        what: "every item closed once, winners replay, no bid after the close".into(),
        expected: "0 wrong, 0 bids after the close".into(),
        measured: close_check.measured(),
        passed: close_check.passed && repeated == 0,
        problems: close_check.problems.clone(),
    });
    report.check = Some(bid_check);
    report.judge();
    Ok(report)
}
