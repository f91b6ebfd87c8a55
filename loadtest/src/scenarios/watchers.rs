//! `watchers`: the congregation watching prices move. W guest connections subscribe to items;
//! a few bidders bid at a steady rate; each watcher's `price` frame for a bid is timed from
//! that bid's acknowledgement (its `bid_result` at the bidder), on the same clock.
//!
//! Prices are conflated per connection (docs/protocol.md): a watcher may legitimately skip a
//! seq. Skips are counted, not treated as errors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use auuction_domain::Cents;
use futures_util::{SinkExt, StreamExt};
use rand::{rngs::StdRng, Rng, SeedableRng};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::{params, Ctx};
use crate::bidder::{self, AckTimes, Job};
use crate::cli::WatchersArgs;
use crate::report::{Report, Series};
use crate::run::{self, Live};
use crate::setup::INCREMENT;
use crate::stats::{Outcome, Stats};
use crate::ws::{self, ServerFrame, Socket};

/// One price frame as a watcher saw it.
struct Delivery {
    item: i64,
    seq: u64,
    at: Instant,
}

async fn watch_prices(
    mut socket: Socket,
    topics: Vec<String>,
    out: mpsc::UnboundedSender<Delivery>,
    mut stop: watch::Receiver<bool>,
    disconnects: Arc<AtomicU64>,
) {
    let frame = serde_json::json!({ "type": "subscribe", "topics": topics }).to_string();
    if socket.send(Message::Text(frame.into())).await.is_err() {
        disconnects.fetch_add(1, Ordering::Relaxed);
        return;
    }
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            msg = socket.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(ServerFrame::Price(p)) = ws::parse_frame(t.as_str()) {
                        let _ = out.send(Delivery { item: p.item_id.0, seq: p.seq, at: Instant::now() });
                    }
                }
                Some(Ok(_)) => {}
                _ => {
                    disconnects.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
    let _ = socket.close(None).await;
}

