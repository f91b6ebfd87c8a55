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
use tokio::sync::Notify;

use crate::{
    domain::{AuctionId, AuctionState, ItemId},
    engine::messages::{closing_message, outbid_message, ItemState},
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
    pub user: Option<i64>,
    outbox: Mutex<Outbox>,
    notify: Notify,
    /// Bids sent on this connection and not yet answered.
    bids_in_flight: AtomicU32,
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

/// Topics, subscribers, and the last committed state of every live item.
#[derive(Default)]
pub struct Hub {
    next_id: AtomicU64,
    topics: DashMap<Topic, Subscribers>,
    /// Connections of each signed-in user, for `outbid`.
    users: DashMap<i64, Vec<Arc<Conn>>>,
    /// The committed state of each item: snapshots on subscribe come from here, never from
    /// a shard's book (which may hold bids not yet committed).
    latest: DashMap<ItemId, ItemState>,
    auctions: DashMap<AuctionId, AuctionState>,
    connections: AtomicU64,
}

impl Hub {
    pub fn connect(&self, user: Option<i64>) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user,
            outbox: Mutex::new(Outbox::default()),
            notify: Notify::new(),
            bids_in_flight: AtomicU32::new(0),
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

    /// The committed snapshot of an item, if its book is loaded.
    pub fn item_state(&self, item: ItemId) -> Option<ItemState> {
        self.latest.get(&item).map(|s| s.clone())
    }

    /// The committed states of an auction's loaded items (the manager's dashboard snapshot).
    pub fn auction_items(&self, auction: AuctionId) -> Vec<ItemState> {
        let mut items: Vec<ItemState> = self
            .latest
            .iter()
            .filter(|e| e.auction == auction)
            .map(|e| e.clone())
            .collect();
        items.sort_by_key(|s| s.item);
        items
    }

    pub fn auction_state(&self, auction: AuctionId) -> Option<AuctionState> {
        self.auctions.get(&auction).map(|s| *s)
    }

    /// Records an item's committed state without telling anyone (a book was loaded).
    pub fn set_item_state(&self, state: ItemState) {
        self.latest.insert(state.item, state);
    }

    /// A committed change of an item: price to its topic and its auction's topic, the
    /// outbid notice to the bidder who lost the lead, a closing notice on extension.
    /// Called only after the journal committed it.
    pub fn publish_committed(&self, state: ItemState, outbid: Option<i64>, extended: bool) {
        // The journal's fan-out runs behind its commits. A book reloaded from Postgres in
        // the meantime (a calendar change) has already published this seq or a later one,
        // read after the commit: that state is newer, and the price and closing time must
        // not step back to this one. The outbid notice is still news to its bidder.
        let newer = self.publish_state_if(state.clone(), |latest| latest.seq < state.seq);
        if newer && extended {
            self.publish(
                Topic::Item(state.item),
                closing_message(state.item, state.closes_at, false),
            );
        }
        self.notify_outbid(&state, outbid);
    }

    /// A book reloaded from Postgres (after a calendar change or a failed write): its state
    /// is what is committed now, so it replaces whatever was published, even at the same seq.
    pub fn publish_reloaded(&self, state: ItemState) {
        self.publish_state_if(state, |_| true);
    }

    fn notify_outbid(&self, state: &ItemState, outbid: Option<i64>) {
        if let Some(user) = outbid {
            if let Some(conns) = self.users.get(&user) {
                let message = outbid_message(state);
                for conn in conns.iter() {
                    conn.push(message.clone());
                }
            }
        }
    }

    /// Records the item's state and sends its price, unless `replaces` says the recorded one
    /// is newer. Returns whether it did. The check, the record and the sends happen under
    /// the item's entry lock, so of two publishers racing (the fan-out and a reload) the
    /// last price sent is always the recorded one.
    fn publish_state_if(
        &self,
        state: ItemState,
        replaces: impl FnOnce(&ItemState) -> bool,
    ) -> bool {
        use dashmap::mapref::entry::Entry;
        // The committed state is recorded before anyone is told: a client subscribing in
        // between then gets this state in its snapshot instead of missing it.
        let recorded = match self.latest.entry(state.item) {
            Entry::Occupied(mut entry) => {
                if !replaces(entry.get()) {
                    return false;
                }
                entry.insert(state);
                entry.into_ref()
            }
            Entry::Vacant(entry) => entry.insert(state),
        };
        let state = recorded.value();
        // Serialised once, and only when someone follows the item or its auction.
        let mut price: Option<Utf8Bytes> = None;
        for topic in [Topic::Item(state.item), Topic::Auction(state.auction)] {
            if let Some(subs) = self.subscribers(topic) {
                let price = price.get_or_insert_with(|| state.price_message());
                for conn in subs.iter() {
                    conn.push_price(state.item, price.clone());
                }
            }
        }
        true
    }

    /// The item closed (its deadline passed with no extension pending).
    pub fn publish_closed(&self, item: ItemId, closes_at: DateTime<Utc>) {
        self.publish(Topic::Item(item), closing_message(item, closes_at, true));
    }

    pub fn publish_auction_state(&self, auction: AuctionId, state: AuctionState) {
        self.auctions.insert(auction, state);
        let message = crate::ws::protocol::auction_state_message(auction, state);
        self.publish(Topic::Auction(auction), message);
    }

    pub fn publish(&self, topic: Topic, message: Utf8Bytes) {
        if let Some(subs) = self.subscribers(topic) {
            for conn in subs.iter() {
                conn.push(message.clone());
            }
        }
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

    fn state(seq: u64, closes_in_hours: i64) -> ItemState {
        ItemState {
            item: ItemId(1),
            auction: AuctionId(1),
            price: None,
            next_minimum: crate::domain::Cents(5_00),
            opening: crate::domain::Cents(5_00),
            bid_count: seq,
            seq,
            leader_paddle: None,
            closes_at: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::hours(closes_in_hours),
        }
    }

    #[test]
    fn a_late_fan_out_never_steps_back_over_a_reloaded_book() {
        let hub = Hub::default();
        let conn = hub.connect(Some(7));
        hub.set_item_state(state(1, 1));
        hub.subscribe(&conn, Topic::Item(ItemId(1)));
        // Seq 2 committed; before the journal's fan-out publishes it, a calendar change
        // reloads the book, which reads seq 2 and the new close.
        hub.publish_reloaded(state(2, 3));
        hub.publish_committed(state(2, 1), Some(7), false);
        assert_eq!(hub.item_state(ItemId(1)), Some(state(2, 3)));
        let sent: Vec<String> = conn
            .drain()
            .messages
            .iter()
            .map(|m| m.as_str().to_string())
            .collect();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(
            sent[0].contains(r#""type":"outbid""#),
            "still news: {sent:?}"
        );
        assert!(sent[1].contains(r#""type":"price""#), "{sent:?}");
        assert!(
            sent[1].contains("1970-01-01T03:00:00"),
            "the reloaded close: {sent:?}"
        );
        // A newer commit is published as usual.
        hub.publish_committed(state(3, 3), None, false);
        assert_eq!(hub.item_state(ItemId(1)).map(|s| s.seq), Some(3));
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
