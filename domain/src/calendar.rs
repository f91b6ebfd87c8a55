//! The auction calendar and the state it implies. Pure: the caller passes the clock's time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The phases of an auction, in calendar order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuctionState {
    Draft,
    Registration,
    Catalog,
    Bidding,
    Paused,
    Reoffer,
    Closed,
    Settlement,
}

impl AuctionState {
    pub const ALL: [AuctionState; 8] = [
        AuctionState::Draft,
        AuctionState::Registration,
        AuctionState::Catalog,
        AuctionState::Bidding,
        AuctionState::Paused,
        AuctionState::Reoffer,
        AuctionState::Closed,
        AuctionState::Settlement,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuctionState::Draft => "draft",
            AuctionState::Registration => "registration",
            AuctionState::Catalog => "catalog",
            AuctionState::Bidding => "bidding",
            AuctionState::Paused => "paused",
            AuctionState::Reoffer => "reoffer",
            AuctionState::Closed => "closed",
            AuctionState::Settlement => "settlement",
        }
    }

    pub fn parse(text: &str) -> Option<AuctionState> {
        AuctionState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// What the phase is called on pages.
    pub fn label(self) -> &'static str {
        match self {
            AuctionState::Draft => "Being prepared",
            AuctionState::Registration => "Registration is open",
            AuctionState::Catalog => "Catalog preview",
            AuctionState::Bidding => "Bidding is open",
            AuctionState::Paused => "Bidding has closed",
            AuctionState::Reoffer => "Buy-it-now is open",
            AuctionState::Closed => "The auction has closed",
            AuctionState::Settlement => "Settlement",
        }
    }
}

/// The key dates of one auction (spec 4.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Calendar {
    pub registration_open_at: DateTime<Utc>,
    pub catalog_publish_at: DateTime<Utc>,
    pub bidding_open_at: DateTime<Utc>,
    pub bidding_close_at: DateTime<Utc>,
    pub reoffer_open_at: DateTime<Utc>,
    pub reoffer_close_at: DateTime<Utc>,
    pub settlement_open_at: DateTime<Utc>,
}

/// Why a calendar was refused; the message is shown to the manager as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("catalog publishing must not come before registration opens")]
    CatalogBeforeRegistration,
    #[error("bidding must not open before the catalog is published")]
    BiddingBeforeCatalog,
    #[error("bidding must close after it opens")]
    BiddingCloseNotAfterOpen,
    #[error("reoffer must not open before bidding closes")]
    ReofferBeforeBiddingClose,
    #[error("reoffer must close after it opens")]
    ReofferCloseNotAfterOpen,
    #[error("settlement must not open before reoffer closes")]
    SettlementBeforeReofferClose,
}

/// A named date of the calendar, for countdowns ("bidding opens in 3 days").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Milestone {
    pub name: &'static str,
    pub label: &'static str,
    pub at: DateTime<Utc>,
}

impl Calendar {
    /// Checks the order of the dates: the spec's constraints plus the order the phases run in.
    pub fn validate(&self) -> Result<(), CalendarError> {
        if self.catalog_publish_at < self.registration_open_at {
            return Err(CalendarError::CatalogBeforeRegistration);
        }
        if self.bidding_open_at < self.catalog_publish_at {
            return Err(CalendarError::BiddingBeforeCatalog);
        }
        if self.bidding_close_at <= self.bidding_open_at {
            return Err(CalendarError::BiddingCloseNotAfterOpen);
        }
        if self.reoffer_open_at < self.bidding_close_at {
            return Err(CalendarError::ReofferBeforeBiddingClose);
        }
        if self.reoffer_close_at <= self.reoffer_open_at {
            return Err(CalendarError::ReofferCloseNotAfterOpen);
        }
        if self.settlement_open_at < self.reoffer_close_at {
            return Err(CalendarError::SettlementBeforeReofferClose);
        }
        Ok(())
    }

    /// The milestones in calendar order.
    pub fn milestones(&self) -> [Milestone; 7] {
        [
            Milestone {
                name: "registration_open",
                label: "Registration opens",
                at: self.registration_open_at,
            },
            Milestone {
                name: "catalog_publish",
                label: "The catalog is published",
                at: self.catalog_publish_at,
            },
            Milestone {
                name: "bidding_open",
                label: "Bidding opens",
                at: self.bidding_open_at,
            },
            Milestone {
                name: "bidding_close",
                label: "Bidding closes",
                at: self.bidding_close_at,
            },
            Milestone {
                name: "reoffer_open",
                label: "Buy-it-now opens",
                at: self.reoffer_open_at,
            },
            Milestone {
                name: "reoffer_close",
                label: "Buy-it-now closes",
                at: self.reoffer_close_at,
            },
            Milestone {
                name: "settlement_open",
                label: "Settlement opens",
                at: self.settlement_open_at,
            },
        ]
    }

