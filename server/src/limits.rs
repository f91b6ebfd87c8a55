//! Rate limits and the client address they are keyed by.
//!
//! A check answers [`RateLimited`], a value of its own: the API turns it into a 429 with
//! `Retry-After` (through [`crate::error::AppError`]), a page into a "slow down" page, the
//! live socket into a bid answer. The per-address checks run in the security layers
//! (`app/security.rs`); the per-account ones where the account is known (the session
//! extractor for writes, login and reset for the email tried).

use std::{net::IpAddr, num::NonZeroU32};

use axum::{extract::FromRequestParts, http::request::Parts};
use governor::{
    clock::Clock as _, clock::DefaultClock, DefaultKeyedRateLimiter, Quota, RateLimiter,
};

use crate::{config::RateLimitConfig, domain::UserId};

/// A request refused by a rate limit, and how long to wait before the next one is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimited {
    /// Whole seconds, rounded up, so a client that waits this long is let through.
    pub retry_after_secs: u64,
}

impl RateLimited {
    /// What every edge tells the person, whichever limit it was.
    pub const MESSAGE: &'static str = "Too many requests. Please wait a moment and try again.";
}

impl std::fmt::Display for RateLimited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(RateLimited::MESSAGE)
    }
}

impl std::error::Error for RateLimited {}

/// Whether a request is a bid or a purchase (API or page): the ones whose refusals the
/// managers' live dashboard counts as "slowed down", whichever edge refused them.
pub fn is_bid_or_buy(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    (path.starts_with("/api/items/")
        || path.starts_with("/items/")
        || path.starts_with("/reoffer/items/"))
        && (path.ends_with("/bids") || path.ends_with("/bid") || path.ends_with("/buy"))
}

/// The governor limiters, keyed by address or account. In memory: limits are per process,
/// which is what one server needs.
pub struct RateLimits {
    auth_ip: DefaultKeyedRateLimiter<IpAddr>,
    auth_account: DefaultKeyedRateLimiter<String>,
    write_ip: DefaultKeyedRateLimiter<IpAddr>,
    write_account: DefaultKeyedRateLimiter<i64>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

type Instant = <DefaultClock as governor::clock::Clock>::Instant;

fn verdict(result: Result<(), governor::NotUntil<Instant>>) -> Result<(), RateLimited> {
    result.map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        RateLimited {
            retry_after_secs: wait.as_secs() + 1,
        }
    })
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> RateLimits {
        RateLimits {
            auth_ip: RateLimiter::keyed(per_minute(config.auth_per_ip)),
            auth_account: RateLimiter::keyed(per_minute(config.auth_per_account)),
            write_ip: RateLimiter::keyed(per_minute(config.write_per_ip)),
            write_account: RateLimiter::keyed(per_minute(config.write_per_account)),
        }
    }

    /// Password and email-token attempts per address.
    pub fn check_auth_ip(&self, ip: IpAddr) -> Result<(), RateLimited> {
        verdict(self.auth_ip.check_key(&ip))
    }

    /// Login and reset attempts per email address, whatever address they come from.
    pub fn check_auth_account(&self, email: &str) -> Result<(), RateLimited> {
        verdict(self.auth_account.check_key(&email.to_string()))
    }

    /// Writes (any unsafe method) per address.
    pub fn check_write_ip(&self, ip: IpAddr) -> Result<(), RateLimited> {
        verdict(self.write_ip.check_key(&ip))
    }

    /// Writes per account, so one account cannot hog the server from many addresses.
    pub fn check_write_account(&self, user: UserId) -> Result<(), RateLimited> {
        verdict(self.write_account.check_key(&user.0))
    }

    /// Forgets keys whose buckets are full again, so memory stays bounded. Called by the
    /// scheduler once a minute.
    pub fn forget_idle(&self) {
        self.auth_ip.retain_recent();
        self.auth_account.retain_recent();
        self.write_ip.retain_recent();
        self.write_account.retain_recent();
    }
}

/// The client's IP address, put into the request's extensions by the security layer
/// (from the socket, or from `X-Forwarded-For` when `TRUST_PROXY` is set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Reads what the security layer found; loopback when the layer did not run (a router
/// built without it, in a unit test), never a failure.
impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or(ClientIp(IpAddr::from([127, 0, 0, 1]))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bids_and_buys_are_told_apart_from_other_writes() {
        for path in [
            "/api/items/it_7/bids",
            "/api/items/7/buy",
            "/items/7/bid",
            "/reoffer/items/7/buy",
            "/api/items/7/bids/",
        ] {
            assert!(is_bid_or_buy(path), "{path}");
        }
        for path in [
            "/api/users/me",
            "/api/items/7",
            "/login",
            "/api/auctions/a_1/buy",
            "/items/7",
        ] {
            assert!(!is_bid_or_buy(path), "{path}");
        }
    }

    #[test]
    fn a_spent_budget_says_how_long_to_wait() {
        let limits = RateLimits::new(&RateLimitConfig {
            auth_per_ip: 1,
            auth_per_account: 1,
            write_per_ip: 1,
            write_per_account: 1,
        });
        let ip = IpAddr::from([10, 0, 0, 1]);
        assert_eq!(limits.check_auth_ip(ip), Ok(()));
        let refused = limits.check_auth_ip(ip).unwrap_err();
        // One a minute: the next one is up to a minute away, and never "now".
        assert!((1..=61).contains(&refused.retry_after_secs), "{refused:?}");
        // Other keys and other limits are not spent.
        assert_eq!(limits.check_auth_ip(IpAddr::from([10, 0, 0, 2])), Ok(()));
        assert_eq!(limits.check_write_ip(ip), Ok(()));
    }
}
