//! Every answer to a bid, in one place.
//!
//! A [`BidReply`] is an HTTP status and the exact JSON body. The same bytes go to the REST
//! caller, into `bid_result` on the WebSocket, and into the idempotency table, so a retry
//! gets the original answer byte for byte. Bodies are serialised from typed structs, never
//! through `serde_json::Value`, which would turn `150.00` into the float `150.0`; readers
//! (the no-JavaScript form) deserialize them back into the same types with
//! [`BidReply::outcome`] instead of scraping text.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{
        bidding::{Accepted, Refusal},
        Cents, ItemId,
    },
    engine::{gate::Shut, state::bidder_label, state::NotLive},
};

/// The answer to a bid: HTTP status and JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidReply {
    pub status: u16,
    pub body: Arc<str>,
}

/// The body of an accepted bid: the spec's leading or outbid shape, plus what a bid panel
/// needs (seq, bid count, next minimum, close).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedBody {
    pub item_id: ItemId,
    pub leading: bool,
    pub current_bid: Cents,
    /// Only when the bidder is not leading: the leader, by paddle number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leading_bidder_id: Option<String>,
    pub seq: u64,
    pub bid_count: u64,
    pub next_minimum: Cents,
    pub closes_at: DateTime<Utc>,
}

/// The body of a refused bid: the API's `{"error", "message"}` plus, for a bid too low, the
/// minimum, and for a closed item, its close.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusalBody {
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Cents>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closes_at: Option<DateTime<Utc>>,
    /// For a purchase of more units than are left: how many are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity_remaining: Option<u32>,
}

/// The body of a reoffer purchase (the spec's shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseBody {
    pub item_id: ItemId,
    pub quantity_purchased: u32,
    pub price_each: Cents,
    /// `c_<id>`: the commitment the purchase created (see [`COMMITMENT_PLACEHOLDER`]).
    pub commitment_id: String,
    pub quantity_remaining: u32,
}

/// Stands for a purchase's commitment id in its answer until storage assigns the id: the
/// store and the journal both replace it (`BidReply::with_commitment`), so the answer stored
/// under the purchase's key and the one the buyer gets are the same bytes.
pub const COMMITMENT_PLACEHOLDER: &str = "@commitment@";

/// A reply read back into its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted(AcceptedBody),
    Refused(RefusalBody),
}

fn to_text<T: Serialize>(value: &T) -> Arc<str> {
    serde_json::to_string(value)
        .unwrap_or_else(|e| {
            // Only a type that cannot be JSON fails here, and these cannot.
            tracing::error!(error = %e, "serialising a bid answer");
            String::from("{}")
        })
        .into()
}

impl BidReply {
    /// An error answer in the API's `{"error", "message"}` shape.
    pub fn error(status: u16, code: &str, message: &str) -> BidReply {
        BidReply::refused(
            status,
            RefusalBody {
                error: code.into(),
                message: message.into(),
                minimum: None,
                closes_at: None,
                quantity_remaining: None,
            },
        )
    }

    fn refused(status: u16, body: RefusalBody) -> BidReply {
        BidReply {
            status,
            body: to_text(&body),
        }
    }

    /// 201 with the accepted shape.
    pub fn accepted(body: &AcceptedBody) -> BidReply {
        BidReply {
            status: 201,
            body: to_text(body),
        }
    }

    /// 201 for a purchase; its commitment id is [`COMMITMENT_PLACEHOLDER`] until stored.
    pub fn purchased(item: ItemId, quantity: u32, price_each: Cents, remaining: u32) -> BidReply {
        BidReply {
            status: 201,
            body: to_text(&PurchaseBody {
                item_id: item,
                quantity_purchased: quantity,
                price_each,
                commitment_id: format!("c_{COMMITMENT_PLACEHOLDER}"),
                quantity_remaining: remaining,
            }),
        }
    }

    /// The answer with its commitment's id in place of the placeholder.
    pub fn with_commitment(&self, id: i64) -> BidReply {
        BidReply {
            status: self.status,
            body: self
                .body
                .replace(COMMITMENT_PLACEHOLDER, &id.to_string())
                .into(),
        }
    }

    /// Nothing left to buy (the spec's answer).
    pub fn sold_out() -> BidReply {
        BidReply::error(409, "sold_out", "Item no longer available")
    }

    /// Fewer units left than asked for.
    pub fn not_enough_left(left: u32) -> BidReply {
        BidReply::refused(
            409,
            RefusalBody {
                error: "not_enough_left".into(),
                message: format!("Only {left} left. Please choose {left} or fewer."),
                minimum: None,
                closes_at: None,
                quantity_remaining: Some(left),
            },
        )
    }

