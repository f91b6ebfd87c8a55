//! Prometheus metrics: the registry and its handles, served as text at `/metrics`. Only
//! the registry: what feeds it lives where the events happen (`http::ops::track` counts
//! requests, the journal its commits, the socket its bid answers).

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// One notification's send ended (or paused) this way.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// The notification type (`outbid`, `win`, ...).
    pub kind: String,
    pub channel: String,
    /// `sent`, `retried`, `failed` or `skipped`.
    pub outcome: &'static str,
}

/// The notification outbox: what its workers did, and what waits.
#[derive(Clone, Default)]
pub struct NotificationMetrics {
    pub outcomes: Family<NotificationLabels, Counter>,
    /// Rows due now and not yet sent (as last seen by a worker, every few seconds).
    pub queue_depth: Gauge,
    /// How long the oldest due row has waited, in seconds.
    pub oldest_due_seconds: Gauge<f64, AtomicU64>,
}

pub struct Metrics {
    registry: Registry,
    pub notifications: NotificationMetrics,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Histogram,
    pub resident_memory: Gauge<f64, AtomicU64>,
    pub emails_sent: Counter,
    /// Requests answered "the database is not answering" (503 `storage_unavailable`): an
    /// outage, not a bug, so apart from the 500s.
    pub outage_answers: Counter,
    pub journal: JournalMetrics,
    /// From a WebSocket bid frame read to its answer queued for the socket, for every answer
    /// (refusals too): the server's share of a bidder's wait, the shard's and journal's
    /// queues and the commit included, the frame's decoding and the socket write not.
    pub bid_answer_seconds: Histogram,
    pub live: LiveMetrics,
}

/// The live (WebSocket) edge: how many connections, topics and subscriptions it holds, and
/// what its limits turned away. Cheap to clone; the hub holds a copy.
#[derive(Clone, Default)]
pub struct LiveMetrics {
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// Topics with at least one subscriber.
    pub topics: Gauge,
    /// Subscriptions (connection, topic) in all.
    pub subscriptions: Gauge,
    /// Snapshots built (a cached one served again is not counted).
    pub snapshots_built: Counter,
    /// Upgrades refused because the address holds too many sockets.
    pub sockets_refused: Counter,
    /// Frames or subscriptions refused by a connection's limits.
    pub frames_refused: Counter,
}

/// The bid journal's group commits: how big they are and how long they take. Cheap to
/// clone (each metric is shared); every journal task holds a copy.
#[derive(Clone)]
pub struct JournalMetrics {
    /// Entries (answered bids) per commit: large batches mean the group commit is working.
    pub batch_entries: Histogram,
    /// Time of one commit statement, from send to Postgres's answer (fsync included).
    pub commit_seconds: Histogram,
    /// Commits that failed (every bid in them was answered `storage_unavailable`).
    pub failed_commits: Counter,
}

impl Default for JournalMetrics {
    fn default() -> Self {
        JournalMetrics {
            batch_entries: Histogram::new([
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0,
            ]),
            commit_seconds: Histogram::new([
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            failed_commits: Counter::default(),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("auuction");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        // Buckets from 0.5 ms to 5 s: the bid path is judged in milliseconds.
        let http_duration = Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            http_duration.clone(),
        );
        let resident_memory = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            resident_memory.clone(),
        );
        let emails_sent = Counter::default();
        registry.register(
            "emails_sent",
            "Emails handed to the mail transport",
            emails_sent.clone(),
        );
        let journal = JournalMetrics::default();
        registry.register(
            "journal_batch_entries",
            "Bids answered by one group commit of the bid journal",
            journal.batch_entries.clone(),
        );
        registry.register(
            "journal_commit_seconds",
            "Duration of one group commit of the bid journal",
            journal.commit_seconds.clone(),
        );
        registry.register(
            "journal_failed_commits",
            "Group commits of the bid journal that failed",
            journal.failed_commits.clone(),
        );
        // Fine below 10 ms, where the target for an ordinary evening lies (p99 <= 5 ms).
        let bid_answer_seconds = Histogram::new([
            0.00025, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1,
            0.25, 0.5, 1.0, 2.5,
        ]);
        registry.register(
            "bid_answer_seconds",
            "From a WebSocket bid frame read to its answer queued for the socket",
            bid_answer_seconds.clone(),
        );
        let outage_answers = Counter::default();
        registry.register(
            "outage_answers",
            "Requests answered 503 storage_unavailable: the database was not answering",
            outage_answers.clone(),
        );
        let live = LiveMetrics::default();
        registry.register(
            "ws_connections",
            "Open WebSocket connections",
            live.connections.clone(),
        );
        registry.register(
            "ws_topics",
            "WebSocket topics with at least one subscriber",
            live.topics.clone(),
        );
        registry.register(
            "ws_subscriptions",
            "WebSocket subscriptions (connection, topic)",
            live.subscriptions.clone(),
        );
        registry.register(
            "ws_snapshots_built",
            "Topic snapshots built (cached ones served again are not counted)",
            live.snapshots_built.clone(),
        );
        registry.register(
            "ws_sockets_refused",
            "WebSocket upgrades refused: too many sockets from one address",
            live.sockets_refused.clone(),
        );
        registry.register(
            "ws_frames_refused",
            "WebSocket frames or subscriptions refused by a connection's limits",
            live.frames_refused.clone(),
        );
        let notifications = NotificationMetrics::default();
        registry.register(
            "notifications",
            "Notification sends by type, channel and outcome (sent, retried, failed, skipped)",
            notifications.outcomes.clone(),
        );
        registry.register(
            "notifications_queue_depth",
            "Notifications due now and not yet sent",
            notifications.queue_depth.clone(),
        );
        registry.register(
            "notifications_oldest_due_seconds",
            "How long the oldest due notification has waited",
            notifications.oldest_due_seconds.clone(),
        );
        Metrics {
            notifications,
            outage_answers,
            live,
            journal,
            bid_answer_seconds,
            registry,
            http_requests,
            http_duration,
            resident_memory,
            emails_sent,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        if let Some(rss) = resident_memory_bytes() {
            self.resident_memory.set(rss as f64);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Resident set size from /proc (Linux); None elsewhere.
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
