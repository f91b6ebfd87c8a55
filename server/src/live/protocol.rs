//! The WebSocket protocol: JSON text frames, one message each, with a `type`. Documented
//! for people in docs/protocol.md.

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{AuctionId, AuctionState, Cents, ItemId},
    engine::{bidder_label, BidReply, ItemState},
};

/// Client → server.
#[derive(Debug)]
pub enum ClientMessage {
    Subscribe {
        topics: Vec<String>,
    },
    Unsubscribe {
        topics: Vec<String>,
    },
    /// The REST bid's fields plus a `ref` echoed in the `bid_result`.
    Bid(BidFrame),
    /// The REST buy's fields plus a `ref` echoed in the `buy_result`.
    Buy(BuyFrame),
    /// Clock sync: the client's time (ms since the epoch) comes back with the server's.
    Ping {
        client_time: Option<f64>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BidFrame {
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub item_id: ItemId,
    pub amount: Cents,
    #[serde(default)]
    pub max_proxy_amount: Option<Cents>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyFrame {
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub item_id: ItemId,
    #[serde(default = "one")]
    pub quantity: u32,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
struct Topics {
    topics: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ping {
    #[serde(default)]
    client_time: Option<f64>,
}

impl ClientMessage {
    /// Reads a frame in two steps, `type` first: money (`Cents`) is read from the JSON text
    /// itself, which serde's internally tagged enums cannot hand over.
    pub fn parse(text: &str) -> Result<ClientMessage, String> {
        #[derive(Deserialize)]
        struct Envelope {
            r#type: String,
        }
        let envelope: Envelope =
            serde_json::from_str(text).map_err(|e| format!("not a message: {e}"))?;
        let bad = |e: serde_json::Error| format!("bad {} message: {e}", envelope.r#type);
        Ok(match envelope.r#type.as_str() {
            "subscribe" => ClientMessage::Subscribe {
                topics: serde_json::from_str::<Topics>(text).map_err(bad)?.topics,
            },
            "unsubscribe" => ClientMessage::Unsubscribe {
                topics: serde_json::from_str::<Topics>(text).map_err(bad)?.topics,
            },
            "bid" => ClientMessage::Bid(serde_json::from_str(text).map_err(bad)?),
            "buy" => ClientMessage::Buy(serde_json::from_str(text).map_err(bad)?),
            "ping" => ClientMessage::Ping {
                client_time: serde_json::from_str::<Ping>(text).map_err(bad)?.client_time,
            },
            other => return Err(format!("unknown message type {other:?}")),
        })
    }
}

/// Money must be serialised straight to text: going through `serde_json::Value` would turn
/// `150.00` into the float `150.0`. So every message is a typed struct, never `json!`.
fn text<T: Serialize>(value: &T) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "serialising a message");
        String::from("{}")
    }))
}

/// The fields every item message shares, in the order clients see them: one shape for
/// `price`, item `snapshot`s and the items of an auction `snapshot`.
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

impl From<&ItemState> for ItemFields {
    fn from(state: &ItemState) -> ItemFields {
        ItemFields {
            item_id: state.item,
            current_bid: state.price,
            bid_count: state.bid_count,
            closes_at: state.closes_at,
            seq: state.seq,
            leading_bidder_id: state.leader_paddle.map(bidder_label),
            next_minimum: state.next_minimum,
        }
    }
}

/// `{"type":"price", itemId, currentBid, bidCount, closesAt, seq, leadingBidderId, nextMinimum}`
pub fn price(state: &ItemState) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Price {
        r#type: &'static str,
        #[serde(flatten)]
        fields: ItemFields,
    }
    text(&Price {
        r#type: "price",
        fields: state.into(),
    })
}

