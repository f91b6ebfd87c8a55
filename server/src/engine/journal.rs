//! The write-through journal with group commit.
//!
//! Each shard has one journal task. Entries arrive in the order the shard applied them;
//! the journal takes every entry waiting (up to [`MAX_BATCH`]) and writes them all in ONE
//! SQL statement: bids, the items' new state, idempotency answers and outbid emails
//! (multi-row `UNNEST` inserts in data-modifying CTEs, so one round trip and one fsync).
//! Only after the commit are the bidders answered and the changes fanned out; so throughput
//! grows with concurrency instead of stopping at one fsync per bid.
//!
//! When a write fails, the journal moves to a new *generation*: it answers every entry of
//! the failed batch, and every later entry still carrying the old generation, with
//! `storage_unavailable`. The shard sees the new generation before its next command and
//! reloads from Postgres every item it touched, so its books never keep a bid that is not
//! in the table.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{Cents, ItemId, UserId},
    engine::{messages::ItemState, BidReply, Responder},
    metrics::JournalMetrics,
    ws::hub::Hub,
};

/// The most entries in one statement. Large enough that a storm's batches are big, small
/// enough that one statement stays well under a few milliseconds of work.
pub const MAX_BATCH: usize = 2048;
/// How long opening the journal's connection may take before the batch is refused.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection unused for this long is pinged before the next commit.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections are renewed after this long, as the pool renews its own.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Entries that may wait for the journal. When full, the shard waits: backpressure.
const QUEUE: usize = 16384;

/// One accepted bid, as written to `bids`.
#[derive(Clone, Debug)]
pub struct BidRow {
    pub item: ItemId,
    pub bidder: UserId,
    pub amount: Cents,
    pub max_proxy: Option<Cents>,
    pub seq: u64,
    pub at: DateTime<Utc>,
}

/// An idempotency key and the answer to store with it.
#[derive(Clone, Debug)]
pub struct KeyRecord {
    pub user: UserId,
    pub key: String,
    pub hash: [u8; 32],
}

pub enum Change {
    Accepted {
        bid: BidRow,
        state: ItemState,
        leader: i64,
        /// The bidder who lost the lead: an outbid email row and an `outbid` message.
        outbid: Option<i64>,
        extended: bool,
    },
    /// A refusal that carries an idempotency key: only the answer is stored.
    Refused,
}

pub struct Entry {
    pub generation: u64,
    pub change: Change,
    pub key: Option<KeyRecord>,
    pub response: BidReply,
    pub reply: Responder,
}

/// The shard's side of its journal.
pub struct JournalHandle {
    pub tx: mpsc::Sender<Entry>,
    /// Bumped by the journal after a failed write; the shard compares it before each command.
    pub generation: Arc<AtomicU64>,
}

pub fn spawn(
    db: PgPool,
    hub: Arc<Hub>,
    metrics: JournalMetrics,
    shutdown: CancellationToken,
) -> (JournalHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let generation = Arc::new(AtomicU64::new(0));
    let (fanout_tx, fanout_rx) = mpsc::channel::<Vec<Published>>(1024);
    tokio::spawn(fanout(hub, fanout_rx));
    let journal = Journal {
        db,
        conn: None,
        rx,
        generation: generation.clone(),
        fanout: fanout_tx,
        metrics,
    };
    let task = tokio::spawn(journal.run(shutdown));
    (JournalHandle { tx, generation }, task)
}

/// The journal's connection and when it was opened and last used.
struct JournalConnection {
    conn: PgConnection,
    opened: Instant,
    used: Instant,
}

struct Journal {
    db: PgPool,
    /// The journal's own connection, opened on first use and after a failed write. Not a
    /// pool's: acquiring from a pool costs a health-check round trip per commit, and a
    /// connection kept for one statement keeps it prepared.
    conn: Option<JournalConnection>,
    rx: mpsc::Receiver<Entry>,
    generation: Arc<AtomicU64>,
    fanout: mpsc::Sender<Vec<Published>>,
    metrics: JournalMetrics,
}

/// What subscribers hear of one committed change.
struct Published {
    state: ItemState,
    outbid: Option<i64>,
    extended: bool,
}

