//! Who hears what: topics (`item:<id>`, `auction:<id>`) and their subscribers, and the
//! snapshots a subscriber gets first.
//!
//! The hub keeps no auction state of its own: snapshots are built from the engine's read
//! model (committed state only) and cached per topic and version, so a client that
//! subscribes again and again (a reconnect storm, or someone hammering the socket) costs a
//! lookup, not a rebuild. It is the engine's [`Publisher`]: committed changes come in here
//! and go out to the subscribers' outboxes.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use dashmap::{mapref::entry::Entry, DashMap};
use prometheus_client::metrics::histogram::Histogram;

use crate::{
    domain::{AuctionId, AuctionState, Cents, ItemId, UserId},
    engine::{Engine, ItemState, Publisher},
    live::{
        outbox::{Latest, Outbox},
        protocol,
    },
    metrics::LiveMetrics,
};

/// How long an auction snapshot is served again while nothing in it changed: it carries
/// `serverTime`, which must stay close to the truth.
const AUCTION_SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Item(ItemId),
    Auction(AuctionId),
    /// The managers' live dashboard of an auction (staff only).
    Dashboard(AuctionId),
    /// The hall's projector of an auction (public: no staff numbers, paddles only).
    Display(AuctionId),
}

impl Topic {
    pub fn parse(text: &str) -> Option<Topic> {
        let (kind, id) = text.split_once(':')?;
        match kind {
            "item" => id.parse().ok().map(Topic::Item),
            "auction" => id.parse().ok().map(Topic::Auction),
            "dashboard" => id.parse().ok().map(Topic::Dashboard),
            "display" => id.parse().ok().map(Topic::Display),
            _ => None,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Topic::Item(i) => format!("item:{i}"),
            Topic::Auction(a) => format!("auction:{a}"),
            Topic::Dashboard(a) => format!("dashboard:{a}"),
            Topic::Display(a) => format!("display:{a}"),
        }
    }
}

type Subscribers = Arc<DashMap<u64, Arc<Outbox>>>;

/// What a cached snapshot was built from: it is served again only for the same.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Version {
    Item {
        state: ItemState,
        closed: bool,
    },
    Auction {
        version: u64,
        state: Option<AuctionState>,
    },
}

struct Cached {
    version: Version,
    made: Instant,
    message: Utf8Bytes,
}

/// Topics, subscribers and cached snapshots.
pub struct Hub {
    next_id: AtomicU64,
    topics: DashMap<Topic, Subscribers>,
    /// Connections of each signed-in user, for `outbid`.
    users: DashMap<UserId, Vec<Arc<Outbox>>>,
    /// Snapshots of live items and known auctions only, so their number is bounded by the
    /// catalog, whatever ids clients make up.
    snapshots: DashMap<Topic, Cached>,
    metrics: LiveMetrics,
    answer_seconds: Histogram,
}

impl Hub {
    /// A hub that counts into `metrics`, and whose connections count their answers'
    /// latency in `answer_seconds`.
    pub fn new(metrics: LiveMetrics, answer_seconds: Histogram) -> Hub {
        Hub {
            next_id: AtomicU64::new(0),
            topics: DashMap::new(),
            users: DashMap::new(),
            snapshots: DashMap::new(),
            metrics,
            answer_seconds,
        }
    }

    pub fn metrics(&self) -> &LiveMetrics {
        &self.metrics
    }

    pub fn connect(&self, user: Option<UserId>) -> Arc<Outbox> {
        let outbox = Arc::new(Outbox::new(
            self.next_id.fetch_add(1, Ordering::Relaxed),
            user,
            self.answer_seconds.clone(),
        ));
        if let Some(u) = user {
            self.users.entry(u).or_default().push(outbox.clone());
        }
        self.metrics.connections.inc();
        outbox
    }

    pub fn disconnect(&self, outbox: &Outbox, topics: impl IntoIterator<Item = Topic>) {
        for topic in topics {
            self.unsubscribe(outbox, topic);
        }
        if let Some(u) = outbox.user {
            if let Entry::Occupied(mut e) = self.users.entry(u) {
                e.get_mut().retain(|c| c.id != outbox.id);
                if e.get().is_empty() {
                    e.remove();
                }
            }
        }
        self.metrics.connections.dec();
    }

    pub fn connection_count(&self) -> i64 {
        self.metrics.connections.get()
    }

    /// Adds a subscriber; returns false when it already was one.
    pub fn subscribe(&self, outbox: &Arc<Outbox>, topic: Topic) -> bool {
        let subs = match self.topics.entry(topic) {
            Entry::Occupied(e) => e.get().clone(),
            Entry::Vacant(e) => {
                self.metrics.topics.inc();
                e.insert(Arc::default()).clone()
            }
        };
        let added = subs.insert(outbox.id, outbox.clone()).is_none();
        if added {
            self.metrics.subscriptions.inc();
        }
        added
    }