/// The state of an item topic on subscribe and after reconnect.
pub fn item_snapshot(state: &ItemState, now: DateTime<Utc>) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Snapshot {
        r#type: &'static str,
        topic: String,
        #[serde(flatten)]
        fields: ItemFields,
        opening_bid: Cents,
        closed: bool,
        quantity_remaining: u32,
        buy_price: Cents,
    }
    text(&Snapshot {
        r#type: "snapshot",
        topic: format!("item:{}", state.item),
        fields: state.into(),
        opening_bid: state.opening,
        closed: state.closed_at(now),
        quantity_remaining: state.stock_left,
        buy_price: state.unit_price,
    })
}

/// `{"type":"outbid", itemId, currentBid, nextMinimum, seq}`, to the bidder who lost the lead.
pub fn outbid(state: &ItemState) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Outbid {
        r#type: &'static str,
        item_id: ItemId,
        current_bid: Option<Cents>,
        next_minimum: Cents,
        seq: u64,
    }
    text(&Outbid {
        r#type: "outbid",
        item_id: state.item,
        current_bid: state.price,
        next_minimum: state.next_minimum,
        seq: state.seq,
    })
}

/// `{"type":"closing", itemId, closesAt, closed}`: a soft-close extension, or the close.
pub fn closing(item: ItemId, closes_at: DateTime<Utc>, closed: bool) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Closing {
        r#type: &'static str,
        item_id: ItemId,
        closes_at: DateTime<Utc>,
        closed: bool,
    }
    text(&Closing {
        r#type: "closing",
        item_id: item,
        closes_at,
        closed,
    })
}

/// `{"type":"closed", itemId, finalPrice, winningBidderId, quantitySold}`: the item's
/// bidding close is recorded (final price and the leader's paddle; `null`s when unsold).
pub fn closed(state: &ItemState, units_won: usize) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Closed {
        r#type: &'static str,
        item_id: ItemId,
        final_price: Option<Cents>,
        winning_bidder_id: Option<String>,
        quantity_sold: usize,
    }
    let sold = units_won > 0;
    text(&Closed {
        r#type: "closed",
        item_id: state.item,
        final_price: state.price.filter(|_| sold),
        winning_bidder_id: state.leader_paddle.filter(|_| sold).map(bidder_label),
        quantity_sold: units_won,
    })
}

/// `{"type":"won", itemId, amount}`: to a winner's own connections only.
pub fn won(item: ItemId, amount: Cents) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Won {
        r#type: &'static str,
        item_id: ItemId,
        amount: Cents,
    }
    text(&Won {
        r#type: "won",
        item_id: item,
        amount,
    })
}

/// `{"type":"capacity", itemId, quantityRemaining, price}`: reoffer units left, after each
/// purchase.
pub fn capacity(state: &ItemState) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Capacity {
        r#type: &'static str,
        item_id: ItemId,
        quantity_remaining: u32,
        price: Cents,
    }
    text(&Capacity {
        r#type: "capacity",
        item_id: state.item,
        quantity_remaining: state.stock_left,
        price: state.unit_price,
    })
}

/// `{"type":"pong","clientTime":…,"serverTime":…}` (milliseconds since the epoch).
pub fn pong(client_time: Option<f64>, now: DateTime<Utc>) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Pong {
        r#type: &'static str,
        client_time: Option<f64>,
        server_time: i64,
    }
    text(&Pong {
        r#type: "pong",
        client_time,
        server_time: now.timestamp_millis(),
    })
}

/// `{"type":"bid_result","ref":…,"status":201,"body":{…the REST body…}}`. The body is the
/// bid's stored answer, spliced in verbatim.
pub fn bid_result(reference: Option<&str>, reply: &BidReply) -> Utf8Bytes {
    let reference = serde_json::to_string(&reference).unwrap_or_else(|_| "null".into());
    Utf8Bytes::from(format!(
        "{{\"type\":\"bid_result\",\"ref\":{reference},\"status\":{},\"body\":{}}}",
        reply.status, reply.body
    ))
}