impl Journal {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut batch: Vec<Entry> = Vec::with_capacity(MAX_BATCH);
        loop {
            // On shutdown the shard stops first; drain what it already sent, then stop.
            let first = tokio::select! {
                entry = self.rx.recv() => entry,
                _ = shutdown.cancelled(), if self.rx.is_empty() => None,
            };
            let Some(first) = first else { return };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(entry) => batch.push(entry),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch).await;
        }
    }

    /// The journal's connection, opening it if needed (with the pool's settings, among them
    /// the server-side statement timeout). One that sat idle is pinged first, and an old
    /// one is replaced: a connection that died quietly (a restarted database, a dropped
    /// route) must fail here, where nothing was sent yet, not hang or fail in the middle of
    /// a commit, whose outcome would then be unknown.
    async fn connection(&mut self) -> sqlx::Result<&mut PgConnection> {
        let now = Instant::now();
        let mut kept = self
            .conn
            .take()
            .filter(|c| now.duration_since(c.opened) < CONNECTION_LIFETIME);
        if let Some(c) = kept.as_mut() {
            if now.duration_since(c.used) > IDLE_BEFORE_PING
                && !matches!(
                    tokio::time::timeout(PING_TIMEOUT, c.conn.ping()).await,
                    Ok(Ok(()))
                )
            {
                kept = None;
            }
        }
        let mut c = match kept {
            Some(c) => c,
            None => {
                // The journal runs one statement, thousands of times a second: plan it
                // once. With Postgres's default, its parameters (arrays) keep it on custom
                // plans, planned anew at every commit, which cost more CPU than a small
                // batch's rows.
                let options = self
                    .db
                    .connect_options()
                    .as_ref()
                    .clone()
                    .options([("plan_cache_mode", "force_generic_plan")]);
                let conn = match tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    PgConnection::connect_with(&options),
                )
                .await
                {
                    Ok(conn) => conn?,
                    Err(_) => return Err(sqlx::Error::PoolTimedOut),
                };
                JournalConnection {
                    conn,
                    opened: now,
                    used: now,
                }
            }
        };
        c.used = now;
        Ok(&mut self.conn.insert(c).conn)
    }

    async fn commit(&mut self, batch: &mut Vec<Entry>) {
        let current = self.generation.load(Ordering::Acquire);
        // Entries the shard made before it learnt of a failure are built on a book that held
        // failed bids: refuse them, the shard reloads those items.
        let (live, stale): (Vec<Entry>, Vec<Entry>) =
            batch.drain(..).partition(|e| e.generation == current);
        for entry in stale {
            entry.reply.send(BidReply::storage_unavailable());
        }
        if live.is_empty() {
            return;
        }
        // A batch of refusals only (nothing to store) needs no round trip: the batches before
        // it have committed, which is all its answers wait for.
        let needs_write = live
            .iter()
            .any(|e| e.key.is_some() || matches!(e.change, Change::Accepted { .. }));
        // No client-side timeout here: dropping a statement that Postgres is still running
        // would leave its outcome unknown (it may commit after we said "not recorded"). The
        // pool's server-side `statement_timeout` (store::connect) makes a hung write fail
        // definitely, and the pool's acquire timeout bounds waiting for a connection.
        let written: sqlx::Result<()> = if needs_write {
            let started = Instant::now();
            let written = match self.connection().await {
                Ok(conn) => write(conn, &live).await,
                Err(e) => Err(e),
            };
            if written.is_err() {
                // Whatever state the connection is in, the next batch starts on a new one.
                self.conn = None;
            }
            self.metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
            self.metrics.batch_entries.observe(live.len() as f64);
            written
        } else {
            Ok(())
        };
        match written {
            Ok(()) => {
                let mut published = Vec::new();
                for entry in live {
                    if let Change::Accepted {
                        state,
                        outbid,
                        extended,
                        ..
                    } = entry.change
                    {
                        published.push(Published {
                            state,
                            outbid,
                            extended,
                        });
                    }
                    entry.reply.send(entry.response);
                }
                if !published.is_empty() {
                    let _ = self.fanout.send(published).await;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, entries = live.len(), "journal write failed");
                self.metrics.failed_commits.inc();
                self.generation.fetch_add(1, Ordering::AcqRel);
                for entry in live {
                    entry.reply.send(BidReply::storage_unavailable());
                }
            }
        }
    }
}

/// Publishes committed changes, off the journal's path: the next batch commits while this
/// one fans out. Within a batch only an item's last price is sent (it supersedes the rest).
async fn fanout(hub: Arc<Hub>, mut rx: mpsc::Receiver<Vec<Published>>) {
    while let Some(batch) = rx.recv().await {
        let mut last: HashMap<ItemId, usize> = HashMap::new();
        for (i, p) in batch.iter().enumerate() {
            last.insert(p.state.item, i);
        }
        for (i, p) in batch.iter().enumerate() {
            let is_last = last.get(&p.state.item) == Some(&i);
            if is_last || p.outbid.is_some() || p.extended {
                hub.publish_committed(p.state.clone(), p.outbid, p.extended);
            }
        }
    }
}

