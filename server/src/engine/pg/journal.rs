//! The journal's writes on Postgres: one statement per batch, on a connection of its own.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use sqlx::{Connection, PgConnection, PgPool};

use crate::{
    domain::{ItemId, UserId},
    engine::{
        journal::{Change, Record},
        pg::store_error,
        ports::{JournalStore, StoreError},
        state::ItemState,
    },
};

/// How long opening the journal's connection may take before the batch is refused.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection unused for this long is pinged before the next commit.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections are renewed after this long, as the pool renews its own.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// One shard's journal store: its own connection, opened on first use and after a failed
/// write. Not a pool's: acquiring from a pool costs a health-check round trip per commit,
/// and a connection kept for one statement keeps it prepared.
pub struct PgJournalStore {
    db: PgPool,
    conn: Option<JournalConnection>,
}

/// The journal's connection and when it was opened and last used.
struct JournalConnection {
    conn: PgConnection,
    opened: Instant,
    used: Instant,
}

impl PgJournalStore {
    pub fn new(db: PgPool) -> PgJournalStore {
        PgJournalStore { db, conn: None }
    }

    /// The journal's connection, opening it if needed (with the pool's settings, among them
    /// the server-side statement timeout). One that sat idle is pinged first, and an old
    /// one is replaced: a connection that died quietly (a restarted database, a dropped
    /// route) must fail here, where nothing was sent yet, not hang or fail in the middle of
    /// a commit, whose outcome would then be unknown.
    async fn connection(&mut self) -> Result<&mut PgConnection, StoreError> {
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
                    Ok(conn) => conn.map_err(|e| match store_error(e) {
                        // Whatever Postgres says while we connect, the data is not at fault.
                        StoreError::Rejected(why) => StoreError::Unavailable(why),
                        other => other,
                    })?,
                    Err(_) => {
                        return Err(StoreError::Unavailable(
                            "connecting to the database timed out".into(),
                        ))
                    }
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
}

impl JournalStore for PgJournalStore {
    async fn commit(&mut self, batch: &[Record]) -> Result<(), StoreError> {
        let written = match self.connection().await {
            Ok(conn) => write(conn, batch).await.map_err(store_error),
            Err(e) => Err(e),
        };
        if written.is_err() {
            // Whatever state the connection is in, the next batch starts on a new one.
            self.conn = None;
        }
        written
    }
}

/// Writes a batch in one statement (so one implicit transaction): all of it or none. Bids,
/// the items' new state, idempotency answers and outbid emails go in multi-row `UNNEST`
/// inserts in data-modifying CTEs: one round trip, one fsync.
async fn write(db: &mut PgConnection, records: &[Record]) -> sqlx::Result<()> {
    let mut bid_item = Vec::new();
    let mut bid_bidder = Vec::new();
    let mut bid_amount = Vec::new();
    let mut bid_max: Vec<Option<i64>> = Vec::new();
    let mut bid_seq = Vec::new();
    let mut bid_at = Vec::new();
    // The last state of each item in the batch (an UPDATE … FROM must not see an item twice).
    let mut states: HashMap<ItemId, (&ItemState, UserId)> = HashMap::new();
    let mut key_user = Vec::new();
    let mut key_key = Vec::new();
    let mut key_hash = Vec::new();
    let mut key_status = Vec::new();
    let mut key_body = Vec::new();
    let mut notice_user = Vec::new();
    let mut notice_payload = Vec::new();
    let mut notice_item = Vec::new();
    let mut notice_at: HashMap<(UserId, ItemId), usize> = HashMap::new();
    for record in records {
        if let Change::Accepted {
            bid,
            state,
            leader,
            outbid,
            ..
        } = &record.change
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
                match notice_at.entry((*user, bid.item)) {
                    std::collections::hash_map::Entry::Occupied(at) => {
                        notice_payload[*at.get()] = payload;
                    }
                    std::collections::hash_map::Entry::Vacant(at) => {
                        at.insert(notice_user.len());
                        notice_user.push(user.0);
                        notice_item.push(bid.item.0);
                        notice_payload.push(payload);
                    }
                }
            }
        }
        if let Some(key) = &record.key {
            key_user.push(key.user.0);
            key_key.push(key.key.as_str());
            key_hash.push(key.hash.as_slice());
            key_status.push(record.answer.status as i16);
            key_body.push(&*record.answer.body);
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
        item_leader.push(leader.0);
        item_seq.push(state.seq as i64);
        item_closes.push(state.closes_at);
    }
    // Idempotency keys are inserted without ON CONFLICT: a key is claimed once in memory, so
    // a stored one can only collide after a write whose outcome was unknown (a connection
    // lost mid-commit that did commit). Then this entry is refused (the journal splits the
    // batch to find it), rather than one key ending up with two bids; the retry finds the
    // stored answer.
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