    pub fn unsubscribe(&self, outbox: &Outbox, topic: Topic) {
        if let Some(subs) = self.topics.get(&topic) {
            if subs.remove(&outbox.id).is_some() {
                self.metrics.subscriptions.dec();
            }
        }
        // Drop the topic when it has nobody left, or the map would keep every topic ever named.
        if self
            .topics
            .remove_if(&topic, |_, subs| subs.is_empty())
            .is_some()
        {
            self.metrics.topics.dec();
        }
    }

    fn subscribers(&self, topic: Topic) -> Option<Subscribers> {
        // Clone the Arc and let go of the map's lock before fanning out.
        self.topics.get(&topic).map(|s| s.clone())
    }

    pub fn subscriber_count(&self, topic: Topic) -> usize {
        self.subscribers(topic).map(|s| s.len()).unwrap_or(0)
    }

    /// The snapshot of a topic as committed now, from the cache when nothing changed since
    /// it was built. `None` for an item that is not live.
    pub fn snapshot(&self, topic: Topic, engine: &Engine, now: DateTime<Utc>) -> Option<Utf8Bytes> {
        let version = match topic {
            Topic::Item(item) => {
                let state = engine.committed_state(item)?;
                let closed = state.closed_at(now);
                Version::Item { state, closed }
            }
            Topic::Dashboard(auction) => {
                // Not cached: the dashboard's own task sends one every half second anyway.
                self.metrics.snapshots_built.inc();
                return Some(crate::live::dashboard::frame(
                    engine,
                    self,
                    auction,
                    now,
                    &crate::services::dashboard::Rates::default(),
                ));
            }
            Topic::Display(auction) => {
                // Not cached either: sent every half second while followed.
                self.metrics.snapshots_built.inc();
                return Some(crate::live::dashboard::display_frame(engine, auction, now));
            }
            Topic::Auction(auction) => {
                let state = engine.auction_state(auction);
                let version = engine.auction_version(auction);
                if state.is_none() && version == 0 {
                    // An auction the engine does not know: nothing to cache (and made-up
                    // ids must not grow the cache).
                    self.metrics.snapshots_built.inc();
                    return Some(protocol::auction_snapshot(auction, None, &[], now));
                }
                Version::Auction { version, state }
            }
        };
        let fresh = |cached: &Cached| {
            cached.version == version
                && (matches!(topic, Topic::Item(_))
                    || cached.made.elapsed() < AUCTION_SNAPSHOT_MAX_AGE)
        };
        if let Some(cached) = self.snapshots.get(&topic) {
            if fresh(&cached) {
                return Some(cached.message.clone());
            }
        }
        let message = match (&version, topic) {
            (Version::Item { state, .. }, _) => protocol::item_snapshot(state, now),
            (Version::Auction { state, .. }, Topic::Auction(auction)) => {
                protocol::auction_snapshot(auction, *state, &engine.auction_items(auction), now)
            }
            (Version::Auction { .. }, _) => return None,
        };
        self.metrics.snapshots_built.inc();
        self.snapshots.insert(
            topic,
            Cached {
                version,
                made: Instant::now(),
                message: message.clone(),
            },
        );
        Some(message)
    }

    /// Sends an item's price to its topic and its auction's topic, serialised once and
    /// only when someone follows either. Conflated per connection.
    fn send_price(&self, state: &ItemState) {
        let mut price: Option<Utf8Bytes> = None;
        for topic in [Topic::Item(state.item), Topic::Auction(state.auction)] {
            if let Some(subs) = self.subscribers(topic) {
                let price = price.get_or_insert_with(|| protocol::price(state));
                for outbox in subs.iter() {
                    outbox.push_price(state.item, price.clone());
                }
            }
        }
    }

    /// The auctions whose (dashboard, display) someone follows.
    pub fn followed_feeds(&self) -> (Vec<AuctionId>, Vec<AuctionId>) {
        let (mut dashboards, mut displays) = (Vec::new(), Vec::new());
        for e in self.topics.iter().filter(|e| !e.value().is_empty()) {
            match e.key() {
                Topic::Dashboard(a) => dashboards.push(*a),
                Topic::Display(a) => displays.push(*a),
                _ => {}
            }
        }
        (dashboards, displays)
    }

    /// Sends a display frame to its followers, replacing one they have not read yet.
    pub fn publish_display(&self, auction: AuctionId, message: Utf8Bytes) {
        if let Some(subs) = self.subscribers(Topic::Display(auction)) {
            for outbox in subs.iter() {
                outbox.push_latest(Latest::Display(auction), message.clone());
            }
        }
    }

