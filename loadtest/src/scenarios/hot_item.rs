//! `hot-item`: everyone wants the quilt. C bidders, each on its own connection, bid on one
//! item at the same instant; the amounts are distinct and shuffled, so the engine must
//! serialise the burst, accept the ones that still beat the price and refuse the rest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use auuction_domain::Cents;
use rand::seq::SliceRandom;

use super::{params, Ctx};
use crate::bidder::{self, Job};
use crate::cli::HotItemArgs;
use crate::report::{Report, Series};
use crate::run::{self, Live};
use crate::setup::INCREMENT;

pub async fn run(ctx: &Ctx, args: &HotItemArgs) -> Result<Report> {
    let n = args.bidders.max(1);
    let rounds = args.rounds.max(1);
    let world = ctx.world(1, n, Duration::from_secs(3600), 0).await?;
    let item = &world.items[0];
    let mut report = ctx.report(
        "hot-item",
        params(&[
            ("bidders", n.to_string()),
            ("rounds", rounds.to_string()),
            ("item", item.id.to_string()),
        ]),
    );
    let sockets = ctx.connect_many(Some(&world.bidders), n).await;
    let live = Arc::new(Live::default());
    let start = Instant::now() + Duration::from_millis(500);
    let (samples, collector) = run::collector(1, start, live.clone());
    // One bid per round per bidder: a queue of `rounds` never fills.
    let bidder::Started {
        senders,
        tasks,
        connect_errors,
    } = bidder::start_all(
        sockets,
        &world.bidders,
        rounds,
        &samples,
        bidder::Settings {
            acks: None,
            drain: Duration::from_secs(30),
            keys: !ctx.common.no_idempotency_keys,
            lag_series: None,
        },
    );
    let bar = run::progress(rounds as u64, ctx.common.quiet);
    let step = INCREMENT.0 * 2;
    let mut base = item.opening.0;
    let mut rng = rand::thread_rng();
    for round in 0..rounds {
        let at = start + Duration::from_secs(round as u64);
        let mut amounts: Vec<i64> = (0..senders.len() as i64).map(|k| base + k * step).collect();
        amounts.shuffle(&mut rng);
        tokio::time::sleep_until(at.into()).await;
        for (tx, amount) in senders.iter().zip(&amounts) {
            let job = Job {
                intended: at,
                item: item.id,
                amount: Cents(*amount),
                max_proxy: None,
            };
            // Capacity is one per round, so this cannot be full; a closed channel means the
            // connection died, which the bidder task has already counted.
            let _ = tx.try_send(job);
        }
        base += (senders.len() as i64 + 1) * step;
        bar.set_position(round as u64 + 1);
    }
    drop(senders);
    let mut sent = Vec::new();
    let mut failures = 0u64;
    for t in tasks {
        match t.await {
            Ok(s) => sent.extend(s),
            Err(_) => failures += 1,
        }
    }
    let measured = start.elapsed().as_secs_f64();
    drop(samples);
    bar.finish_and_clear();
    let stats = collector.await?;
    report.seconds = measured;
    if let Some(s) = stats.first() {
        report.series.push(Series::from_stats(
            "burst answer",
            "from the burst's instant to each bid's bid_result (accepted or refused)",
            s,
            measured,
        ));
    }
    report
        .figures
        .insert("connect errors".into(), connect_errors.to_string());
    report
        .figures
        .insert("bidder task failures".into(), failures.to_string());
    report.check = Some(run::verify(&world, &ctx.target, &sent).await?);
    report.judge();
    Ok(report)
}
