//! Money is integer cents inside; the API shows it as the spec's JSON does (`125.00`).
//!
//! Parsing never goes through a float: the JSON number's text is read digit by digit, so
//! `0.1 + 0.2` problems cannot exist and a third decimal is refused rather than rounded.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// An amount of money in cents. Non-negative amounts are the only ones the API accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cents(pub i64);

/// Why a money amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount must be a number such as 125 or 125.50")]
    NotANumber,
    #[error("amount must not be negative")]
    Negative,
    #[error("amount may have at most 2 decimals")]
    TooManyDecimals,
    #[error("amount is too large")]
    TooLarge,
}

/// The largest amount accepted: ten billion dollars, far above any auction and far below
/// i64 overflow even when summed over every bid of a year.
pub const MAX_CENTS: i64 = 1_000_000_000_000;

impl Cents {
    pub const ZERO: Cents = Cents(0);

    pub fn from_dollars(dollars: i64) -> Cents {
        Cents(dollars * 100)
    }

    /// Parses a decimal amount such as `125`, `125.5`, `125.50` (also `1e2`-free JSON text).
    pub fn parse(text: &str) -> Result<Cents, MoneyError> {
        let text = text.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, frac) = match digits.split_once('.') {
            Some((w, f)) => (w, f),
            None => (digits, ""),
        };
        if whole.is_empty() && frac.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (digits.contains('.') && frac.is_empty())
            || whole.is_empty()
        {
            return Err(MoneyError::NotANumber);
        }
        // Trailing zeros beyond two decimals change nothing (125.500 is 125.50).
        let frac = frac.trim_end_matches('0');
        if frac.len() > 2 {
            return Err(MoneyError::TooManyDecimals);
        }
        if whole.len() > 13 {
            return Err(MoneyError::TooLarge);
        }
        let whole: i64 = whole.parse().map_err(|_| MoneyError::NotANumber)?;
        let frac_cents: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| MoneyError::NotANumber)? * 10,
            _ => frac.parse().map_err(|_| MoneyError::NotANumber)?,
        };
        let cents = whole * 100 + frac_cents;
        if negative && cents != 0 {
            return Err(MoneyError::Negative);
        }
        if cents > MAX_CENTS {
            return Err(MoneyError::TooLarge);
        }
        Ok(Cents(cents))
    }

    /// Money as people type it into a form: `$1,250.50`, ` 25 `, `1 000`. The dollar sign,
    /// commas (thousands separators) and whitespace are dropped, then the rest is read as
    /// [`Cents::parse`] reads it, so a third decimal or a minus sign is still refused, never
    /// rounded. A blank field (nothing but those characters) is `Ok(None)`: whether that is
    /// allowed is the form's business.
    ///
    /// The one parser of typed amounts for every page (bids, the donor's prices, the
    /// catalog's price filter); the JSON API takes numbers and never comes here.
    pub fn parse_input(text: &str) -> Result<Option<Cents>, MoneyError> {
        let cleaned: String = text
            .chars()
            .filter(|c| !matches!(c, '$' | ',') && !c.is_whitespace())
            .collect();
        if cleaned.is_empty() {
            return Ok(None);
        }
        Cents::parse(&cleaned).map(Some)
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }
}