/// `{"type":"buy_result","ref":…,"status":201,"body":{…the REST body…}}`: a `buy`'s answer.
pub fn buy_result(reference: Option<&str>, reply: &BidReply) -> Utf8Bytes {
    let reference = serde_json::to_string(&reference).unwrap_or_else(|_| "null".into());
    Utf8Bytes::from(format!(
        "{{\"type\":\"buy_result\",\"ref\":{reference},\"status\":{},\"body\":{}}}",
        reply.status, reply.body
    ))
}

/// `{"type":"error","error":code,"message":…}` for a frame the server could not use.
pub fn error(code: &str, message: &str) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Error<'a> {
        r#type: &'static str,
        error: &'a str,
        message: &'a str,
    }
    text(&Error {
        r#type: "error",
        error: code,
        message,
    })
}

/// `{"type":"auction","auctionId":…,"state":…}` when an auction's state changes.
pub fn auction_state(auction: AuctionId, state: AuctionState) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Auction {
        r#type: &'static str,
        auction_id: AuctionId,
        state: AuctionState,
    }
    text(&Auction {
        r#type: "auction",
        auction_id: auction,
        state,
    })
}

/// The snapshot of an auction topic: its state and every live item's committed price.
pub fn auction_snapshot(
    auction: AuctionId,
    state: Option<AuctionState>,
    items: &[ItemState],
    now: DateTime<Utc>,
) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Snapshot {
        r#type: &'static str,
        topic: String,
        auction_id: AuctionId,
        state: Option<AuctionState>,
        server_time: DateTime<Utc>,
        items: Vec<ItemFields>,
    }
    text(&Snapshot {
        r#type: "snapshot",
        topic: format!("auction:{auction}"),
        auction_id: auction,
        state,
        server_time: now,
        items: items.iter().map(ItemFields::from).collect(),
    })
}

#[cfg(test)]
mod tests {
    // Money literals are written dollars_cents (`125_00` is $125.00), like prices.
    #![allow(clippy::inconsistent_digit_grouping)]
    use super::*;

