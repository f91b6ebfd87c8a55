//! Public identifiers. Rows have integer keys; the API shows them with a type prefix as the
//! spec's JSON does (`u_123`, `it_456`, `a_2025`), so an item id can never be mistaken for a
//! user id, in Rust (newtypes) or in a URL. Bare numbers are accepted on input.

use std::{fmt, str::FromStr};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

macro_rules! public_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl $name {
            pub const PREFIX: &'static str = $prefix;
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                let digits = s
                    .strip_prefix(concat!($prefix, "_"))
                    .unwrap_or(s);
                match digits.parse::<i64>() {
                    Ok(n) if n > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok($name(n)),
                    _ => Err(InvalidId { kind: stringify!($name), text: s.chars().take(40).collect() }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    Num(i64),
                    Text(String),
                }
                match Raw::deserialize(d)? {
                    Raw::Num(n) if n > 0 => Ok($name(n)),
                    Raw::Num(n) => Err(de::Error::custom(format!("invalid id {n}"))),
                    Raw::Text(t) => t.parse().map_err(de::Error::custom),
                }
            }
        }
    };
}

/// The text could not be read as an id of the expected kind.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{text:?} is not a valid {kind}")]
pub struct InvalidId {
    kind: &'static str,
    text: String,
}

public_id!(/// A user (`u_<n>`).
    UserId, "u");
public_id!(/// An auction (`a_<n>`).
    AuctionId, "a");
public_id!(/// A catalog item (`it_<n>`).
    ItemId, "it");
public_id!(/// A category (`cat_<n>`).
    CategoryId, "cat");
public_id!(/// A hosted event (`ev_<n>`).
    EventId, "ev");
public_id!(/// A commitment: win, reoffer purchase or signup (`c_<n>`).
    CommitmentId, "c");
public_id!(/// An item's image (`img_<n>`).
    ImageId, "img");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_and_bare_forms_parse() {
        assert_eq!("u_12".parse::<UserId>().unwrap(), UserId(12));
        assert_eq!("12".parse::<UserId>().unwrap(), UserId(12));
        assert!("it_12".parse::<UserId>().is_err());
        assert!("u_-1".parse::<UserId>().is_err());
        assert!("u_0".parse::<UserId>().is_err());
        assert!("u_+3".parse::<UserId>().is_err());
        assert_eq!(serde_json::to_string(&ItemId(7)).unwrap(), "\"it_7\"");
        assert_eq!(
            serde_json::from_str::<ItemId>("\"it_7\"").unwrap(),
            ItemId(7)
        );
        assert_eq!(serde_json::from_str::<ItemId>("7").unwrap(), ItemId(7));
    }
}
