//! `idle`: everyone has the page open and nobody bids. Holds W connections and reads the
//! server's resident memory from /metrics before and after, for the cost of one connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::{stream, StreamExt};
use tokio::sync::watch;

use super::{params, Ctx};
use crate::cli::IdleArgs;
use crate::report::{Report, Series};
use crate::stats::{Outcome, Stats};
use crate::ws::{self, Socket};

/// Holds a connection open, answering the server's pings (tungstenite does that while
/// reading), until told to stop or the server drops it.
async fn hold(mut socket: Socket, mut stop: watch::Receiver<bool>, disconnects: Arc<AtomicU64>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            msg = socket.next() => match msg {
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

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

pub async fn run(ctx: &Ctx, args: &IdleArgs) -> Result<Report> {
    let n = args.connections;
    let world = ctx
        .world(
            1,
            if args.auth { n } else { 0 },
            Duration::from_secs(3600),
            0,
        )
        .await?;
    let mut report = ctx.report(
        "idle",
        params(&[
            ("connections", n.to_string()),
            ("hold (s)", args.duration.to_string()),
            ("authenticated", args.auth.to_string()),
        ]),
    );
    // Settle first: the setup's requests leave buffers behind that are not connections.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = world.admin.resident_memory().await?;

    let start = Instant::now();
    let tokens = args.auth.then_some(world.bidders.as_slice());
    let target = &ctx.target;
    let sources = &ctx.sources;
    let results: Vec<(Duration, Result<Socket>)> = stream::iter(0..n)
        .map(|i| async move {
            let token = tokens.and_then(|t| t.get(i)).map(|b| b.token.as_str());
            let t0 = Instant::now();
            let r = ws::connect(target, sources, token).await;
            (t0.elapsed(), r)
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let mut connect = Stats::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let disconnects = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (took, r) in results {
        match r {
            Ok(socket) => {
                connect.record(0, took, &Outcome::Ok);
                tasks.push(tokio::spawn(hold(
                    socket,
                    stop_rx.clone(),
                    disconnects.clone(),
                )));
            }
            Err(e) => {
                let kind = format!("{:#}", e);
                let kind: String = kind.split(':').next().unwrap_or("connect").to_string();
                connect.record(0, took, &Outcome::Error(kind));
            }
        }
    }
    let opened = tasks.len() as u64;
    // Give the server a moment to finish its per-connection allocations.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_open = world.admin.resident_memory().await?;
    let bar = crate::run::progress(args.duration, ctx.common.quiet);
    for s in 0..args.duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        bar.set_position(s + 1);
    }
    bar.finish_and_clear();
    let after_hold = world.admin.resident_memory().await?;
    let held = opened.saturating_sub(disconnects.load(Ordering::Relaxed));
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    report.seconds = start.elapsed().as_secs_f64();
    report.series.push(Series::from_stats(
        "connect",
        "WebSocket connect + handshake time (closed loop, 256 at a time)",
        &connect,
        report.seconds,
    ));
    let per = |after: u64| {
        if opened == 0 {
            "n/a".to_string()
        } else {
            format!(
                "{:.1} KiB",
                (after as f64 - before as f64) / opened as f64 / 1024.0
            )
        }
    };
    report
        .figures
        .insert("connections opened".into(), opened.to_string());
    report
        .figures
        .insert("connections held to the end".into(), held.to_string());
    report.figures.insert(
        "disconnects".into(),
        disconnects.load(Ordering::Relaxed).to_string(),
    );
    report
        .figures
        .insert("server RSS before".into(), mib(before));
    report
        .figures
        .insert("server RSS with all open".into(), mib(after_open));
    report
        .figures
        .insert("server RSS after holding".into(), mib(after_hold));
    report.figures.insert(
        "server memory per connection (at open)".into(),
        per(after_open),
    );
    report.figures.insert(
        "server memory per connection (after holding)".into(),
        per(after_hold),
    );
    report.check = Some(crate::run::verify(&world, &ctx.target, &[]).await?);
    report.judge();
    Ok(report)
}
