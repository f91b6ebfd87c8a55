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
use auuction_domain::{Cents, ItemId};
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::{params, Ctx};
use crate::bidder::{self, Job};
use crate::cli::StormArgs;
use crate::report::{Report, Series};
use crate::run::{self, Live, Sample, Samples};
use crate::setup::INCREMENT;
use crate::stats::Outcome;
use crate::zipf::Zipf;

/// Jobs queued per bidder connection before the dispatcher counts a backlog error: at a
/// sane rate a connection holds a handful; thousands mean the generator cannot keep up.
pub(super) const JOB_QUEUE: usize = 1024;
/// The report's series: the headline first.
const BID_ACK: usize = 0;
const SEND_LAG: usize = 1;
/// Schedules with bids at least this far apart are paced by a thread (see `run`): below
/// about 5,000 bids/s.
const PACE_ON_A_THREAD_FROM: Duration = Duration::from_micros(200);

/// The open-loop schedule: bid `i` is due at `start + i * interval`, on an item drawn from
/// the Zipf popularity, from a bidder connection drawn at random.
/// (`close` sends its storm with it too, uniformly over its items.)
pub(super) struct Schedule {
    pub(super) start: Instant,
    pub(super) interval: Duration,
    pub(super) total: u64,
    pub(super) next: u64,
    pub(super) rng: StdRng,
    pub(super) zipf: Zipf,
    pub(super) next_amount: Vec<AtomicI64>,
    pub(super) items: Vec<ItemId>,
    pub(super) proxy_share: f64,
    pub(super) senders: Vec<tokio::sync::mpsc::Sender<Job>>,
    pub(super) samples: Samples,
}

impl Schedule {
    /// Hands every bid due by `now` to its connection. Returns when the next one is due,
    /// or None when the schedule is done.
    pub(super) fn send_due(&mut self, now: Instant) -> Option<Instant> {
        // Whole nanoseconds for both "is it due" and "when is the next", so the two agree:
        // a thread told to wake at a time must find that bid due when it wakes.
        let step_ns = self.interval.as_nanos().max(1);
        let at = |n: u64| self.start + Duration::from_nanos((step_ns * n as u128) as u64);
        let due = if now < self.start {
            0
        } else {
            ((now - self.start).as_nanos() / step_ns) as u64 + 1
        };
        while self.next < due.min(self.total) {
            let intended = at(self.next);
            let rank = self.zipf.sample(&mut self.rng);
            let step = INCREMENT.0 * 2;
            let amount = self.next_amount[rank].fetch_add(step, Ordering::Relaxed);
            let max_proxy =
                (self.rng.gen::<f64>() < self.proxy_share).then(|| Cents(amount + step * 10));
            if let Some(max) = max_proxy {
                // The next bids must clear the proxy's maximum to be worth sending at all.
                self.next_amount[rank].fetch_max(max.0 + step, Ordering::Relaxed);
            }
            let job = Job {
                intended,
                item: self.items[rank],
                amount: Cents(amount),
                max_proxy,
            };
            let who = self.rng.gen_range(0..self.senders.len());
            if self.senders[who].try_send(job).is_err() {
                let _ = self.samples.send(Sample {
                    series: BID_ACK,
                    intended,
                    latency: Duration::ZERO,
                    outcome: Outcome::Error("generator_backlog".into()),
                });
            }
            self.next += 1;
        }
        (self.next < self.total).then(|| at(self.next))
    }
}

