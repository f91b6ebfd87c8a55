//! The admin's calendar form as typed, turned into the API's request.
//!
//! Field names are the API's (`biddingOpenAt`, `softCloseSeconds`...), so the field an error
//! names is the form field to mark. Times are `datetime-local` values read in the auction's
//! time zone. Only typing problems are caught here; the calendar's order is the domain's
//! rule (`Calendar::validate`), reached through `services::auctions`, and only put into
//! plain words here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{calendar::CalendarError, Calendar},
    local_time::LocalTime,
    pages::donor_form::FieldErrors,
    services::auctions::{default_soft_close, AuctionRequest},
    store::auctions::AuctionRow,
};

/// The calendar's dates in order: (field, label).
pub const DATE_FIELDS: [(&str, &str); 7] = [
    ("registrationOpenAt", "Registration opens"),
    ("catalogPublishAt", "The catalog is published"),
    ("biddingOpenAt", "Bidding opens"),
    ("biddingCloseAt", "Bidding closes"),
    ("reofferOpenAt", "Buy-it-now (the reoffer) opens"),
    ("reofferCloseAt", "Buy-it-now (the reoffer) closes"),
    ("settlementOpenAt", "Settlement opens"),
];

/// Every field as text: echoed back as typed when something needs fixing.
#[derive(Deserialize, Serialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct AuctionForm {
    pub year: String,
    pub name: String,
    pub registration_open_at: String,
    pub catalog_publish_at: String,
    pub bidding_open_at: String,
    pub bidding_close_at: String,
    pub reoffer_open_at: String,
    pub reoffer_close_at: String,
    pub settlement_open_at: String,
    pub soft_close_seconds: String,
    pub hard_close_at: String,
}

/// A required `datetime-local` value, read in the auction's zone.
fn datetime(
    zone: LocalTime,
    field: &'static str,
    text: &str,
    errors: &mut FieldErrors,
) -> Option<DateTime<Utc>> {
    if text.trim().is_empty() {
        errors.insert(field, "Please enter a date and time.".into());
        return None;
    }
    zone.parse_input(text)
        .map_err(|e| errors.insert(field, e.to_string()))
        .ok()
}

impl AuctionForm {
    /// The API's request, or what to fix (every typing problem at once).
    pub fn request(&self, zone: LocalTime, errors: &mut FieldErrors) -> Option<AuctionRequest> {
        let year = self.year.trim().parse::<i32>().ok();
        if year.is_none() {
            errors.insert("year", "Please enter the year, like 2026.".into());
        }
        let [a, b, c, d, e, f, g] = [
            ("registrationOpenAt", &self.registration_open_at),
            ("catalogPublishAt", &self.catalog_publish_at),
            ("biddingOpenAt", &self.bidding_open_at),
            ("biddingCloseAt", &self.bidding_close_at),
            ("reofferOpenAt", &self.reoffer_open_at),
            ("reofferCloseAt", &self.reoffer_close_at),
            ("settlementOpenAt", &self.settlement_open_at),
        ]
        .map(|(field, text)| datetime(zone, field, text, errors));
        let soft_close_seconds = match self.soft_close_seconds.trim() {
            "" => Some(default_soft_close()),
            text => text.parse::<i32>().ok().or_else(|| {
                errors.insert(
                    "softCloseSeconds",
                    "Please enter a whole number of seconds, like 120.".into(),
                );
                None
            }),
        };
        let hard_close_at = match self.hard_close_at.trim() {
            "" => Some(None),
            text => datetime(zone, "hardCloseAt", text, errors).map(Some),
        };
        Some(AuctionRequest {
            year: year?,
            name: self.name.clone(),
            calendar: Calendar {
                registration_open_at: a?,
                catalog_publish_at: b?,
                bidding_open_at: c?,
                bidding_close_at: d?,
                reoffer_open_at: e?,
                reoffer_close_at: f?,
                settlement_open_at: g?,
            },
            soft_close_seconds: soft_close_seconds?,
            hard_close_at: hard_close_at?,
        })
    }

