//! `storm`: the last minutes of auction night. N bidders over M items with Zipf-skewed
//! popularity, at a fixed rate of bids per second, open-loop.
//!
//! Amounts: each item keeps a shared "next amount" that every bid on it takes and raises by
//! two increments. Bids leave in amount order per item, so most are accepted; one that is
//! overtaken in flight is refused `bid_too_low`, which is a correct answer under contention.
//! A share of bids carry a proxy maximum, so proxy resolution is exercised and replayed.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use auuction::domain::Cents;
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::{params, Ctx};
use crate::bidder::{self, Job};
use crate::cli::StormArgs;
use crate::report::{Report, Series};
use crate::run::{self, Live, Sample};
use crate::setup::INCREMENT;
use crate::stats::Outcome;
use crate::zipf::Zipf;

/// Jobs queued per bidder connection before the dispatcher counts a backlog error: at a
/// sane rate a connection holds a handful; thousands mean the generator cannot keep up.
const JOB_QUEUE: usize = 1024;

pub async fn run(ctx: &Ctx, args: &StormArgs) -> Result<Report> {
    let bidders_n = args.bidders.max(1);
    let duration = Duration::from_secs(args.duration.max(1));
    // Bidding closes just after the load ends; with a window of half the run, every bid in the
    // second half extends the close (soft close), as in the real last minutes.
    let window = (args.duration / 2).clamp(1, 3600) as i32;
    // Created with a long margin for the setup; the close is moved to just after the run
    // once the bidders are connected.
    let mut world = ctx
        .world(
            args.items.max(1),
            bidders_n,
            duration + Duration::from_secs(600),
            window,
        )
        .await?;
    let mut report = ctx.report(
        "storm",
        params(&[
            ("bidders", bidders_n.to_string()),
            ("items", args.items.to_string()),
            ("zipf", args.zipf.to_string()),
            ("rate (bids/s)", args.rate.to_string()),
            ("duration (s)", args.duration.to_string()),
            ("warm-up (s, not measured)", args.warmup.to_string()),
            ("proxy share", args.proxy_share.to_string()),
            ("soft close window (s)", window.to_string()),
            ("auction", world.auction.id.to_string()),
        ]),
    );

    let sockets = ctx.connect_many(Some(&world.bidders), bidders_n).await;
    let live = Arc::new(Live::default());
    // Close half a second after the last scheduled bid (the 200 ms below is the start's
    // delay): bids in the last `window` seconds keep extending it, as on the night.
    let close =
        chrono::Utc::now() + chrono::Duration::from_std(duration + Duration::from_millis(700))?;
    world.retime_close(close).await?;
    let start = Instant::now() + Duration::from_millis(200);
    let warmup = Duration::from_secs(args.warmup.min(args.duration.saturating_sub(1)));
    let (samples, collector) = run::collector(1, start + warmup, live.clone());
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
        },
    );
    if senders.is_empty() {
        anyhow::bail!("no bidder could connect");
    }

    let next_amount: Vec<AtomicI64> = world
        .items
        .iter()
        .map(|i| AtomicI64::new(i.opening.0))
        .collect();
    let zipf = Zipf::new(world.items.len(), args.zipf);
    let bar = run::progress(args.duration, ctx.common.quiet);
    let ticker = run::tick_progress(bar.clone(), live.clone(), start);
    let total = (args.rate * duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let mut rng = StdRng::from_entropy();
    tokio::time::sleep_until(start.into()).await;
    let mut i: u64 = 0;
    while i < total {
        // Everything due by now goes out; the schedule, not the loop, sets the intended times.
        let due = ((start.elapsed().as_secs_f64() * args.rate) as u64 + 1).min(total);
        while i < due {
            let intended = start + interval.mul_f64(i as f64);
            let rank = zipf.sample(&mut rng);
            let step = INCREMENT.0 * 2;
            let amount = next_amount[rank].fetch_add(step, Ordering::Relaxed);
            let max_proxy =
                (rng.gen::<f64>() < args.proxy_share).then(|| Cents(amount + step * 10));
            let job = Job {
                intended,
                item: world.items[rank].id,
                amount: Cents(amount),
                max_proxy,
            };
            if let Some(max) = max_proxy {
                // The next bids must clear the proxy's maximum to be worth sending at all.
                next_amount[rank].fetch_max(max.0 + step, Ordering::Relaxed);
            }
            let who = rng.gen_range(0..senders.len());
            if senders[who].try_send(job).is_err() {
                let _ = samples.send(Sample {
                    series: 0,
                    intended,
                    latency: Duration::ZERO,
                    outcome: Outcome::Error("generator_backlog".into()),
                });
            }
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The scheduled span after the warm-up; the sends are over, the answers may still come.
    let measured = (duration - warmup).as_secs_f64();
    drop(senders);
    let mut sent = Vec::new();
    let mut disconnects = 0u64;
    for t in tasks {
        match t.await {
            Ok(s) => sent.extend(s),
            Err(_) => disconnects += 1,
        }
    }
    drop(samples);
    bar.finish_and_clear();
    ticker.abort();
    let stats = collector.await?;
    report.seconds = measured;
    if let Some(s) = stats.first() {
        report.series.push(Series::from_stats(
            "bid ack",
            "from a bid's intended send time to its bid_result (durable: committed before the ack)",
            s,
            measured,
        ));
    }
    report
        .figures
        .insert("bids scheduled".into(), total.to_string());
    report
        .figures
        .insert("connect errors".into(), connect_errors.to_string());
    report
        .figures
        .insert("bidder task failures".into(), disconnects.to_string());
    let check = run::verify(&world, &ctx.target, &sent).await?;
    report.figures.insert(
        "soft-close extensions (replayed)".into(),
        check.extensions.to_string(),
    );
    report.check = Some(check);
    report.judge();
    Ok(report)
}
