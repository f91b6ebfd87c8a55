//! Who hears what: topics (`item:<id>`, `auction:<id>`), their subscribers, and each
//! connection's bounded outbox.
//!
//! A message is serialised once and shared (a reference-counted `Utf8Bytes`). Price updates
//! are conflated per connection: a slow reader's outbox keeps only the latest price of each
//! item, never a backlog. Everything else queues, and a connection whose queue passes
//! [`MAX_QUEUED_BYTES`] is closed: one stuck phone must not hold memory for everyone.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::Notify;

use crate::{
    domain::{AuctionId, AuctionState, ItemId, UserId},
    engine::{AnswerSink, BidReply, ItemState, Publisher},
    ws::protocol,
};

/// A connection's queued bytes beyond which it is disconnected as too slow. 256 KiB is
/// hundreds of messages: a healthy reader never gets near it.
pub const MAX_QUEUED_BYTES: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Item(ItemId),
    Auction(AuctionId),
}

impl Topic {
    pub fn parse(text: &str) -> Option<Topic> {
        let (kind, id) = text.split_once(':')?;
        match kind {
            "item" => id.parse().ok().map(Topic::Item),
            "auction" => id.parse().ok().map(Topic::Auction),
            _ => None,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Topic::Item(i) => format!("item:{i}"),
            Topic::Auction(a) => format!("auction:{a}"),
        }
    }
}

/// What is waiting to be written to one connection.
#[derive(Default)]
struct Outbox {
    queue: VecDeque<Utf8Bytes>,
    /// The latest price message per item: a newer one replaces the older (conflation).
    prices: Vec<(ItemId, Utf8Bytes)>,
    bytes: usize,
    overflowed: bool,
}

/// One live WebSocket connection, as the hub sees it.
pub struct Conn {
    pub id: u64,
    /// The signed-in user, for `outbid` notices.
    pub user: Option<UserId>,
    outbox: Mutex<Outbox>,
    notify: Notify,
    /// Bids sent on this connection and not yet answered.
    bids_in_flight: AtomicU32,
    /// From a bid frame read to its answer queued (`auuction_bid_answer_seconds`).
    answer_seconds: Histogram,
}

/// A bid's answer goes straight into the outbox as a `bid_result`.
impl AnswerSink for Conn {
    fn answer(&self, reference: Option<&str>, received: std::time::Instant, reply: &BidReply) {
        self.push(protocol::bid_result(reference, reply));
        self.bid_answered();
        self.answer_seconds
            .observe(received.elapsed().as_secs_f64());
    }
}

/// What the connection's writer takes from its outbox in one go.
pub struct Drained {
    pub messages: Vec<Utf8Bytes>,
    pub overflowed: bool,
}

