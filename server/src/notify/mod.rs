//! The notification outbox worker: sends what the rest of the app queued in
//! `notifications` (outbid, win, reoffer announcements...), at least once, never twice at
//! the same time.
//!
//! Each pass a worker claims a batch of due rows (`store::notifications::claim`: `FOR
//! UPDATE SKIP LOCKED`, a lease, the outbid quiet window), composes each mail
//! ([`compose`]), sends them a few at a time through the mailer (pooled SMTP, or `.eml`
//! files), and records each outcome: `sent`; `scheduled` again later after a transient
//! failure (exponential backoff with jitter); `failed` with the reason after a permanent
//! one or the last attempt; `skipped` with the reason when there was nothing to say (the
//! bidder took the lead back). A worker that dies mid-send leaves its rows claimed; they
//! are taken up again once their lease has passed, and carry the same Message-ID.

pub mod compose;

use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use rand::Rng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    config::NotifyConfig,
    metrics::NotificationLabels,
    state::AppState,
    store::notifications::{self, Claimed},
};

use compose::{compose, compose_text, Facts, Hold};

/// How often one worker refreshes the queue gauges of `/metrics`.
const QUEUE_REPORT_EVERY: Duration = Duration::from_secs(5);

/// Starts the configured number of workers (`NOTIFY_WORKERS`); each stops on shutdown.
pub fn spawn(state: AppState) -> Vec<JoinHandle<()>> {
    (0..state.config.notify.workers)
        .map(|n| {
            let stop = state.shutdown.clone();
            tokio::spawn(run_worker(state.clone(), n == 0, stop))
        })
        .collect()
}

/// One worker: passes back to back while there is work, a short sleep when there is none,
/// until `stop`. `reports_queue`: this one keeps the queue gauges current.
pub async fn run_worker(state: AppState, reports_queue: bool, stop: CancellationToken) {
    let mut reported: Option<Instant> = None;
    loop {
        if stop.is_cancelled() {
            return;
        }
        let handled = match run_once(&state).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "notification outbox pass failed; retrying");
                0
            }
        };
        if reports_queue && reported.is_none_or(|at| at.elapsed() >= QUEUE_REPORT_EVERY) {
            reported = Some(Instant::now());
            report_queue(&state).await;
        }
        if handled == 0 {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(state.config.notify.poll) => {}
            }
        }
    }
}

/// How one send ended.
#[derive(Debug)]
enum Outcome {
    Sent,
    Skipped(String),
    Failed(String),
    Retry(String),
}