impl fmt::Display for Cents {
    /// `12550` → `125.50`; always two decimals, as the spec's JSON shows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Cents {
    /// Serialised as a JSON *number* with two decimals (`125.00`), written verbatim.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(self.to_string())
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Cents {
    /// Accepts a JSON number (`125`, `125.5`, `125.50`) or a string holding one (`"125.50"`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: Box<serde_json::value::RawValue> = Deserialize::deserialize(deserializer)?;
        let text = raw.get();
        let text = if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            inner
        } else {
            text
        };
        if text.contains(['e', 'E']) {
            return Err(de::Error::custom(MoneyError::NotANumber));
        }
        Cents::parse(text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_usual_shapes() {
        assert_eq!(Cents::parse("125"), Ok(Cents(12500)));
        assert_eq!(Cents::parse("125.5"), Ok(Cents(12550)));
        assert_eq!(Cents::parse("125.50"), Ok(Cents(12550)));
        assert_eq!(Cents::parse("125.500"), Ok(Cents(12550)));
        assert_eq!(Cents::parse("0.07"), Ok(Cents(7)));
        assert_eq!(Cents::parse("-0"), Ok(Cents(0)));
    }

    #[test]
    fn refuses_bad_amounts() {
        assert_eq!(Cents::parse("1.234"), Err(MoneyError::TooManyDecimals));
        assert_eq!(Cents::parse("-1"), Err(MoneyError::Negative));
        assert_eq!(Cents::parse("abc"), Err(MoneyError::NotANumber));
        assert_eq!(Cents::parse(""), Err(MoneyError::NotANumber));
        assert_eq!(Cents::parse("1."), Err(MoneyError::NotANumber));
        assert_eq!(Cents::parse(".5"), Err(MoneyError::NotANumber));
        assert_eq!(Cents::parse("1,5"), Err(MoneyError::NotANumber));
        assert_eq!(Cents::parse("99999999999999"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn typed_input_is_read_forgivingly() {
        assert_eq!(Cents::parse_input("$1,250.50"), Ok(Some(Cents(125_050))));
        assert_eq!(Cents::parse_input(" 45.5 "), Ok(Some(Cents(4_550))));
        assert_eq!(Cents::parse_input("$ 40"), Ok(Some(Cents(4_000))));
        assert_eq!(Cents::parse_input("1 000"), Ok(Some(Cents(100_000))));
        assert_eq!(Cents::parse_input("0"), Ok(Some(Cents(0))));
    }

    #[test]
    fn typed_input_blank_is_none() {
        assert_eq!(Cents::parse_input(""), Ok(None));
        assert_eq!(Cents::parse_input("   "), Ok(None));
        assert_eq!(Cents::parse_input("$"), Ok(None));
    }

    #[test]
    fn typed_input_keeps_the_rules_of_parse() {
        assert_eq!(
            Cents::parse_input("$45.555"),
            Err(MoneyError::TooManyDecimals)
        );
        assert_eq!(Cents::parse_input("-$5"), Err(MoneyError::Negative));
        assert_eq!(Cents::parse_input("lots"), Err(MoneyError::NotANumber));
        assert_eq!(Cents::parse_input("12.5.0"), Err(MoneyError::NotANumber));
        assert_eq!(
            Cents::parse_input("$99,999,999,999,999"),
            Err(MoneyError::TooLarge)
        );
    }

    #[test]
    fn json_round_trip_keeps_two_decimals() {
        assert_eq!(serde_json::to_string(&Cents(12500)).unwrap(), "125.00");
        assert_eq!(serde_json::to_string(&Cents(5)).unwrap(), "0.05");
        let v: Cents = serde_json::from_str("125.25").unwrap();
        assert_eq!(v, Cents(12525));
        let v: Cents = serde_json::from_str("\"40\"").unwrap();
        assert_eq!(v, Cents(4000));
        assert!(serde_json::from_str::<Cents>("1.005").is_err());
        assert!(serde_json::from_str::<Cents>("-3").is_err());
        assert!(serde_json::from_str::<Cents>("1e3").is_err());
        assert!(serde_json::from_str::<Cents>("true").is_err());
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(c in 0i64..MAX_CENTS) {
            prop_assert_eq!(Cents::parse(&Cents(c).to_string()), Ok(Cents(c)));
        }

        #[test]
        fn typed_input_reads_what_the_pages_show(c in 0i64..MAX_CENTS) {
            // The pages show `$1,234.50` (the `money` filter); typed back, it is the same.
            let dollars = (c / 100).to_string();
            let mut grouped = String::new();
            for (i, ch) in dollars.chars().enumerate() {
                if i > 0 && (dollars.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(ch);
            }
            let shown = format!("${grouped}.{:02}", c % 100);
            prop_assert_eq!(Cents::parse_input(&shown), Ok(Some(Cents(c))));
        }
    }
}