    /// Sends a dashboard frame to its followers, replacing one they have not read yet.
    pub fn publish_dashboard(&self, auction: AuctionId, message: Utf8Bytes) {
        if let Some(subs) = self.subscribers(Topic::Dashboard(auction)) {
            for outbox in subs.iter() {
                outbox.push_latest(Latest::Dashboard(auction), message.clone());
            }
        }
    }

    pub fn publish(&self, topic: Topic, message: Utf8Bytes) {
        if let Some(subs) = self.subscribers(topic) {
            for outbox in subs.iter() {
                outbox.push(message.clone());
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
        if let Some(outboxes) = self.users.get(&user) {
            let message = protocol::outbid(state);
            for outbox in outboxes.iter() {
                outbox.push(message.clone());
            }
        }
    }

    fn item_closed(&self, state: &ItemState, winners: &[(UserId, Cents)]) {
        // `closing` with `closed: true` as before (clients know it), then the result.
        self.publish(
            Topic::Item(state.item),
            protocol::closing(state.item, state.closes_at, true),
        );
        let closed = protocol::closed(state, winners.len());
        self.publish(Topic::Item(state.item), closed.clone());
        self.publish(Topic::Auction(state.auction), closed);
        for (user, amount) in winners {
            if let Some(outboxes) = self.users.get(user) {
                let message = protocol::won(state.item, *amount);
                for outbox in outboxes.iter() {
                    outbox.push(message.clone());
                }
            }
        }
    }

    fn stock_changed(&self, state: &ItemState) {
        let capacity = protocol::capacity(state);
        self.publish(Topic::Item(state.item), capacity.clone());
        self.publish(Topic::Auction(state.auction), capacity);
    }

    fn auction_state(&self, auction: AuctionId, state: AuctionState) {
        self.publish(
            Topic::Auction(auction),
            protocol::auction_state(auction, state),
        );
    }
}

impl Default for Hub {
    /// A hub with metrics of its own (tests).
    fn default() -> Hub {
        Hub::new(
            LiveMetrics::default(),
            Histogram::new([0.001, 0.01, 0.1, 1.0]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            Topic::parse("display:a_3"),
            Some(Topic::Display(AuctionId(3)))
        );
        assert_eq!(Topic::Display(AuctionId(3)).name(), "display:a_3");
    }

    #[test]
    fn the_feeds_go_to_followed_auctions_only_and_are_conflated() {
        let hub = Hub::default();
        let guest = hub.connect(None);
        let desk = hub.connect(Some(UserId(2)));
        assert!(hub.subscribe(&guest, Topic::Display(AuctionId(1))));
        assert!(hub.subscribe(&desk, Topic::Dashboard(AuctionId(2))));
        assert!(hub.subscribe(&desk, Topic::Item(ItemId(9))));
        assert_eq!(
            hub.followed_feeds(),
            (vec![AuctionId(2)], vec![AuctionId(1)])
        );
        // A slow screen gets the latest frame, not a backlog; nobody else gets it.
        hub.publish_display(AuctionId(1), Utf8Bytes::from_static("one"));
        hub.publish_display(AuctionId(1), Utf8Bytes::from_static("two"));
        let got: Vec<String> = guest
            .drain()
            .messages
            .iter()
            .map(|m| m.as_str().to_string())
            .collect();
        assert_eq!(got, ["two"]);
        assert!(desk.drain().messages.is_empty());
        hub.unsubscribe(&guest, Topic::Display(AuctionId(1)));
        assert_eq!(hub.followed_feeds().1, Vec::<AuctionId>::new());
    }

    #[test]
    fn a_topic_with_nobody_left_is_forgotten_and_the_gauges_follow() {
        let hub = Hub::default();
        let a = hub.connect(None);
        let b = hub.connect(Some(UserId(3)));
        let topic = Topic::Item(ItemId(9));
        assert!(hub.subscribe(&a, topic));
        assert!(!hub.subscribe(&a, topic), "already subscribed");
        assert!(hub.subscribe(&b, topic));
        assert_eq!(hub.subscriber_count(topic), 2);
        assert_eq!(
            (hub.metrics.topics.get(), hub.metrics.subscriptions.get()),
            (1, 2)
        );
        hub.unsubscribe(&a, topic);
        hub.disconnect(&b, [topic]);
        assert_eq!(hub.subscriber_count(topic), 0);
        assert!(hub.topics.is_empty());
        assert!(hub.users.is_empty());
        assert_eq!(
            (
                hub.metrics.topics.get(),
                hub.metrics.subscriptions.get(),
                hub.metrics.connections.get()
            ),
            (0, 0, 1)
        );
    }
}