/// Writes a batch in one statement (so one implicit transaction): all of it or none.
async fn write(db: &mut PgConnection, entries: &[Entry]) -> sqlx::Result<()> {
    let mut bid_item = Vec::new();
    let mut bid_bidder = Vec::new();
    let mut bid_amount = Vec::new();
    let mut bid_max: Vec<Option<i64>> = Vec::new();
    let mut bid_seq = Vec::new();
    let mut bid_at = Vec::new();
    // The last state of each item in the batch (an UPDATE … FROM must not see an item twice).
    let mut states: HashMap<ItemId, (&ItemState, i64)> = HashMap::new();
    let mut key_user = Vec::new();
    let mut key_key = Vec::new();
    let mut key_hash = Vec::new();
    let mut key_status = Vec::new();
    let mut key_body = Vec::new();
    let mut notice_user = Vec::new();
    let mut notice_payload = Vec::new();
    let mut notice_item = Vec::new();
    let mut notice_at: HashMap<(i64, i64), usize> = HashMap::new();
    for entry in entries {
        if let Change::Accepted {
            bid,
            state,
            leader,
            outbid,
            ..
        } = &entry.change
        {
            bid_item.push(bid.item.0);
            bid_bidder.push(bid.bidder.0);
            bid_amount.push(bid.amount.0);
            bid_max.push(bid.max_proxy.map(|m| m.0));
            bid_seq.push(bid.seq as i64);
            bid_at.push(bid.at);
            states.insert(bid.item, (state, *leader));
            if let Some(user) = outbid {
                // One waiting email per bidder and item: the latest outbid of the batch wins
                // here, and the statement's upsert folds it into one already waiting.
                let payload = serde_json::json!({
                    "itemId": bid.item,
                    "currentBidCents": state.price.map(|p| p.0),
                    "nextMinimumCents": state.next_minimum.0,
                    "seq": state.seq,
                });
                match notice_at.entry((*user, bid.item.0)) {
                    std::collections::hash_map::Entry::Occupied(at) => {
                        notice_payload[*at.get()] = payload;
                    }
                    std::collections::hash_map::Entry::Vacant(at) => {
                        at.insert(notice_user.len());
                        notice_user.push(*user);
                        notice_item.push(bid.item.0);
                        notice_payload.push(payload);
                    }
                }
            }
        }
        if let Some(key) = &entry.key {
            key_user.push(key.user.0);
            key_key.push(key.key.clone());
            key_hash.push(key.hash.to_vec());
            key_status.push(entry.response.status.as_u16() as i16);
            key_body.push(entry.response.body.to_string());
        }
    }
    let mut item_id = Vec::new();
    let mut item_price = Vec::new();
    let mut item_count = Vec::new();
    let mut item_leader = Vec::new();
    let mut item_seq = Vec::new();
    let mut item_closes = Vec::new();
    for (id, (state, leader)) in states {
        item_id.push(id.0);
        item_price.push(state.price.map(|p| p.0));
        item_count.push(state.bid_count as i32);
        item_leader.push(leader);
        item_seq.push(state.seq as i64);
        item_closes.push(state.closes_at);
    }
    // Idempotency keys are inserted without ON CONFLICT: a key is claimed once in memory, so
    // a stored one can only collide after a write whose outcome was unknown (a connection
    // lost mid-commit that did commit). Then the whole batch fails and is refused, rather
    // than one key ending up with two bids; the retry finds the stored answer.
    sqlx::query(
        "WITH new_bids AS (
             INSERT INTO bids (item_id, bidder_id, amount, max_proxy_amount, seq, created_at)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::timestamptz[])
         ), item_updates AS (
             INSERT INTO item_bidding (item_id, current_price, bid_count, leader_id, last_seq, closes_at)
             SELECT * FROM UNNEST($7::bigint[], $8::bigint[], $9::int[], $10::bigint[], $11::bigint[], $12::timestamptz[])
             ON CONFLICT (item_id) DO UPDATE SET current_price = EXCLUDED.current_price,
                    bid_count = EXCLUDED.bid_count, leader_id = EXCLUDED.leader_id,
                    last_seq = EXCLUDED.last_seq, closes_at = EXCLUDED.closes_at
         ), keys AS (
             INSERT INTO idempotency_keys (user_id, scope, key, request_hash, response_status, response_body)
             SELECT u.user_id, 'bid', u.key, u.hash, u.status, u.body
               FROM UNNEST($13::bigint[], $14::text[], $15::bytea[], $16::smallint[], $17::text[])
                    AS u(user_id, key, hash, status, body)
         ), notices AS (
             INSERT INTO notifications (user_id, channel, type, template_key, payload, related_entity_type, related_entity_id)
             SELECT u.user_id, 'email', 'outbid', 'outbid', u.payload, 'item', u.item_id
               FROM UNNEST($18::bigint[], $19::jsonb[], $20::bigint[]) AS u(user_id, payload, item_id)
             ON CONFLICT (user_id, related_entity_id) WHERE type = 'outbid' AND status = 'scheduled'
             DO UPDATE SET payload = EXCLUDED.payload
         )
         SELECT 1",
    )
    .bind(&bid_item)
    .bind(&bid_bidder)
    .bind(&bid_amount)
    .bind(&bid_max)
    .bind(&bid_seq)
    .bind(&bid_at)
    .bind(&item_id)
    .bind(&item_price)
    .bind(&item_count)
    .bind(&item_leader)
    .bind(&item_seq)
    .bind(&item_closes)
    .bind(&key_user)
    .bind(&key_key)
    .bind(&key_hash)
    .bind(&key_status)
    .bind(&key_body)
    .bind(&notice_user)
    .bind(&notice_payload)
    .bind(&notice_item)
    .execute(db)
    .await?;
    Ok(())
}
