//! The auction's time zone. People read local time: every date on a page or in an email is
//! shown in it and named ("6:00 PM EDT"), and every time typed into a form is read in it.
//! Instants are stored and sent over the API in UTC; only the edges convert.

use std::fmt;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The zone when `AUCTION_TIME_ZONE` is unset: the church's own (Knoxville, Tennessee).
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::America::New_York;

/// Formats accepted from a `datetime-local` input, or typed by hand.
const INPUT_FORMATS: [&str; 3] = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"];

/// Why a typed time could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalTimeError {
    /// Not a date and time at all.
    Unreadable,
    /// The clocks jump over it (spring forward): that wall time never happens.
    Skipped,
}

impl fmt::Display for LocalTimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalTimeError::Unreadable => {
                f.write_str("Please enter the date and time like 2026-06-12 18:00.")
            }
            LocalTimeError::Skipped => f.write_str(
                "That time does not exist on that day (the clocks go forward); please choose another.",
            ),
        }
    }
}

/// The auction's time zone and how its times are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime(pub Tz);

impl Default for LocalTime {
    fn default() -> LocalTime {
        LocalTime(DEFAULT_TIME_ZONE)
    }
}

impl LocalTime {
    /// Reads an IANA name such as `America/Chicago`.
    pub fn parse(name: &str) -> Result<LocalTime, String> {
        name.trim()
            .parse::<Tz>()
            .map(LocalTime)
            .map_err(|_| format!("{name:?} is not a time zone name like America/Chicago"))
    }

    /// The IANA name, e.g. `America/New_York`.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// `Sunday, May 3, 2026, 2:00 PM EDT`: how pages and emails write an instant.
    pub fn long(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0)
            .format("%A, %B %-d, %Y, %-I:%M %p %Z")
            .to_string()
    }

    /// `2:00 PM EDT`: the time of day alone, for tonight's deadlines on the live close pages.
    pub fn clock(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0).format("%-I:%M %p %Z").to_string()
    }

    /// `2026-05-03T14:00`: the value of a `datetime-local` input for an instant.
    pub fn input_value(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0)
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    }

    /// Reads a `datetime-local` value as a wall time in this zone. When the clocks go back
    /// and the time happens twice, the first is meant (as a person reading the clock would).
    pub fn parse_input(&self, text: &str) -> Result<DateTime<Utc>, LocalTimeError> {
        let text = text.trim();
        let naive = INPUT_FORMATS
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .ok_or(LocalTimeError::Unreadable)?;
        match self.0.from_local_datetime(&naive) {
            LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
            LocalResult::None => Err(LocalTimeError::Skipped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eastern() -> LocalTime {
        LocalTime::parse("America/New_York").unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn instants_are_written_in_the_zone_and_named() {
        let z = eastern();
        assert_eq!(
            z.long(utc("2026-05-03T18:00:00Z")),
            "Sunday, May 3, 2026, 2:00 PM EDT"
        );
        assert_eq!(
            z.long(utc("2026-12-24T23:30:00Z")),
            "Thursday, December 24, 2026, 6:30 PM EST"
        );
        assert_eq!(z.clock(utc("2026-05-03T18:00:00Z")), "2:00 PM EDT");
        assert_eq!(
            z.input_value(utc("2026-05-03T18:00:00Z")),
            "2026-05-03T14:00"
        );
    }

    #[test]
    fn typed_times_are_read_in_the_zone() {
        let z = eastern();
        assert_eq!(
            z.parse_input("2026-05-03T14:00").unwrap(),
            utc("2026-05-03T18:00:00Z")
        );
        assert_eq!(
            z.parse_input(" 2026-12-24 18:30 ").unwrap(),
            utc("2026-12-24T23:30:00Z")
        );
        assert_eq!(z.parse_input("tomorrow"), Err(LocalTimeError::Unreadable));
    }

    #[test]
    fn clock_changes_are_handled() {
        let z = eastern();
        // 2:30 AM on March 8, 2026 never happens in New York.
        assert_eq!(
            z.parse_input("2026-03-08T02:30"),
            Err(LocalTimeError::Skipped)
        );
        // 1:30 AM on November 1, 2026 happens twice: the first (still EDT) is meant.
        assert_eq!(
            z.parse_input("2026-11-01T01:30").unwrap(),
            utc("2026-11-01T05:30:00Z")
        );
    }

    #[test]
    fn every_instant_round_trips_through_an_input_to_the_minute() {
        let z = LocalTime::parse("America/Chicago").unwrap();
        let mut t = utc("2026-01-01T00:00:00Z");
        while t < utc("2027-01-01T00:00:00Z") {
            let back = z.parse_input(&z.input_value(t)).unwrap();
            // Only the repeated hour in November reads back as its first occurrence.
            assert!(back == t || back + chrono::Duration::hours(1) == t, "{t}");
            t += chrono::Duration::minutes(37);
        }
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert!(LocalTime::parse("Mars/Olympus").is_err());
        assert_eq!(LocalTime::default().name(), "America/New_York");
    }
}
