//! Soft close (anti-sniping): a bid in the last minutes of an item gives everyone else time to
//! answer it.
//!
//! Without it, the winner of a popular item is whoever's bid lands in the final second, which
//! rewards bots and fast connections over generosity. With it, a late bid pushes the close to
//! `now + window`, so the outbid congregant always gets a full window to respond. The hard
//! deadline bounds this: the auction calendar (pause, reoffer, settlement) must start on time,
//! so no bidding war can run past it.

use chrono::{DateTime, Duration, Utc};

/// When an item closes after a bid accepted at `now`.
///
/// Guarantees, whatever the inputs:
/// - never earlier than `closes_at` (the close never moves back, so a bidder told "closes at
///   18:02" is never surprised by an earlier end);
/// - never later than `max(closes_at, hard_deadline)` (extensions stop at the deadline, and a
///   close already past a mis-set deadline is left alone rather than pulled back);
/// - moves only when the bid lands in the last `window` before `closes_at`, and then to
///   `now + window` capped at the deadline.
///
/// A zero or negative `window` disables soft close. The caller refuses bids at or after
/// `closes_at` before asking; this function does not re-check, so it stays a pure computation.
pub fn closes_after_bid(
    closes_at: DateTime<Utc>,
    hard_deadline: DateTime<Utc>,
    window: Duration,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    if window <= Duration::zero() {
        return closes_at;
    }
    // `now + window` only overflows for dates near the end of chrono's range; the deadline is
    // then the only sensible answer, and it is capped below anyway.
    let wanted = now.checked_add_signed(window).unwrap_or(hard_deadline);
    // Outside the last window `wanted <= closes_at`, so the outer `max` keeps the close: the
    // "in the last W" test and the "never moves back" rule are the same comparison.
    closes_at.max(wanted.min(hard_deadline))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(minute: i64) -> DateTime<Utc> {
        // Minutes after 2025-05-05 17:00:00Z, the spec's example bidding close day.
        Utc.with_ymd_and_hms(2025, 5, 5, 17, 0, 0)
            .single()
            .expect("valid date")
            + Duration::minutes(minute)
    }

    const CLOSE: i64 = 60; // 18:00
    const DEADLINE: i64 = 90; // 18:30

    fn after(now: i64) -> DateTime<Utc> {
        closes_after_bid(at(CLOSE), at(DEADLINE), Duration::minutes(2), at(now))
    }

    #[test]
    fn early_bid_leaves_close_alone() {
        assert_eq!(after(0), at(CLOSE));
        assert_eq!(after(CLOSE - 3), at(CLOSE));
    }

    #[test]
    fn bid_exactly_one_window_before_close_leaves_it_alone() {
        assert_eq!(after(CLOSE - 2), at(CLOSE));
    }

    #[test]
    fn bid_in_last_window_extends_to_now_plus_window() {
        let late = at(CLOSE) - Duration::seconds(30);
        let got = closes_after_bid(at(CLOSE), at(DEADLINE), Duration::minutes(2), late);
        assert_eq!(got, late + Duration::minutes(2));
    }

    #[test]
    fn extension_stops_at_hard_deadline() {
        let got = closes_after_bid(
            at(DEADLINE - 1),
            at(DEADLINE),
            Duration::minutes(2),
            at(DEADLINE - 1) - Duration::seconds(1),
        );
        assert_eq!(got, at(DEADLINE));
    }

    #[test]
    fn close_past_a_misset_deadline_is_not_pulled_back() {
        let got = closes_after_bid(
            at(CLOSE),
            at(CLOSE - 10),
            Duration::minutes(2),
            at(CLOSE - 1),
        );
        assert_eq!(got, at(CLOSE));
    }

    #[test]
    fn zero_window_disables_soft_close() {
        let got = closes_after_bid(at(CLOSE), at(DEADLINE), Duration::zero(), at(CLOSE - 1));
        assert_eq!(got, at(CLOSE));
    }

    #[test]
    fn overflowing_now_plus_window_lands_on_deadline() {
        let far = DateTime::<Utc>::MAX_UTC - Duration::seconds(1);
        let got = closes_after_bid(far, DateTime::<Utc>::MAX_UTC, Duration::days(1), far);
        assert_eq!(got, DateTime::<Utc>::MAX_UTC);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn never_back_never_past_deadline(
            close in 0i64..10_000,
            deadline in 0i64..10_000,
            window in -100i64..2_000,
            now in 0i64..10_000,
        ) {
            let secs = |s: i64| at(0) + Duration::seconds(s);
            let got = closes_after_bid(secs(close), secs(deadline), Duration::seconds(window), secs(now));
            prop_assert!(got >= secs(close));
            prop_assert!(got <= secs(close).max(secs(deadline)));
            if window > 0 && now + window > close && deadline > close {
                prop_assert_eq!(got, secs((now + window).min(deadline)));
            } else {
                prop_assert_eq!(got, secs(close));
            }
        }
    }
}