impl Conn {
    /// Counts a bid as sent, unless `limit` are already waiting for their answers.
    pub fn bid_started(&self, limit: u32) -> bool {
        self.bids_in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// A bid's answer was queued (called by its responder).
    pub fn bid_answered(&self) {
        let _ = self
            .bids_in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Queues a message. (A std mutex: it is held for a push, never across an await.)
    pub fn push(&self, message: Utf8Bytes) {
        {
            let mut out = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
            if out.overflowed {
                // It is being disconnected; queuing more would only hold memory.
                return;
            }
            out.bytes += message.len();
            out.queue.push_back(message);
            if out.bytes > MAX_QUEUED_BYTES {
                out.overflowed = true;
            }
        }
        self.notify.notify_one();
    }

    /// Sets the item's latest price, replacing one not yet written.
    pub fn push_price(&self, item: ItemId, message: Utf8Bytes) {
        {
            let mut out = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
            let len = message.len();
            if let Some(slot) = out.prices.iter_mut().find(|(i, _)| *i == item) {
                let old = std::mem::replace(&mut slot.1, message);
                out.bytes = out.bytes + len - old.len();
            } else {
                out.prices.push((item, message));
                out.bytes += len;
            }
            if out.bytes > MAX_QUEUED_BYTES {
                out.overflowed = true;
            }
        }
        self.notify.notify_one();
    }

    /// Waits until something is queued.
    pub async fn ready(&self) {
        self.notify.notified().await
    }

    /// Takes everything queued: ordinary messages first, then the latest prices.
    pub fn drain(&self) -> Drained {
        let mut out = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        let mut messages: Vec<Utf8Bytes> = out.queue.drain(..).collect();
        messages.extend(out.prices.drain(..).map(|(_, m)| m));
        out.bytes = 0;
        Drained {
            messages,
            overflowed: std::mem::take(&mut out.overflowed),
        }
    }
}

type Subscribers = Arc<DashMap<u64, Arc<Conn>>>;

/// Topics and their subscribers. It keeps no state of its own: snapshots come from the
/// engine's read model (committed state only).
pub struct Hub {
    next_id: AtomicU64,
    topics: DashMap<Topic, Subscribers>,
    /// Connections of each signed-in user, for `outbid`.
    users: DashMap<UserId, Vec<Arc<Conn>>>,
    connections: AtomicU64,
    answer_seconds: Histogram,
}

impl Hub {
    /// A hub whose connections count their answers' latency in `answer_seconds`.
    pub fn new(answer_seconds: Histogram) -> Hub {
        Hub {
            next_id: AtomicU64::new(0),
            topics: DashMap::new(),
            users: DashMap::new(),
            connections: AtomicU64::new(0),
            answer_seconds,
        }
    }

    pub fn connect(&self, user: Option<UserId>) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user,
            outbox: Mutex::new(Outbox::default()),
            notify: Notify::new(),
            bids_in_flight: AtomicU32::new(0),
            answer_seconds: self.answer_seconds.clone(),
        });
        if let Some(u) = user {
            self.users.entry(u).or_default().push(conn.clone());
        }
        self.connections.fetch_add(1, Ordering::Relaxed);
        conn
    }

    pub fn disconnect(&self, conn: &Conn, topics: &[Topic]) {
        for topic in topics {
            self.unsubscribe(conn, *topic);
        }
        if let Some(u) = conn.user {
            if let dashmap::mapref::entry::Entry::Occupied(mut e) = self.users.entry(u) {
                e.get_mut().retain(|c| c.id != conn.id);
                if e.get().is_empty() {
                    e.remove();
                }
            }
        }
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn connection_count(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn subscribe(&self, conn: &Arc<Conn>, topic: Topic) {
        self.topics
            .entry(topic)
            .or_default()
            .insert(conn.id, conn.clone());
    }

    pub fn unsubscribe(&self, conn: &Conn, topic: Topic) {
        if let Some(subs) = self.topics.get(&topic) {
            subs.remove(&conn.id);
        }
        // Drop the topic when it has nobody left, or the map would keep every topic ever named.
        self.topics.remove_if(&topic, |_, subs| subs.is_empty());
    }

    fn subscribers(&self, topic: Topic) -> Option<Subscribers> {
        // Clone the Arc and let go of the map's lock before fanning out.
        self.topics.get(&topic).map(|s| s.clone())
    }

    pub fn subscriber_count(&self, topic: Topic) -> usize {
        self.subscribers(topic).map(|s| s.len()).unwrap_or(0)
    }

    /// Sends an item's price to its topic and its auction's topic, serialised once and
    /// only when someone follows either. Conflated per connection.
    fn send_price(&self, state: &ItemState) {
        let mut price: Option<Utf8Bytes> = None;
        for topic in [Topic::Item(state.item), Topic::Auction(state.auction)] {
            if let Some(subs) = self.subscribers(topic) {
                let price = price.get_or_insert_with(|| protocol::price(state));
                for conn in subs.iter() {
                    conn.push_price(state.item, price.clone());
                }
            }
        }
    }

    pub fn publish(&self, topic: Topic, message: Utf8Bytes) {
        if let Some(subs) = self.subscribers(topic) {
            for conn in subs.iter() {
                conn.push(message.clone());
            }
        }
    }
}

/// The engine's committed changes, told to subscribers.
impl Publisher for Hub {
    fn item_changed(&self, state: &ItemState) {
        self.send_price(state);
    }

    fn extended(&self, state: &ItemState) {
        self.publish(
            Topic::Item(state.item),
            protocol::closing(state.item, state.closes_at, false),
        );
    }

    fn outbid(&self, user: UserId, state: &ItemState) {
        if let Some(conns) = self.users.get(&user) {
            let message = protocol::outbid(state);
            for conn in conns.iter() {
                conn.push(message.clone());
            }
        }
    }

    fn closed(&self, item: ItemId, closes_at: DateTime<Utc>) {
        self.publish(Topic::Item(item), protocol::closing(item, closes_at, true));
    }

    fn auction_state(&self, auction: AuctionId, state: AuctionState) {
        self.publish(
            Topic::Auction(auction),
            protocol::auction_state(auction, state),
        );
    }
}

impl Default for Hub {
    /// A hub with a histogram of its own (tests).
    fn default() -> Hub {
        Hub::new(Histogram::new([0.001, 0.01, 0.1, 1.0]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_conflate_per_item_and_other_messages_queue() {
        let hub = Hub::default();
        let conn = hub.connect(None);
        conn.push_price(ItemId(1), Utf8Bytes::from("p1-old"));
        conn.push_price(ItemId(2), Utf8Bytes::from("p2"));
        conn.push_price(ItemId(1), Utf8Bytes::from("p1-new"));
        conn.push(Utf8Bytes::from("ack"));
        let drained = conn.drain();
        let texts: Vec<&str> = drained.messages.iter().map(|m| m.as_str()).collect();
        assert_eq!(texts, ["ack", "p1-new", "p2"]);
        assert!(!drained.overflowed);
        assert!(conn.drain().messages.is_empty());
    }

    #[test]
    fn a_reader_that_stays_behind_overflows() {
        let hub = Hub::default();
        let conn = hub.connect(None);
        let big = "x".repeat(64 * 1024);
        for _ in 0..5 {
            conn.push(Utf8Bytes::from(big.clone()));
        }
        assert!(conn.drain().overflowed);
    }

    #[test]
    fn topics_parse() {
        assert_eq!(Topic::parse("item:it_5"), Some(Topic::Item(ItemId(5))));
        assert_eq!(
            Topic::parse("auction:a_2"),
            Some(Topic::Auction(AuctionId(2)))
        );
        assert_eq!(Topic::parse("item:u_5"), None);
        assert_eq!(Topic::parse("user:1"), None);
        assert_eq!(Topic::Item(ItemId(5)).name(), "item:it_5");
    }
}

#[cfg(test)]
mod topic_tests {
    use super::*;

    #[test]
    fn a_topic_with_nobody_left_is_forgotten() {
        let hub = Hub::default();
        let conn = hub.connect(None);
        let topic = Topic::Item(ItemId(9));
        hub.subscribe(&conn, topic);
        assert_eq!(hub.subscriber_count(topic), 1);
        hub.unsubscribe(&conn, topic);
        assert_eq!(hub.subscriber_count(topic), 0);
        assert!(hub.topics.is_empty());
    }
}
