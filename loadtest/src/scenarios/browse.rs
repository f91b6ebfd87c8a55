//! `browse`: people looking around the catalog before and during bidding. GETs of the home
//! page, catalog and item pages and the catalog API, round-robin, open-loop at a fixed rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::Semaphore;

use super::{params, Ctx};
use crate::cli::BrowseArgs;
use crate::report::{Report, Series};
use crate::run::{self, Live, Sample};
use crate::stats::Outcome;

pub async fn run(ctx: &Ctx, args: &BrowseArgs) -> Result<Report> {
    let world = ctx
        .world(args.items.max(1), 0, Duration::from_secs(3600), 0)
        .await?;
    let duration = Duration::from_secs(args.duration.max(1));
    let mut report = ctx.report(
        "browse",
        params(&[
            ("rate (req/s)", args.rate.to_string()),
            ("duration (s)", args.duration.to_string()),
            ("paths", args.paths.join(" ")),
        ]),
    );
    // Guests: no token, like most visitors.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.max_in_flight)
        .build()?;
    let base = world.admin.base.clone();
    let live = Arc::new(Live::default());
    let start = Instant::now() + Duration::from_millis(200);
    let (samples, collector) = run::collector(1, start, live.clone());
    let permits = Arc::new(Semaphore::new(args.max_in_flight.max(1)));
    let bar = run::progress(args.duration, ctx.common.quiet);
    let ticker = run::tick_progress(bar.clone(), live.clone(), start);
    let total = (args.rate * duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let mut tasks = Vec::new();
    tokio::time::sleep_until(start.into()).await;
    let mut i = 0u64;
    while i < total {
        let due = ((start.elapsed().as_secs_f64() * args.rate) as u64 + 1).min(total);
        while i < due {
            let intended = start + interval.mul_f64(i as f64);
            let template = &args.paths[(i as usize) % args.paths.len().max(1)];
            let item = &world.items[(i as usize) % world.items.len()];
            let url = format!("{base}{}", template.replace("{item}", &item.id.to_string()));
            let (client, samples, permits) = (client.clone(), samples.clone(), permits.clone());
            tasks.push(tokio::spawn(async move {
                // Waiting for a permit counts in the latency: it is the server being slow.
                let _permit = permits.acquire_owned().await;
                let outcome = match client.get(&url).send().await {
                    Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                        Ok(_) => Outcome::Ok,
                        Err(_) => Outcome::Error("body".into()),
                    },
                    Ok(resp) => Outcome::Error(format!("http_{}", resp.status().as_u16())),
                    Err(e) if e.is_timeout() => Outcome::Error("timeout".into()),
                    Err(_) => Outcome::Error("connect".into()),
                };
                let _ = samples.send(Sample {
                    series: 0,
                    intended,
                    latency: intended.elapsed(),
                    outcome,
                });
            }));
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let measured = start.elapsed().as_secs_f64();
    for t in tasks {
        let _ = t.await;
    }
    drop(samples);
    bar.finish_and_clear();
    ticker.abort();
    let stats = collector.await?;
    report.seconds = measured;
    if let Some(s) = stats.first() {
        report.series.push(Series::from_stats(
            "page load",
            "from a request's intended send time to its full response body",
            s,
            measured,
        ));
    }
    report.check = Some(run::verify(&world, &ctx.target, &[]).await?);
    report.judge();
    Ok(report)
}