    /// The form filled from a stored auction, its times in the auction's zone.
    pub fn from_row(row: &AuctionRow, zone: LocalTime) -> AuctionForm {
        let t = |at: DateTime<Utc>| zone.input_value(at);
        AuctionForm {
            year: row.year.to_string(),
            name: row.name.clone(),
            registration_open_at: t(row.registration_open_at),
            catalog_publish_at: t(row.catalog_publish_at),
            bidding_open_at: t(row.bidding_open_at),
            bidding_close_at: t(row.bidding_close_at),
            reoffer_open_at: t(row.reoffer_open_at),
            reoffer_close_at: t(row.reoffer_close_at),
            settlement_open_at: t(row.settlement_open_at),
            soft_close_seconds: row.soft_close_seconds.to_string(),
            hard_close_at: row.hard_close_at.map(t).unwrap_or_default(),
        }
    }
}

/// The spec's ordering rule a calendar broke, in plain words, for the date it is about.
pub fn ordering_message(error: &CalendarError) -> &'static str {
    match error {
        CalendarError::CatalogBeforeRegistration => {
            "The catalog cannot be published before registration opens. Please choose a later time."
        }
        CalendarError::BiddingBeforeCatalog => {
            "Bidding cannot open before the catalog is published. Please choose a later time."
        }
        CalendarError::BiddingCloseNotAfterOpen => {
            "Bidding must close after it opens. Please choose a later time."
        }
        CalendarError::ReofferBeforeBiddingClose => {
            "Buy-it-now cannot open before bidding closes. Please choose a later time."
        }
        CalendarError::ReofferCloseNotAfterOpen => {
            "Buy-it-now must close after it opens. Please choose a later time."
        }
        CalendarError::SettlementBeforeReofferClose => {
            "Settlement cannot open before buy-it-now closes. Please choose a later time."
        }
    }
}

/// The service's message for `field`, in the words of the form rather than the API's.
pub fn plain_message(field: Option<&str>, message: &str) -> String {
    match field {
        Some("year") if message.starts_with("year must") => {
            "The year must be between 2000 and 2200.".into()
        }
        Some("softCloseSeconds") => {
            "The soft close must be between 0 and 3600 seconds (one hour).".into()
        }
        Some("hardCloseAt") => {
            "The hard deadline must be between the close of bidding and the opening of buy-it-now."
                .into()
        }
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled() -> AuctionForm {
        AuctionForm {
            year: "2026".into(),
            name: "Spring auction".into(),
            registration_open_at: "2026-04-01T09:00".into(),
            catalog_publish_at: "2026-04-15T09:00".into(),
            bidding_open_at: "2026-05-01T18:00".into(),
            bidding_close_at: "2026-05-03T20:00".into(),
            reoffer_open_at: "2026-05-03T20:30".into(),
            reoffer_close_at: "2026-05-03T21:30".into(),
            settlement_open_at: "2026-05-04T09:00".into(),
            ..AuctionForm::default()
        }
    }

    #[test]
    fn times_are_read_in_the_auction_time_zone() {
        let zone = LocalTime::parse("America/New_York").unwrap();
        let mut errors = FieldErrors::new();
        let req = filled().request(zone, &mut errors).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            req.calendar.bidding_close_at.to_rfc3339(),
            "2026-05-04T00:00:00+00:00"
        );
        assert_eq!(req.soft_close_seconds, 120);
        assert_eq!(req.hard_close_at, None);
    }

    #[test]
    fn every_typing_problem_is_reported_at_once() {
        let zone = LocalTime::default();
        let mut errors = FieldErrors::new();
        let form = AuctionForm {
            year: "next".into(),
            bidding_open_at: "".into(),
            soft_close_seconds: "two minutes".into(),
            hard_close_at: "soon".into(),
            ..filled()
        };
        assert!(form.request(zone, &mut errors).is_none());
        for field in ["year", "biddingOpenAt", "softCloseSeconds", "hardCloseAt"] {
            assert!(errors.contains_key(field), "{field}: {errors:?}");
        }
    }
}
