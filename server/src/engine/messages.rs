//! What the engine says: bid answers (REST and `bid_result`) and the live messages pushed to
//! WebSocket subscribers. Each live message is serialised once and shared by every
//! subscriber (`Utf8Bytes` is reference-counted).

use axum::{extract::ws::Utf8Bytes, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    domain::{
        bidding::{Accepted, Refusal},
        AuctionId, Cents, ItemId,
    },
    engine::BidReply,
};

/// The public name of a bidder: their paddle number, never a name or an email.
pub fn bidder_label(paddle: i32) -> String {
    format!("p_{paddle}")
}

/// The committed state of one item, as subscribers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemState {
    pub item: ItemId,
    pub auction: AuctionId,
    pub price: Option<Cents>,
    pub bid_count: u64,
    pub seq: u64,
    pub leader_paddle: Option<i32>,
    pub next_minimum: Cents,
    pub opening: Cents,
    pub closes_at: DateTime<Utc>,
}

/// The fields every item message shares, in the order clients see them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemFields {
    item_id: ItemId,
    current_bid: Option<Cents>,
    bid_count: u64,
    closes_at: DateTime<Utc>,
    seq: u64,
    leading_bidder_id: Option<String>,
    next_minimum: Cents,
}

/// Money must be serialised straight to text: going through `serde_json::Value` would turn
/// `150.00` into the float `150.0`. So every message is a typed struct, never `json!`.
fn to_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "serialising a message");
        String::from("{}")
    })
}

impl ItemState {
    fn fields(&self) -> ItemFields {
        ItemFields {
            item_id: self.item,
            current_bid: self.price,
            bid_count: self.bid_count,
            closes_at: self.closes_at,
            seq: self.seq,
            leading_bidder_id: self.leader_paddle.map(bidder_label),
            next_minimum: self.next_minimum,
        }
    }

    /// `{"type":"price", itemId, currentBid, bidCount, closesAt, seq, leadingBidderId, nextMinimum}`
    pub fn price_message(&self) -> Utf8Bytes {
        #[derive(Serialize)]
        struct Price {
            r#type: &'static str,
            #[serde(flatten)]
            fields: ItemFields,
        }
        Utf8Bytes::from(to_text(&Price {
            r#type: "price",
            fields: self.fields(),
        }))
    }

    /// The state of an item topic on subscribe and after reconnect.
    pub fn snapshot_message(&self, now: DateTime<Utc>) -> Utf8Bytes {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Snapshot {
            r#type: &'static str,
            topic: String,
            #[serde(flatten)]
            fields: ItemFields,
            opening_bid: Cents,
            closed: bool,
        }
        Utf8Bytes::from(to_text(&Snapshot {
            r#type: "snapshot",
            topic: format!("item:{}", self.item),
            fields: self.fields(),
            opening_bid: self.opening,
            closed: now >= self.closes_at,
        }))
    }
}

/// `{"type":"outbid", itemId, currentBid, nextMinimum, seq}`, to the bidder who lost the lead.
pub fn outbid_message(state: &ItemState) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Outbid {
        r#type: &'static str,
        item_id: ItemId,
        current_bid: Option<Cents>,
        next_minimum: Cents,
        seq: u64,
    }
    Utf8Bytes::from(to_text(&Outbid {
        r#type: "outbid",
        item_id: state.item,
        current_bid: state.price,
        next_minimum: state.next_minimum,
        seq: state.seq,
    }))
}

/// `{"type":"closing", itemId, closesAt, closed}`: a soft-close extension, or the close.
pub fn closing_message(item: ItemId, closes_at: DateTime<Utc>, closed: bool) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Closing {
        r#type: &'static str,
        item_id: ItemId,
        closes_at: DateTime<Utc>,
        closed: bool,
    }
    Utf8Bytes::from(to_text(&Closing {
        r#type: "closing",
        item_id: item,
        closes_at,
        closed,
    }))
}

/// The answer to an accepted bid: the spec's leading or outbid shape, plus the details a
/// bid panel needs (seq, bid count, next minimum, close).
pub fn accepted_reply(
    item: ItemId,
    accepted: &Accepted,
    bid_count: u64,
    leader_paddle: i32,
) -> BidReply {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Reply {
        item_id: ItemId,
        leading: bool,
        current_bid: Cents,
        #[serde(skip_serializing_if = "Option::is_none")]
        leading_bidder_id: Option<String>,
        seq: u64,
        bid_count: u64,
        next_minimum: Cents,
        closes_at: DateTime<Utc>,
    }
    let body = to_text(&Reply {
        item_id: item,
        leading: accepted.leading,
        current_bid: accepted.price,
        leading_bidder_id: (!accepted.leading).then(|| bidder_label(leader_paddle)),
        seq: accepted.seq,
        bid_count,
        next_minimum: accepted.next_minimum,
        closes_at: accepted.closes_at,
    });
    BidReply {
        status: StatusCode::CREATED,
        body: body.into(),
    }
}

/// A refusal by the rules: 409 when the item's state decides (too low, closed, nothing to
/// raise), 422 when the bid itself is inconsistent.
pub fn refusal_reply(refusal: &Refusal) -> BidReply {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        error: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        minimum: Option<Cents>,
        #[serde(skip_serializing_if = "Option::is_none")]
        closes_at: Option<DateTime<Utc>>,
    }
    let mut body = Body {
        error: refusal.code(),
        message: String::new(),
        minimum: None,
        closes_at: None,
    };
    let status = match refusal {
        Refusal::BelowMinimum { minimum } => {
            body.message =
                format!("Your bid is below the minimum. The least you can bid now is ${minimum}.");
            body.minimum = Some(*minimum);
            StatusCode::CONFLICT
        }
        Refusal::Closed { closes_at } => {
            body.message = "Bidding on this item has closed.".into();
            body.closes_at = Some(*closes_at);
            StatusCode::CONFLICT
        }
        Refusal::MaxBelowAmount { amount } => {
            body.message = format!("Your maximum must not be below your bid of ${amount}.");
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Refusal::MaxNotRaised { current_max } => {
            body.message = format!("You already lead with a maximum of ${current_max}. To change it, bid a higher maximum.");
            StatusCode::CONFLICT
        }
    };
    BidReply {
        status,
        body: to_text(&body).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbid_reply_names_the_leader_by_paddle_only() {
        let accepted = Accepted {
            seq: 2,
            price: Cents(15000),
            leader: 7,
            leading: false,
            leader_changed: false,
            previous_leader: None,
            next_minimum: Cents(16000),
            closes_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            extended: false,
        };
        let reply = accepted_reply(ItemId(123), &accepted, 2, 999);
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["itemId"], "it_123");
        assert_eq!(body["leading"], false);
        assert_eq!(body["leadingBidderId"], "p_999");
        assert!(
            reply.body.contains("\"currentBid\":150.00"),
            "{}",
            reply.body
        );
    }

    #[test]
    fn too_low_says_the_minimum() {
        let reply = refusal_reply(&Refusal::BelowMinimum {
            minimum: Cents(13000),
        });
        assert_eq!(reply.status, StatusCode::CONFLICT);
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["error"], "bid_too_low");
        assert!(body["message"].as_str().unwrap().contains("$130.00"));
        assert!(reply.body.contains("\"minimum\":130.00"));
    }
}