/// Hands out the schedule's bids, each when due, and returns when all are handed out; the
/// schedule (and its senders) is dropped then, so the bidder tasks learn that it is over.
pub(super) async fn dispatch(mut schedule: Schedule) -> Result<()> {
    if schedule.interval >= PACE_ON_A_THREAD_FROM {
        // A thread of its own sleeps until each bid is due: the runtime's timer has a 1 ms
        // grain, and at a few thousand bids/s a bid due between two ticks would leave up to
        // a millisecond late, counted in its ack latency. At higher rates the thread's
        // wake-ups of the bidder tasks (from outside the runtime) cost more than the grain.
        let paced = std::thread::spawn(move || {
            while let Some(due) = schedule.send_due(Instant::now()) {
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        });
        tokio::task::spawn_blocking(move || paced.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the storm's dispatcher thread panicked"))?;
    } else {
        tokio::time::sleep_until(schedule.start.into()).await;
        while schedule.send_due(Instant::now()).is_some() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok(())
}

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
            ("flooders", args.flooders.to_string()),
            ("flood frames/s", args.flood_rate.to_string()),
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
    let (samples, collector) = run::collector(2, start + warmup, live.clone());
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
            lag_series: Some(SEND_LAG),
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
    let (flood, flooders) = super::flood::start(
        ctx,
        &world,
        args.flooders,
        args.flood_rate,
        start + duration,
    );
    let schedule = Schedule {
        start,
        interval,
        total,
        next: 0,
        rng: StdRng::from_entropy(),
        zipf,
        next_amount,
        items: world.items.iter().map(|i| i.id).collect(),
        proxy_share: args.proxy_share,
        senders,
        samples: samples.clone(),
    };
    dispatch(schedule).await?;
    // The scheduled span after the warm-up; the sends are over, the answers may still come.
    let measured = (duration - warmup).as_secs_f64();
    let mut sent = Vec::new();
    let mut disconnects = 0u64;
    for t in tasks {
        match t.await {
            Ok(s) => sent.extend(s),
            Err(_) => disconnects += 1,
        }
    }
    for f in flooders {
        let _ = f.await;
    }
    drop(samples);
    bar.finish_and_clear();
    ticker.abort();
    let stats = collector.await?;
    report.seconds = measured;
    if let Some(s) = stats.get(BID_ACK) {
        report.series.push(Series::from_stats(
            "bid ack",
            "from a bid's intended send time to its bid_result (durable: committed before the ack)",
            s,
            measured,
        ));
    }
    if let Some(s) = stats.get(SEND_LAG) {
        report.series.push(Series::from_stats(
            "send lag",
            "from a bid's intended send time to its write on the socket: the generator's own \
             lateness, included in the ack latency (if it is large, the generator is the limit)",
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
    if args.flooders > 0 {
        use std::sync::atomic::Ordering::Relaxed;
        report.figures.insert(
            "flood frames sent".into(),
            flood.frames_sent.load(Relaxed).to_string(),
        );
        report.figures.insert(
            "flood slow_down answers".into(),
            flood.slow_downs.load(Relaxed).to_string(),
        );
        report.figures.insert(
            "flood reconnects".into(),
            flood.reconnects.load(Relaxed).to_string(),
        );
    }
    let check = run::verify(&world, &ctx.target, &sent).await?;
    report.figures.insert(
        "soft-close extensions (replayed)".into(),
        check.extensions.to_string(),
    );
    report.check = Some(check);
    report.judge();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(rate: f64, total: u64) -> (Schedule, tokio::sync::mpsc::Receiver<Job>) {
        let (tx, rx) = tokio::sync::mpsc::channel(total as usize + 1);
        let (samples, _) = tokio::sync::mpsc::unbounded_channel();
        let schedule = Schedule {
            start: Instant::now(),
            interval: Duration::from_secs_f64(1.0 / rate),
            total,
            next: 0,
            rng: StdRng::seed_from_u64(7),
            zipf: Zipf::new(3, 1.0),
            next_amount: (0..3).map(|_| AtomicI64::new(5_00)).collect(),
            items: vec![ItemId(1), ItemId(2), ItemId(3)],
            proxy_share: 0.1,
            senders: vec![tx],
            samples,
        };
        (schedule, rx)
    }

    /// Woken when it said the next bid is due, the schedule always finds that bid due (no
    /// spinning on a wake-up that comes a fraction of a nanosecond early), sends every bid
    /// once, each at its intended time, and ends.
    #[test]
    fn every_wake_up_sends_and_every_bid_goes_once() {
        // 3,000/s: an interval that is not a whole number of nanoseconds.
        let (mut schedule, mut rx) = schedule(3000.0, 900);
        let mut now = schedule.start;
        let mut wake_ups = 1;
        while let Some(next) = schedule.send_due(now) {
            assert!(next > now, "the next bid is in the future");
            now = next;
            wake_ups += 1;
        }
        assert_eq!(wake_ups, 900, "one wake-up per bid, none wasted");
        let mut intended = Vec::new();
        while let Ok(job) = rx.try_recv() {
            intended.push(job.intended);
        }
        assert_eq!(intended.len(), 900);
        assert!(intended.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(intended[0], schedule.start);
    }

    #[test]
    fn a_late_wake_up_sends_everything_due_at_once() {
        let (mut schedule, mut rx) = schedule(1000.0, 100);
        let later = schedule.start + Duration::from_micros(9_500);
        let next = schedule.send_due(later).unwrap();
        assert_eq!(next, schedule.start + Duration::from_millis(10));
        let mut sent = 0;
        while rx.try_recv().is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 10, "bids 0 to 9 were due by 9.5 ms");
    }
}