    #[test]
    fn client_messages_parse() {
        let m = ClientMessage::parse(r#"{"type":"bid","ref":"r1","itemId":"it_4","amount":125.00,"maxProxyAmount":200,"idempotencyKey":"k"}"#).unwrap();
        match m {
            ClientMessage::Bid(f) => {
                assert_eq!(f.reference.as_deref(), Some("r1"));
                assert_eq!(f.item_id, ItemId(4));
                assert_eq!(f.amount, Cents(12500));
                assert_eq!(f.max_proxy_amount, Some(Cents(20000)));
                assert_eq!(f.idempotency_key.as_deref(), Some("k"));
            }
            other => panic!("{other:?}"),
        }
        assert!(ClientMessage::parse(r#"{"type":"bid","itemId":"it_4","amount":1.001}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"dance"}"#).is_err());
        assert!(ClientMessage::parse("not json").is_err());
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"subscribe","topics":["item:it_1"]}"#),
            Ok(ClientMessage::Subscribe { .. })
        ));
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"ping","clientTime":1700000000000}"#),
            Ok(ClientMessage::Ping {
                client_time: Some(_)
            })
        ));
    }

    #[test]
    fn bid_result_splices_the_body_verbatim() {
        let reply = BidReply {
            status: 201,
            body: r#"{"currentBid":125.00}"#.into(),
        };
        let m = bid_result(Some("a\"b"), &reply);
        assert_eq!(
            m.as_str(),
            r#"{"type":"bid_result","ref":"a\"b","status":201,"body":{"currentBid":125.00}}"#
        );
    }

    fn state() -> ItemState {
        ItemState {
            item: ItemId(12),
            auction: AuctionId(1),
            price: Some(Cents(125_00)),
            bid_count: 3,
            seq: 3,
            leader_paddle: Some(105),
            next_minimum: Cents(130_00),
            opening: Cents(50_00),
            closes_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            version: 3,
            competitive: true,
            closed: false,
            stock_left: 0,
            unit_price: Cents(50_00),
            reoffer_sold: 0,
            extended: false,
            bidders: 2,
            winning_total: Cents(12_00),
        }
    }

    /// Every server message's exact bytes: what clients (client-js, the load tester, other
    /// people's code) read. A change here is a change of the protocol (docs/protocol.md).
    #[test]
    fn server_messages_are_pinned() {
        let now = DateTime::from_timestamp(1_799_999_000, 0).unwrap();
        let s = state();
        insta::assert_snapshot!(price(&s), @r#"{"type":"price","itemId":"it_12","currentBid":125.00,"bidCount":3,"closesAt":"2027-01-15T08:00:00Z","seq":3,"leadingBidderId":"p_105","nextMinimum":130.00}"#);
        insta::assert_snapshot!(item_snapshot(&s, now), @r#"{"type":"snapshot","topic":"item:it_12","itemId":"it_12","currentBid":125.00,"bidCount":3,"closesAt":"2027-01-15T08:00:00Z","seq":3,"leadingBidderId":"p_105","nextMinimum":130.00,"openingBid":50.00,"closed":false,"quantityRemaining":0,"buyPrice":50.00}"#);
        insta::assert_snapshot!(auction_snapshot(AuctionId(1), Some(AuctionState::Bidding), std::slice::from_ref(&s), now), @r#"{"type":"snapshot","topic":"auction:a_1","auctionId":"a_1","state":"bidding","serverTime":"2027-01-15T07:43:20Z","items":[{"itemId":"it_12","currentBid":125.00,"bidCount":3,"closesAt":"2027-01-15T08:00:00Z","seq":3,"leadingBidderId":"p_105","nextMinimum":130.00}]}"#);
        insta::assert_snapshot!(outbid(&s), @r#"{"type":"outbid","itemId":"it_12","currentBid":125.00,"nextMinimum":130.00,"seq":3}"#);
        insta::assert_snapshot!(closing(s.item, s.closes_at, true), @r#"{"type":"closing","itemId":"it_12","closesAt":"2027-01-15T08:00:00Z","closed":true}"#);
        insta::assert_snapshot!(closed(&s, 1), @r#"{"type":"closed","itemId":"it_12","finalPrice":125.00,"winningBidderId":"p_105","quantitySold":1}"#);
        insta::assert_snapshot!(closed(&s, 0), @r#"{"type":"closed","itemId":"it_12","finalPrice":null,"winningBidderId":null,"quantitySold":0}"#);
        insta::assert_snapshot!(won(s.item, Cents(125_00)), @r#"{"type":"won","itemId":"it_12","amount":125.00}"#);
        let reoffer = ItemState {
            stock_left: 2,
            unit_price: Cents(40_00),
            ..s.clone()
        };
        insta::assert_snapshot!(capacity(&reoffer), @r#"{"type":"capacity","itemId":"it_12","quantityRemaining":2,"price":40.00}"#);
        insta::assert_snapshot!(auction_state(AuctionId(1), AuctionState::Paused), @r#"{"type":"auction","auctionId":"a_1","state":"paused"}"#);
        insta::assert_snapshot!(pong(Some(1.5), now), @r#"{"type":"pong","clientTime":1.5,"serverTime":1799999000000}"#);
        insta::assert_snapshot!(error("slow_down", "Wait."), @r#"{"type":"error","error":"slow_down","message":"Wait."}"#);
        let before_the_first_bid = ItemState {
            price: None,
            leader_paddle: None,
            ..s
        };
        insta::assert_snapshot!(price(&before_the_first_bid), @r#"{"type":"price","itemId":"it_12","currentBid":null,"bidCount":3,"closesAt":"2027-01-15T08:00:00Z","seq":3,"leadingBidderId":null,"nextMinimum":130.00}"#);
    }
}