    /// Not durable: storage could not record it. Never stored under an idempotency key, so
    /// a retry runs the bid again. Made once (a failing storage answers thousands of these).
    pub fn storage_unavailable() -> BidReply {
        static REPLY: std::sync::LazyLock<BidReply> = std::sync::LazyLock::new(|| {
            BidReply::error(
                503,
                "storage_unavailable",
                "Nothing was recorded because the database is not answering. Please try again in a moment.",
            )
        });
        REPLY.clone()
    }

    /// Storage refused this one bid's data (found by splitting its batch): the other bids
    /// of the batch were recorded. Not retried automatically: the same data would fail again.
    pub fn not_recorded() -> BidReply {
        BidReply::error(
            500,
            "bid_not_recorded",
            "Nothing was recorded because of a problem on our side. Please try again, or ask at the desk.",
        )
    }

    /// The engine is stopping and takes no more bids.
    pub fn shutting_down() -> BidReply {
        BidReply::error(
            503,
            "shutting_down",
            "The server is restarting. Please try again in a moment.",
        )
    }

    /// A connection with too many bids awaiting answers.
    pub fn too_many_bids() -> BidReply {
        BidReply::error(
            429,
            "rate_limited",
            "Too many bids at once; wait for the answers.",
        )
    }

    /// An idempotency key outside [`crate::engine::idempotency::validate_key`]'s rules.
    pub fn invalid_idempotency_key() -> BidReply {
        BidReply::error(
            422,
            "invalid_idempotency_key",
            "idempotencyKey must be 1 to 200 visible ASCII characters (letters, digits, punctuation; no spaces).",
        )
    }

    /// The same key already stood for another bid.
    pub fn idempotency_key_reused() -> BidReply {
        BidReply::error(
            422,
            "idempotency_key_reused",
            "This idempotency key was already used for a different bid.",
        )
    }

    /// Whether the answer is final: a 5xx is not (nothing was recorded, or its outcome is
    /// for the bidder to retry), so it is never stored under a key and releases the key.
    pub fn is_final(&self) -> bool {
        self.status < 500
    }

    /// Whether this is [`BidReply::storage_unavailable`] (an outage, not another 503).
    pub fn is_storage_unavailable(&self) -> bool {
        self.status == 503 && self.body == BidReply::storage_unavailable().body
    }

    /// The answer read back into its type.
    pub fn outcome(&self) -> Result<Outcome, serde_json::Error> {
        if (200..300).contains(&self.status) {
            serde_json::from_str(&self.body).map(Outcome::Accepted)
        } else {
            serde_json::from_str(&self.body).map(Outcome::Refused)
        }
    }
}

/// The answer to an accepted bid.
pub fn accepted_reply(
    item: ItemId,
    accepted: &Accepted,
    bid_count: u64,
    leader_paddle: i32,
) -> BidReply {
    BidReply::accepted(&AcceptedBody {
        item_id: item,
        leading: accepted.leading,
        current_bid: accepted.price,
        leading_bidder_id: (!accepted.leading).then(|| bidder_label(leader_paddle)),
        seq: accepted.seq,
        bid_count,
        next_minimum: accepted.next_minimum,
        closes_at: accepted.closes_at,
    })
}

/// A refusal by the rules: 409 when the item's state decides (too low, closed, nothing to
/// raise), 422 when the bid itself is inconsistent.
pub fn refusal_reply(refusal: &Refusal) -> BidReply {
    let mut body = RefusalBody {
        error: refusal.code().into(),
        message: String::new(),
        minimum: None,
        closes_at: None,
        quantity_remaining: None,
    };
    let status = match refusal {
        Refusal::BelowMinimum { minimum } => {
            body.message =
                format!("Your bid is below the minimum. The least you can bid now is ${minimum}.");
            body.minimum = Some(*minimum);
            409
        }
        Refusal::Closed { closes_at } => {
            body.message = "Bidding on this item has closed.".into();
            body.closes_at = Some(*closes_at);
            409
        }
        Refusal::MaxBelowAmount { amount } => {
            body.message = format!("Your maximum must not be below your bid of ${amount}.");
            422
        }
        Refusal::MaxNotRaised { current_max } => {
            body.message = format!("You already lead with a maximum of ${current_max}. To change it, bid a higher maximum.");
            409
        }
    };
    BidReply::refused(status, body)
}