/// One pass: claim, send, record. Returns how many rows it handled (0: nothing was due).
pub async fn run_once(state: &AppState) -> anyhow::Result<usize> {
    let cfg = &state.config.notify;
    let rows = notifications::claim(
        &state.db,
        cfg.batch,
        cfg.lease,
        cfg.outbid_quiet,
        cfg.max_attempts,
        &state.mailer.from_domain(),
    )
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let facts = load_facts(state, &rows).await?;
    let outcomes: Vec<(Claimed, Outcome)> = stream::iter(rows)
        .map(|row| {
            let facts = &facts;
            async move {
                let outcome = attempt(state, facts, &row).await;
                (row, outcome)
            }
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .collect()
        .await;
    let handled = outcomes.len();
    record(state, outcomes).await?;
    Ok(handled)
}

async fn load_facts(state: &AppState, rows: &[Claimed]) -> sqlx::Result<Facts> {
    let of = |kind: &str| -> Vec<i64> {
        let mut ids: Vec<i64> = rows
            .iter()
            .filter(|r| r.related_entity_type.as_deref() == Some(kind))
            .filter_map(|r| r.related_entity_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    Ok(Facts {
        items: notifications::item_facts(&state.db, &of("item"))
            .await?
            .into_iter()
            .map(|f| (f.id, f))
            .collect(),
        auctions: notifications::auction_names(&state.db, &of("auction"))
            .await?
            .into_iter()
            .collect(),
    })
}

async fn attempt(state: &AppState, facts: &Facts, row: &Claimed) -> Outcome {
    let sent = if row.channel == "sms" {
        let Some(provider) = &state.sms else {
            return Outcome::Skipped("no SMS provider is set up".into());
        };
        let message = match compose_text(&state.config, facts, row) {
            Ok(message) => message,
            Err(Hold::Skip(why)) => return Outcome::Skipped(why),
            Err(Hold::Fail(why)) => return Outcome::Failed(why),
        };
        provider.send(&message.to, &message.text).await
    } else {
        let email = match compose(&state.templates, &state.config, facts, row) {
            Ok(email) => email,
            Err(Hold::Skip(why)) => return Outcome::Skipped(why),
            Err(Hold::Fail(why)) => return Outcome::Failed(why),
        };
        state.mailer.deliver(&email).await
    };
    match sent {
        Ok(()) => Outcome::Sent,
        Err(e) if e.permanent => Outcome::Failed(e.message),
        Err(e) if row.attempts >= state.config.notify.max_attempts => Outcome::Failed(format!(
            "gave up after {} attempts: {}",
            row.attempts, e.message
        )),
        Err(e) => Outcome::Retry(e.message),
    }
}

async fn record(state: &AppState, outcomes: Vec<(Claimed, Outcome)>) -> sqlx::Result<()> {
    let mut sent = Vec::new();
    for (row, outcome) in &outcomes {
        let label = |outcome: &'static str| NotificationLabels {
            kind: row.kind.clone(),
            channel: row.channel.clone(),
            outcome,
        };
        let counter = |outcome| {
            state
                .metrics
                .notifications
                .outcomes
                .get_or_create(&label(outcome))
                .inc();
        };
        match outcome {
            Outcome::Sent => {
                sent.push((row.id, row.attempts));
                counter("sent");
                state.metrics.emails_sent.inc();
            }
            Outcome::Skipped(why) => {
                notifications::finish(&state.db, row.id, row.attempts, "skipped", why).await?;
                counter("skipped");
            }
            Outcome::Failed(why) => {
                tracing::warn!(notification = row.id, kind = %row.kind, reason = %why, "notification failed");
                notifications::finish(&state.db, row.id, row.attempts, "failed", why).await?;
                counter("failed");
            }
            Outcome::Retry(why) => {
                let delay = backoff(&state.config.notify, row.attempts);
                tracing::info!(notification = row.id, attempt = row.attempts, retry_in = ?delay, reason = %why, "notification will be retried");
                notifications::retry_at(&state.db, row.id, row.attempts, delay, why).await?;
                counter("retried");
            }
        }
    }
    notifications::mark_sent(&state.db, &sent).await?;
    Ok(())
}

/// The wait before the attempt after `attempt` (1 for the first): the base doubled per
/// attempt, capped, then "equal jitter" (half of it fixed, half random) so rows that
/// failed together (a mail server down for a minute) do not all come back together.
pub fn backoff(cfg: &NotifyConfig, attempt: i32) -> Duration {
    let doublings = attempt.saturating_sub(1).clamp(0, 20) as u32;
    let full = cfg
        .retry_base
        .saturating_mul(1u32 << doublings)
        .min(cfg.retry_max);
    let half = full / 2;
    half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

async fn report_queue(state: &AppState) {
    match notifications::queue_depth(&state.db).await {
        Ok((depth, oldest)) => {
            let metrics = &state.metrics.notifications;
            metrics.queue_depth.set(depth);
            metrics.oldest_due_seconds.set(oldest.max(0.0));
        }
        Err(e) => tracing::warn!(error = %e, "reading the notification queue's depth failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let cfg = NotifyConfig {
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(60),
            ..NotifyConfig::default()
        };
        for _ in 0..100 {
            let first = backoff(&cfg, 1);
            assert!(first >= Duration::from_secs(5) && first <= Duration::from_secs(10));
            let third = backoff(&cfg, 3);
            assert!(third >= Duration::from_secs(20) && third <= Duration::from_secs(40));
            let late = backoff(&cfg, 30);
            assert!(late >= Duration::from_secs(30) && late <= Duration::from_secs(60));
        }
    }
}
