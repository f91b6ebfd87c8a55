//! Latency and outcome statistics: one [`Stats`] per measured stream, fed by one collector task
//! (so recording needs no lock), summarised into plain numbers for the report.
//!
//! Latencies are recorded in microseconds from the *intended* send time: when the generator
//! or the server falls behind, the wait counts against the latency instead of silently slowing
//! the load down (no coordinated omission).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histograms hold (one minute); anything slower is clamped to it and
/// still counted, so a stall shows up as a max of 60 s rather than vanishing.
const MAX_MICROS: u64 = 60_000_000;

/// What became of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with success (a 201 bid, a 200 page, a delivered price frame).
    Ok,
    /// Answered with a refusal the rules allow (bid_too_low, max_not_raised...): a correct
    /// answer under contention, counted apart from errors.
    Refused(String),
    /// Anything else: HTTP 5xx/429, timeouts, broken sockets. The string is the kind.
    Error(String),
}

/// One second of the run: how much was answered and how fast.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SecondBucket {
    /// Seconds since the start of the measured phase.
    pub second: u64,
    pub ok: u64,
    pub refused: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Percentiles of one latency distribution, in milliseconds.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Accumulates latencies and outcomes. Not shared: one task owns it.
pub struct Stats {
    all: Histogram<u64>,
    per_second: BTreeMap<u64, (Histogram<u64>, u64, u64, u64)>,
    ok: u64,
    refused: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

fn histogram(sigfig: u8) -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts (1 ≤ low, high ≥ 2·low, sigfig ≤ 5);
    // `new_with_bounds` only fails on bad bounds, so this cannot fail at run time.
    Histogram::new_with_bounds(1, MAX_MICROS, sigfig).expect("constant histogram bounds")
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            all: histogram(3),
            per_second: BTreeMap::new(),
            ok: 0,
            refused: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }

    /// Records one answer that came `latency` after its intended send time, in the second
    /// `second` of the run (by intended time, so a backlog shows where it was caused).
    pub fn record(&mut self, second: u64, latency: Duration, outcome: &Outcome) {
        let micros = (latency.as_micros() as u64).clamp(1, MAX_MICROS);
        // Two significant figures are plenty per second, and keep a long run's memory small.
        let bucket = self
            .per_second
            .entry(second)
            .or_insert_with(|| (histogram(2), 0, 0, 0));
        match outcome {
            Outcome::Ok => {
                self.ok += 1;
                bucket.1 += 1;
            }
            Outcome::Refused(kind) => {
                *self.refused.entry(kind.clone()).or_default() += 1;
                bucket.2 += 1;
            }
            Outcome::Error(kind) => {
                *self.errors.entry(kind.clone()).or_default() += 1;
                bucket.3 += 1;
                // An error without an answer (timeout, broken socket) has no latency to speak
                // of; counting it would mix failures into the speed figures.
                return;
            }
        }
        self.all.saturating_record(micros);
        bucket.0.saturating_record(micros);
    }

    /// Counts an error that belongs to no request (a disconnect, a failed connect).
    pub fn error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
    }

    pub fn ok(&self) -> u64 {
        self.ok
    }

    pub fn refused(&self) -> &BTreeMap<String, u64> {
        &self.refused
    }

    pub fn errors(&self) -> &BTreeMap<String, u64> {
        &self.errors
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Percentiles over every answered request (accepted and refused).
    pub fn percentiles(&self) -> Percentiles {
        percentiles(&self.all)
    }

    /// One row per second of the run, gaps filled with zeros so charts keep their time axis.
    pub fn timeline(&self) -> Vec<SecondBucket> {
        let Some(last) = self.per_second.keys().next_back().copied() else {
            return Vec::new();
        };
        (0..=last)
            .map(|second| match self.per_second.get(&second) {
                None => SecondBucket {
                    second,
                    ..SecondBucket::default()
                },
                Some((h, ok, refused, errors)) => SecondBucket {
                    second,
                    ok: *ok,
                    refused: *refused,
                    errors: *errors,
                    p50_ms: if h.is_empty() {
                        0.0
                    } else {
                        ms(h.value_at_quantile(0.5))
                    },
                    p99_ms: if h.is_empty() {
                        0.0
                    } else {
                        ms(h.value_at_quantile(0.99))
                    },
                    max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
                },
            })
            .collect()
    }

    /// The distribution's curve for the report: latency at quantiles from 0 to 99.999 %.
    pub fn quantile_curve(&self) -> Vec<(f64, f64)> {
        if self.all.is_empty() {
            return Vec::new();
        }
        [
            0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 0.99999, 1.0,
        ]
        .iter()
        .map(|q| (*q, ms(self.all.value_at_quantile(*q))))
        .collect()
    }
}

/// Percentiles of a histogram in milliseconds (all zero when it is empty).
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        min_ms: ms(h.min()),
        mean_ms: h.mean() / 1000.0,
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut s = Stats::new();
        // 1..=1000 ms, one each: p50 ≈ 500 ms, p99 ≈ 990 ms, max 1000 ms.
        for i in 1..=1000u64 {
            s.record(0, Duration::from_millis(i), &Outcome::Ok);
        }
        let p = s.percentiles();
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() < 1.0, "{p:?}");
        assert!((p.max_ms - 1000.0).abs() < 1.0, "{p:?}");
        assert!(p.p999_ms >= p.p99_ms && p.p99_ms >= p.p90_ms && p.p90_ms >= p.p50_ms);
    }

    #[test]
    fn outcomes_are_counted_by_kind_and_errors_stay_out_of_latency() {
        let mut s = Stats::new();
        s.record(0, Duration::from_millis(2), &Outcome::Ok);
        s.record(
            1,
            Duration::from_millis(4),
            &Outcome::Refused("bid_too_low".into()),
        );
        s.record(
            1,
            Duration::from_secs(30),
            &Outcome::Error("timeout".into()),
        );
        s.error("disconnect");
        assert_eq!(s.ok(), 1);
        assert_eq!(s.refused().get("bid_too_low"), Some(&1));
        assert_eq!(s.error_count(), 2);
        assert_eq!(s.percentiles().count, 2);
        assert!(s.percentiles().max_ms < 5.0);
    }

    #[test]
    fn timeline_fills_gaps_and_splits_seconds() {
        let mut s = Stats::new();
        s.record(0, Duration::from_millis(1), &Outcome::Ok);
        s.record(3, Duration::from_millis(8), &Outcome::Ok);
        s.record(3, Duration::from_millis(8), &Outcome::Error("x".into()));
        let t = s.timeline();
        assert_eq!(t.len(), 4);
        assert_eq!((t[0].ok, t[1].ok, t[2].ok, t[3].ok), (1, 0, 0, 1));
        assert_eq!(t[3].errors, 1);
        assert!((t[3].max_ms - 8.0).abs() < 0.1);
        assert_eq!(t[1].p99_ms, 0.0);
    }

    #[test]
    fn slow_answers_are_clamped_not_lost() {
        let mut s = Stats::new();
        s.record(0, Duration::from_secs(3600), &Outcome::Ok);
        let p = s.percentiles();
        assert_eq!(p.count, 1);
        assert!(p.max_ms >= 59_000.0);
    }
}