pub async fn run(ctx: &Ctx, args: &WatchersArgs) -> Result<Report> {
    let items_n = args.items.max(1);
    let bidders_n = args.bidders.max(1);
    let per = args.topics_per_watcher.clamp(1, items_n.min(500));
    let duration = Duration::from_secs(args.duration.max(1));
    let world = ctx
        .world(items_n, bidders_n, Duration::from_secs(3600), 0)
        .await?;
    let mut report = ctx.report(
        "watchers",
        params(&[
            ("watchers", args.watchers.to_string()),
            ("items", items_n.to_string()),
            ("topics per watcher", per.to_string()),
            ("bidders", bidders_n.to_string()),
            ("rate (bids/s)", args.rate.to_string()),
            ("duration (s)", args.duration.to_string()),
        ]),
    );

    // Watchers first, spread evenly: watcher i follows items i·per … i·per+per-1 (mod M).
    let mut subscribers: HashMap<i64, u64> = HashMap::new();
    let watch_sockets = ctx.connect_many(None, args.watchers).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (dtx, mut drx) = mpsc::unbounded_channel::<Delivery>();
    let disconnects = Arc::new(AtomicU64::new(0));
    let mut watcher_tasks = Vec::new();
    let mut connect_errors = 0u64;
    for (i, socket) in watch_sockets.into_iter().enumerate() {
        let Ok(socket) = socket else {
            connect_errors += 1;
            continue;
        };
        let topics: Vec<String> = (0..per)
            .map(|j| {
                let item = &world.items[(i * per + j) % items_n];
                *subscribers.entry(item.id.0).or_default() += 1;
                format!("item:{}", item.id)
            })
            .collect();
        watcher_tasks.push(tokio::spawn(watch_prices(
            socket,
            topics,
            dtx.clone(),
            stop_rx.clone(),
            disconnects.clone(),
        )));
    }
    drop(dtx);
    // Let the subscriptions land before the first bid.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let sockets = ctx.connect_many(Some(&world.bidders), bidders_n).await;
    let live = Arc::new(Live::default());
    let start = Instant::now() + Duration::from_millis(200);
    let (samples, collector) = run::collector(1, start, live.clone());
    let acks: AckTimes = Arc::new(Mutex::new(HashMap::new()));
    let started = bidder::start_all(
        sockets,
        &world.bidders,
        1024,
        &samples,
        bidder::Settings {
            acks: Some(acks.clone()),
            drain: Duration::from_secs(10),
            keys: !ctx.common.no_idempotency_keys,
            lag_series: None,
        },
    );
    connect_errors += started.connect_errors;
    let bidder::Started { senders, tasks, .. } = started;
    if senders.is_empty() {
        anyhow::bail!("no bidder could connect");
    }
    let bar = run::progress(args.duration, ctx.common.quiet);
    let ticker = run::tick_progress(bar.clone(), live.clone(), start);
    let next_amount: Vec<AtomicI64> = world
        .items
        .iter()
        .map(|i| AtomicI64::new(i.opening.0))
        .collect();
    let total = (args.rate * duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let mut rng = StdRng::from_entropy();
    tokio::time::sleep_until(start.into()).await;
    let mut i = 0u64;
    while i < total {
        let due = ((start.elapsed().as_secs_f64() * args.rate) as u64 + 1).min(total);
        while i < due {
            let rank = (i as usize) % items_n;
            let amount = next_amount[rank].fetch_add(INCREMENT.0 * 2, Ordering::Relaxed);
            let job = Job {
                intended: start + interval.mul_f64(i as f64),
                item: world.items[rank].id,
                amount: Cents(amount),
                max_proxy: None,
            };
            let who = rng.gen_range(0..senders.len());
            let _ = senders[who].try_send(job);
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let measured = start.elapsed().as_secs_f64();
    drop(senders);
    let mut sent = Vec::new();
    for t in tasks {
        if let Ok(s) = t.await {
            sent.extend(s);
        }
    }
    // The last prices are still on their way to the watchers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_tx.send(true);
    for t in watcher_tasks {
        let _ = t.await;
    }
    drop(samples);
    bar.finish_and_clear();
    ticker.abort();
    let ack_stats = collector.await?;

    // Join deliveries with acknowledgements.
    let acks = acks.lock().map(|m| m.clone()).unwrap_or_default();
    let mut delivery = Stats::new();
    let mut delivered = 0u64;
    let mut before_ack = 0u64;
    let mut unmatched = 0u64;
    while let Ok(d) = drx.try_recv() {
        let Some(acked) = acks.get(&(d.item, d.seq)) else {
            unmatched += 1;
            continue;
        };
        delivered += 1;
        // The price may reach a watcher before the bidder has read its own bid_result; that
        // is a delay of zero, not a negative one.
        if d.at < *acked {
            before_ack += 1;
        }
        let second = acked.saturating_duration_since(start).as_secs();
        delivery.record(second, d.at.saturating_duration_since(*acked), &Outcome::Ok);
    }
    let expected: u64 = acks
        .keys()
        .map(|(item, _)| subscribers.get(item).copied().unwrap_or(0))
        .sum();
    report.seconds = measured;
    report.series.push(Series::from_stats(
        "price delivery",
        "from a bid's bid_result at its bidder to each watcher's price frame with that seq",
        &delivery,
        measured,
    ));
    if let Some(s) = ack_stats.first() {
        report.series.push(Series::from_stats(
            "bid ack",
            "from a bid's intended send time to its bid_result",
            s,
            measured,
        ));
    }
    report.figures.insert(
        "watchers connected".into(),
        (args.watchers as u64 - connect_errors.min(args.watchers as u64)).to_string(),
    );
    report
        .figures
        .insert("connect errors".into(), connect_errors.to_string());
    report.figures.insert(
        "watcher disconnects".into(),
        disconnects.load(Ordering::Relaxed).to_string(),
    );
    report.figures.insert(
        "price frames expected (acked bids × subscribers)".into(),
        expected.to_string(),
    );
    report
        .figures
        .insert("price frames delivered".into(), delivered.to_string());
    report.figures.insert(
        "skipped by conflation or lost".into(),
        expected.saturating_sub(delivered).to_string(),
    );
    report
        .figures
        .insert("price before own ack".into(), before_ack.to_string());
    report.figures.insert(
        "price frames for unacknowledged seqs".into(),
        unmatched.to_string(),
    );
    report.check = Some(run::verify(&world, &ctx.target, &sent).await?);
    report.judge();
    Ok(report)
}
