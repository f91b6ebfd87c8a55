//! The journal's writes on Postgres: one statement per batch, on a connection of its own.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

use sqlx::{Connection, PgConnection, PgPool};

use crate::{
    domain::{Cents, ItemId, UserId},
    engine::{
        journal::{Change, Record},
        pg::store_error,
        ports::{Committed, JournalStore, StoreError},
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
    async fn commit(&mut self, batch: &[Record]) -> Result<Committed, StoreError> {
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

/// An item's row of `item_bidding` in a batch: its last state, its leader, and when its
/// close was recorded.
type ItemRow<'a> = (&'a ItemState, Option<UserId>, Option<DateTime<Utc>>);

/// The columns of one batch, gathered from its records.
#[derive(Default)]
struct Columns<'a> {
    bid_item: Vec<i64>,
    bid_bidder: Vec<i64>,
    bid_amount: Vec<i64>,
    bid_max: Vec<Option<i64>>,
    bid_seq: Vec<i64>,
    bid_at: Vec<DateTime<Utc>>,
    /// The last state of each item in the batch, its leader, and when its close was
    /// recorded (an upsert must not see an item twice).
    states: HashMap<ItemId, ItemRow<'a>>,
    key_user: Vec<i64>,
    key_scope: Vec<&'static str>,
    key_key: Vec<&'a str>,
    key_hash: Vec<&'a [u8]>,
    key_status: Vec<i16>,
    key_body: Vec<&'a str>,
    /// The purchase a key's answer names (its commitment id goes into the body), if any.
    key_purchase: Vec<Option<i32>>,
    notice_user: Vec<i64>,
    notice_payload: Vec<serde_json::Value>,
    notice_item: Vec<i64>,
    notice_at: HashMap<(UserId, ItemId), usize>,
    // Closes and purchases (the full statement only).
    win_item: Vec<i64>,
    win_user: Vec<i64>,
    win_amount: Vec<i64>,
    win_at: Vec<DateTime<Utc>>,
    win_payload: Vec<serde_json::Value>,
    owe_auction: Vec<i64>,
    owe_item: Vec<i64>,
    owe_user: Vec<i64>,
    owe_source: Vec<&'static str>,
    owe_quantity: Vec<i32>,
    owe_price: Vec<i64>,
    owe_purchase: Vec<Option<i32>>,
    /// Units sold per item in the batch, and whether it is now sold out.
    sold: HashMap<ItemId, (i32, bool)>,
    /// Position in the batch of each purchase, by its ordinal.
    purchase_at: Vec<usize>,
}

impl<'a> Columns<'a> {
    fn gather(records: &'a [Record]) -> Columns<'a> {
        let mut c = Columns::default();
        for (position, record) in records.iter().enumerate() {
            let mut purchase = None;
            match &record.change {
                Change::Accepted {
                    bid,
                    state,
                    leader,
                    outbid,
                    ..
                } => {
                    c.bid_item.push(bid.item.0);
                    c.bid_bidder.push(bid.bidder.0);
                    c.bid_amount.push(bid.amount.0);
                    c.bid_max.push(bid.max_proxy.map(|m| m.0));
                    c.bid_seq.push(bid.seq as i64);
                    c.bid_at.push(bid.at);
                    c.states.insert(bid.item, (state, Some(*leader), None));
                    if let Some(user) = outbid {
                        c.outbid(*user, bid.item, state);
                    }
                }
                Change::Closed {
                    state,
                    at,
                    winners,
                    sold_out,
                } => {
                    let leader = winners.first().map(|(user, _)| *user);
                    c.states.insert(state.item, (state, leader, Some(*at)));
                    for (user, amount) in winners {
                        c.win_item.push(state.item.0);
                        c.win_user.push(user.0);
                        c.win_amount.push(amount.0);
                        c.win_at.push(*at);
                        c.win_payload.push(serde_json::json!({
                            "itemId": state.item,
                            "amountCents": amount.0,
                        }));
                        c.owe(
                            state.auction.0,
                            state.item.0,
                            *user,
                            "win",
                            1,
                            *amount,
                            None,
                        );
                    }
                    c.sell(state.item, winners.len() as i32, *sold_out);
                }
                Change::Purchased {
                    state,
                    buyer,
                    quantity,
                    price_each,
                    sold_out,
                } => {
                    let ordinal = c.purchase_at.len() as i32;
                    c.purchase_at.push(position);
                    purchase = Some(ordinal);
                    c.owe(
                        state.auction.0,
                        state.item.0,
                        *buyer,
                        "reoffer",
                        *quantity as i32,
                        *price_each,
                        Some(ordinal),
                    );
                    c.sell(state.item, *quantity as i32, *sold_out);
                }
                Change::Refused => {}
            }
            if let Some(key) = &record.key {
                c.key_user.push(key.user.0);
                c.key_scope.push(key.scope.as_str());
                c.key_key.push(key.key.as_str());
                c.key_hash.push(key.hash.as_slice());
                c.key_status.push(record.answer.status as i16);
                c.key_body.push(&record.answer.body);
                c.key_purchase.push(purchase);
            }
        }
        c
    }

    /// One waiting email per bidder and item: the latest outbid of the batch wins here, and
    /// the statement's upsert folds it into one already waiting.
    fn outbid(&mut self, user: UserId, item: ItemId, state: &ItemState) {
        let payload = serde_json::json!({
            "itemId": item,
            "currentBidCents": state.price.map(|p| p.0),
            "nextMinimumCents": state.next_minimum.0,
            "seq": state.seq,
        });
        match self.notice_at.entry((user, item)) {
            std::collections::hash_map::Entry::Occupied(at) => {
                self.notice_payload[*at.get()] = payload;
            }
            std::collections::hash_map::Entry::Vacant(at) => {
                at.insert(self.notice_user.len());
                self.notice_user.push(user.0);
                self.notice_item.push(item.0);
                self.notice_payload.push(payload);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn owe(
        &mut self,
        auction: i64,
        item: i64,
        user: UserId,
        source: &'static str,
        quantity: i32,
        price: Cents,
        purchase: Option<i32>,
    ) {
        self.owe_auction.push(auction);
        self.owe_item.push(item);
        self.owe_user.push(user.0);
        self.owe_source.push(source);
        self.owe_quantity.push(quantity);
        self.owe_price.push(price.0);
        self.owe_purchase.push(purchase);
    }

    fn sell(&mut self, item: ItemId, units: i32, sold_out: bool) {
        let entry = self.sold.entry(item).or_insert((0, false));
        entry.0 += units;
        entry.1 |= sold_out;
    }

    /// Whether the batch closes items or sells units (the full statement).
    fn has_sales(&self) -> bool {
        !self.owe_item.is_empty() || self.states.values().any(|(_, _, closed)| closed.is_some())
    }
}

/// Writes a batch in one statement (so one implicit transaction): all of it or none. Bids,
/// the items' new state, idempotency answers and outbid emails go in multi-row `UNNEST`
/// inserts in data-modifying CTEs: one round trip, one fsync. A batch that also closes items
/// or sells units takes a larger statement with winners, commitments, win emails and the
/// items' units sold; every table a statement writes costs Postgres a fixed share of each
/// commit, so the bids of an ordinary evening do not pay for them.
async fn write(db: &mut PgConnection, records: &[Record]) -> sqlx::Result<Committed> {
    let c = Columns::gather(records);
    let mut item_id = Vec::new();
    let mut item_price = Vec::new();
    let mut item_count = Vec::new();
    let mut item_leader = Vec::new();
    let mut item_seq = Vec::new();
    let mut item_closes = Vec::new();
    let mut item_closed = Vec::new();
    for (id, (state, leader, closed)) in &c.states {
        item_id.push(id.0);
        item_price.push(state.price.map(|p| p.0));
        item_count.push(state.bid_count as i32);
        item_leader.push(leader.map(|l| l.0));
        item_seq.push(state.seq as i64);
        item_closes.push(state.closes_at);
        item_closed.push(*closed);
    }
    // $1..$21 mean the same in both statements: bound in one place, in one order.
    macro_rules! bind_bids_and_keys {
        ($query:expr) => {
            $query
                .bind(&c.bid_item)
                .bind(&c.bid_bidder)
                .bind(&c.bid_amount)
                .bind(&c.bid_max)
                .bind(&c.bid_seq)
                .bind(&c.bid_at)
                .bind(&item_id)
                .bind(&item_price)
                .bind(&item_count)
                .bind(&item_leader)
                .bind(&item_seq)
                .bind(&item_closes)
                .bind(&c.key_user)
                .bind(&c.key_key)
                .bind(&c.key_hash)
                .bind(&c.key_status)
                .bind(&c.key_body)
                .bind(&c.notice_user)
                .bind(&c.notice_payload)
                .bind(&c.notice_item)
                .bind(&c.key_scope)
        };
    }
    if !c.has_sales() {
        bind_bids_and_keys!(sqlx::query(BIDS_STATEMENT))
            .execute(db)
            .await?;
        return Ok(Committed::default());
    }
    let (sold_item, (sold_units, sold_out)): (Vec<i64>, (Vec<i32>, Vec<bool>)) = c
        .sold
        .iter()
        .map(|(item, (units, out))| (item.0, (*units, *out)))
        .unzip();
    let purchases: Vec<i32> = (0..c.purchase_at.len() as i32).collect();
    let assigned: Vec<(i32, i64)> = bind_bids_and_keys!(sqlx::query_as(FULL_STATEMENT))
        .bind(&item_closed)
        .bind(&purchases)
        .bind(&c.key_purchase)
        .bind(&c.win_item)
        .bind(&c.win_user)
        .bind(&c.win_amount)
        .bind(&c.win_at)
        .bind(&c.win_payload)
        .bind(&c.owe_auction)
        .bind(&c.owe_item)
        .bind(&c.owe_user)
        .bind(&c.owe_source)
        .bind(&c.owe_quantity)
        .bind(&c.owe_price)
        .bind(&c.owe_purchase)
        .bind(&sold_item)
        .bind(&sold_units)
        .bind(&sold_out)
        .fetch_all(db)
        .await?;
    Ok(Committed {
        commitments: assigned
            .into_iter()
            .filter_map(|(ordinal, id)| Some((*c.purchase_at.get(ordinal as usize)?, id)))
            .collect(),
    })
}

// Idempotency keys are inserted without ON CONFLICT: a key is claimed once in memory, so a
// stored one can only collide after a write whose outcome was unknown (a connection lost
// mid-commit that did commit). Then this entry is refused (the journal splits the batch to
// find it), rather than one key ending up with two effects; the retry finds the stored
// answer.
const BIDS_STATEMENT: &str = "WITH new_bids AS (
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
     SELECT u.user_id, u.scope, u.key, u.hash, u.status, u.body
       FROM UNNEST($13::bigint[], $21::text[], $14::text[], $15::bytea[], $16::smallint[], $17::text[])
            AS u(user_id, scope, key, hash, status, body)
 ), notices AS (
     INSERT INTO notifications (user_id, channel, type, template_key, payload, related_entity_type, related_entity_id)
     SELECT u.user_id, 'email', 'outbid', 'outbid', u.payload, 'item', u.item_id
       FROM UNNEST($18::bigint[], $19::jsonb[], $20::bigint[]) AS u(user_id, payload, item_id)
     ON CONFLICT (user_id, related_entity_id) WHERE type = 'outbid' AND status = 'scheduled'
     DO UPDATE SET payload = EXCLUDED.payload
 )
 SELECT 1";

// The same, with closes and sales. A close writes its winners (one unit each), their
// commitments and "you won" emails, and the time it was recorded (`item_bidding.closed_at`:
// kept if already set). The unique indexes of migration 0006 refuse a second close's
// winners and commitments, so a close written twice fails instead of doubling. A purchase's
// commitment takes its id from the sequence here (`purchase_ids`, evaluated once), so that
// the answer stored under its key names it, and the ids come back as the statement's rows.
// Units sold move to `items.quantity_sold` once per item (its CHECK refuses an oversell).
const FULL_STATEMENT: &str = "WITH new_bids AS (
     INSERT INTO bids (item_id, bidder_id, amount, max_proxy_amount, seq, created_at)
     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::timestamptz[])
 ), item_updates AS (
     INSERT INTO item_bidding (item_id, current_price, bid_count, leader_id, last_seq, closes_at, closed_at)
     SELECT * FROM UNNEST($7::bigint[], $8::bigint[], $9::int[], $10::bigint[], $11::bigint[], $12::timestamptz[], $22::timestamptz[])
     ON CONFLICT (item_id) DO UPDATE SET current_price = EXCLUDED.current_price,
            bid_count = EXCLUDED.bid_count, leader_id = EXCLUDED.leader_id,
            last_seq = EXCLUDED.last_seq, closes_at = EXCLUDED.closes_at,
            closed_at = COALESCE(item_bidding.closed_at, EXCLUDED.closed_at)
 ), purchase_ids AS (
     SELECT p.ordinal, nextval(pg_get_serial_sequence('commitments', 'id')) AS id
       FROM UNNEST($23::int[]) AS p(ordinal)
 ), keys AS (
     INSERT INTO idempotency_keys (user_id, scope, key, request_hash, response_status, response_body)
     SELECT u.user_id, u.scope, u.key, u.hash, u.status,
            CASE WHEN ids.id IS NULL THEN u.body ELSE replace(u.body, '@commitment@', ids.id::text) END
       FROM UNNEST($13::bigint[], $21::text[], $14::text[], $15::bytea[], $16::smallint[], $17::text[], $24::int[])
            AS u(user_id, scope, key, hash, status, body, purchase)
       LEFT JOIN purchase_ids ids ON ids.ordinal = u.purchase
 ), notices AS (
     INSERT INTO notifications (user_id, channel, type, template_key, payload, related_entity_type, related_entity_id)
     SELECT u.user_id, 'email', 'outbid', 'outbid', u.payload, 'item', u.item_id
       FROM UNNEST($18::bigint[], $19::jsonb[], $20::bigint[]) AS u(user_id, payload, item_id)
     ON CONFLICT (user_id, related_entity_id) WHERE type = 'outbid' AND status = 'scheduled'
     DO UPDATE SET payload = EXCLUDED.payload
 ), new_winners AS (
     INSERT INTO winners (item_id, user_id, amount, quantity, determined_at)
     SELECT w.item_id, w.user_id, w.amount, 1, w.at
       FROM UNNEST($25::bigint[], $26::bigint[], $27::bigint[], $28::timestamptz[]) AS w(item_id, user_id, amount, at)
 ), win_notices AS (
     INSERT INTO notifications (user_id, channel, type, template_key, payload, related_entity_type, related_entity_id)
     SELECT w.user_id, 'email', 'win', 'win', w.payload, 'item', w.item_id
       FROM UNNEST($26::bigint[], $29::jsonb[], $25::bigint[]) AS w(user_id, payload, item_id)
 ), owed AS (
     INSERT INTO commitments (id, auction_id, item_id, user_id, source, quantity, price_each)
     OVERRIDING SYSTEM VALUE
     SELECT COALESCE(ids.id, nextval(pg_get_serial_sequence('commitments', 'id'))),
            o.auction_id, o.item_id, o.user_id, o.source, o.quantity, o.price_each
       FROM UNNEST($30::bigint[], $31::bigint[], $32::bigint[], $33::text[], $34::int[], $35::bigint[], $36::int[])
            AS o(auction_id, item_id, user_id, source, quantity, price_each, purchase)
       LEFT JOIN purchase_ids ids ON ids.ordinal = o.purchase
 ), sold AS (
     UPDATE items i SET quantity_sold = i.quantity_sold + s.units,
            status = CASE WHEN s.sold_out THEN 'closed' ELSE i.status END,
            updated_at = now()
       FROM UNNEST($37::bigint[], $38::int[], $39::bool[]) AS s(item_id, units, sold_out)
      WHERE i.id = s.item_id
 )
 SELECT ordinal, id FROM purchase_ids";