/// The auction does not take bids now.
pub fn shut_reply(shut: Shut) -> BidReply {
    match shut {
        Shut::NotYetOpen => BidReply::error(409, "bidding_not_open", "Bidding has not opened yet."),
        Shut::Over => BidReply::error(409, "bidding_closed", "Bidding has closed."),
        Shut::PausedByManager => BidReply::error(
            409,
            "bidding_paused",
            "Bidding is paused by the auction managers. Please wait a moment.",
        ),
    }
}

/// The reoffer phase does not sell now.
pub fn buy_shut_reply(shut: Shut) -> BidReply {
    match shut {
        Shut::NotYetOpen => BidReply::error(
            409,
            "reoffer_not_open",
            "Buy-it-now has not opened yet. It opens after bidding closes.",
        ),
        Shut::Over => BidReply::error(409, "reoffer_closed", "Buy-it-now has closed."),
        Shut::PausedByManager => BidReply::error(
            409,
            "reoffer_paused",
            "Buy-it-now is paused by the auction managers. Please wait a moment.",
        ),
    }
}

/// The item has no book.
pub fn not_live_reply(why: NotLive) -> BidReply {
    match why {
        NotLive::Inconsistent => BidReply::error(
            503,
            "item_unavailable",
            "Bidding on this item is paused while the auction team checks it. Please ask at the desk.",
        ),
        NotLive::Missing => BidReply::error(404, "not_found", "Item was not found."),
        NotLive::NotCompetitive => {
            BidReply::error(409, "not_biddable", "This item is not sold by bidding.")
        }
        NotLive::NotPublished => {
            BidReply::error(409, "not_biddable", "This item is not open for bidding.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(leading: bool) -> Accepted {
        Accepted {
            seq: 2,
            price: Cents(15000),
            leader: 7,
            leading,
            leader_changed: false,
            previous_leader: None,
            next_minimum: Cents(16000),
            closes_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            extended: false,
        }
    }

    #[test]
    fn the_accepted_shapes_are_pinned() {
        // The exact bytes clients and the idempotency table see: money as written decimals.
        let leading = accepted_reply(ItemId(123), &accepted(true), 2, 999);
        insta::assert_snapshot!(leading.body, @r#"{"itemId":"it_123","leading":true,"currentBid":150.00,"seq":2,"bidCount":2,"nextMinimum":160.00,"closesAt":"2027-01-15T08:00:00Z"}"#);
        let outbid = accepted_reply(ItemId(123), &accepted(false), 2, 999);
        assert_eq!(outbid.status, 201);
        insta::assert_snapshot!(outbid.body, @r#"{"itemId":"it_123","leading":false,"currentBid":150.00,"leadingBidderId":"p_999","seq":2,"bidCount":2,"nextMinimum":160.00,"closesAt":"2027-01-15T08:00:00Z"}"#);
    }

    #[test]
    fn the_refusal_shapes_are_pinned() {
        let low = refusal_reply(&Refusal::BelowMinimum {
            minimum: Cents(13000),
        });
        assert_eq!(low.status, 409);
        insta::assert_snapshot!(low.body, @r#"{"error":"bid_too_low","message":"Your bid is below the minimum. The least you can bid now is $130.00.","minimum":130.00}"#);
        let max = refusal_reply(&Refusal::MaxBelowAmount {
            amount: Cents(5000),
        });
        assert_eq!(max.status, 422);
        insta::assert_snapshot!(BidReply::storage_unavailable().body, @r#"{"error":"storage_unavailable","message":"Nothing was recorded because the database is not answering. Please try again in a moment."}"#);
    }

    #[test]
    fn replies_read_back_into_their_types_without_floats() {
        let reply = accepted_reply(ItemId(5), &accepted(false), 3, 12);
        match reply.outcome().unwrap() {
            Outcome::Accepted(body) => {
                assert_eq!(body.current_bid, Cents(15000));
                assert!(!body.leading);
                assert_eq!(body.leading_bidder_id.as_deref(), Some("p_12"));
            }
            other => panic!("{other:?}"),
        }
        let low = refusal_reply(&Refusal::BelowMinimum {
            minimum: Cents(13001),
        });
        match low.outcome().unwrap() {
            Outcome::Refused(body) => {
                assert_eq!(body.error, "bid_too_low");
                assert_eq!(body.minimum, Some(Cents(13001)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_answers_below_500_are_final() {
        assert!(refusal_reply(&Refusal::Closed {
            closes_at: Utc::now()
        })
        .is_final());
        assert!(!BidReply::storage_unavailable().is_final());
        assert!(!BidReply::not_recorded().is_final());
        assert!(!BidReply::shutting_down().is_final());
    }
}