    /// The state the calendar implies at `now`. Each phase starts at its date, inclusive.
    pub fn state_at(&self, now: DateTime<Utc>) -> AuctionState {
        if now >= self.settlement_open_at {
            AuctionState::Settlement
        } else if now >= self.reoffer_close_at {
            AuctionState::Closed
        } else if now >= self.reoffer_open_at {
            AuctionState::Reoffer
        } else if now >= self.bidding_close_at {
            AuctionState::Paused
        } else if now >= self.bidding_open_at {
            AuctionState::Bidding
        } else if now >= self.catalog_publish_at {
            AuctionState::Catalog
        } else if now >= self.registration_open_at {
            AuctionState::Registration
        } else {
            AuctionState::Draft
        }
    }

    /// The next date strictly after `now`, if any: what the home page counts down to and
    /// when the scheduler must look again.
    pub fn next_milestone(&self, now: DateTime<Utc>) -> Option<Milestone> {
        self.milestones().into_iter().find(|m| m.at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn cal() -> Calendar {
        let t0 = Utc.with_ymd_and_hms(2026, 4, 1, 12, 0, 0).unwrap();
        Calendar {
            registration_open_at: t0,
            catalog_publish_at: t0 + Duration::days(7),
            bidding_open_at: t0 + Duration::days(14),
            bidding_close_at: t0 + Duration::days(16),
            reoffer_open_at: t0 + Duration::days(17),
            reoffer_close_at: t0 + Duration::days(19),
            settlement_open_at: t0 + Duration::days(20),
        }
    }

    #[test]
    fn every_phase_starts_at_its_date() {
        let c = cal();
        let second = Duration::seconds(1);
        assert_eq!(
            c.state_at(c.registration_open_at - second),
            AuctionState::Draft
        );
        assert_eq!(
            c.state_at(c.registration_open_at),
            AuctionState::Registration
        );
        assert_eq!(c.state_at(c.catalog_publish_at), AuctionState::Catalog);
        assert_eq!(
            c.state_at(c.bidding_open_at - second),
            AuctionState::Catalog
        );
        assert_eq!(c.state_at(c.bidding_open_at), AuctionState::Bidding);
        assert_eq!(
            c.state_at(c.bidding_close_at - second),
            AuctionState::Bidding
        );
        assert_eq!(c.state_at(c.bidding_close_at), AuctionState::Paused);
        assert_eq!(c.state_at(c.reoffer_open_at), AuctionState::Reoffer);
        assert_eq!(c.state_at(c.reoffer_close_at), AuctionState::Closed);
        assert_eq!(c.state_at(c.settlement_open_at), AuctionState::Settlement);
    }

    #[test]
    fn next_milestone_counts_down() {
        let c = cal();
        assert_eq!(
            c.next_milestone(c.bidding_open_at).unwrap().name,
            "bidding_close"
        );
        assert_eq!(c.next_milestone(c.settlement_open_at), None);
    }

    #[test]
    fn validation_names_the_broken_rule() {
        let mut c = cal();
        c.bidding_close_at = c.bidding_open_at;
        assert_eq!(c.validate(), Err(CalendarError::BiddingCloseNotAfterOpen));
        let mut c = cal();
        c.reoffer_open_at = c.bidding_close_at - Duration::minutes(1);
        assert_eq!(c.validate(), Err(CalendarError::ReofferBeforeBiddingClose));
        let mut c = cal();
        c.reoffer_close_at = c.reoffer_open_at;
        assert_eq!(c.validate(), Err(CalendarError::ReofferCloseNotAfterOpen));
        assert_eq!(cal().validate(), Ok(()));
    }

    proptest! {
        /// The state never goes backwards as time passes.
        #[test]
        fn state_is_monotonic(a in 0i64..(25 * 86_400), b in 0i64..(25 * 86_400)) {
            let c = cal();
            let base = c.registration_open_at - Duration::days(2);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(c.state_at(base + Duration::seconds(lo)) <= c.state_at(base + Duration::seconds(hi)));
        }
    }
}
