//! Rebuilding books from Postgres: at start for every live item, and for one item after a
//! failed write or a change of its settings. The journal is the truth; a book is the
//! replay of its item's accepted bids in seq order (`domain::bidding::Book::replay`).

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use futures_util::TryStreamExt;
use sqlx::PgPool;

use crate::{
    domain::{
        bidding::{Book, BookParams, RecordedBid, ReplayError},
        AuctionId, AuctionState, Cents, ItemId,
    },
    engine::{
        gate::{Gate, Gates},
        messages::ItemState,
    },
};

/// A book with what the shard needs around it.
pub struct LoadedBook {
    pub item: ItemId,
    pub auction: AuctionId,
    pub gate: Arc<Gate>,
    pub book: Book,
    pub leader_paddle: Option<i32>,
    /// Paddle numbers of this item's bidders (for `leadingBidderId`).
    pub paddles: HashMap<i64, i32>,
}

impl LoadedBook {
    pub fn state(&self) -> ItemState {
        ItemState {
            item: self.item,
            auction: self.auction,
            price: self.book.price(),
            bid_count: self.book.bid_count(),
            seq: self.book.last_seq(),
            leader_paddle: self.leader_paddle,
            next_minimum: self.book.next_minimum(),
            opening: self.book.opening(),
            closes_at: self.book.closes_at(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: i64,
    auction_id: i64,
    opening_min_bid: i64,
    bid_increment: Option<i64>,
    bidding_close_at: DateTime<Utc>,
    hard_close_at: Option<DateTime<Utc>>,
    soft_close_seconds: i32,
    state: String,
    state_override: Option<String>,
}

const ITEM_QUERY: &str =
    "SELECT i.id, i.auction_id, i.opening_min_bid, i.bid_increment, a.bidding_close_at,
        a.hard_close_at, a.soft_close_seconds, a.state, a.state_override
   FROM items i JOIN auctions a ON a.id = i.auction_id
  WHERE i.type = 'competitive' AND i.status IN ('published', 'closed')";

/// The recorded bids of the given items with their bidders' paddle numbers, in the order
/// a replay needs: by item, then by seq.
const BIDS_QUERY: &str =
    "SELECT b.item_id, b.bidder_id, b.amount, b.max_proxy_amount, b.created_at, u.paddle_number
   FROM bids b LEFT JOIN users u ON u.id = b.bidder_id
  WHERE b.item_id = ANY($1) ORDER BY b.item_id, b.seq";

impl ItemRow {
    fn params(&self) -> BookParams {
        BookParams {
            opening: Cents(self.opening_min_bid),
            increment: self.bid_increment.map(Cents),
            closes_at: self.bidding_close_at,
            hard_deadline: self.hard_close_at.unwrap_or(self.bidding_close_at),
            soft_close_window: Duration::seconds(self.soft_close_seconds.into()),
        }
    }

    fn gate(&self, gates: &Gates) -> Arc<Gate> {
        let overridden = self.state_override.is_some();
        let state = self
            .state_override
            .as_deref()
            .or(Some(self.state.as_str()))
            .and_then(AuctionState::parse)
            .unwrap_or(AuctionState::Draft);
        gates.get_or_insert(AuctionId(self.auction_id), state, overridden)
    }
}

#[derive(sqlx::FromRow)]
struct BidRow {
    item_id: i64,
    bidder_id: i64,
    amount: i64,
    max_proxy_amount: Option<i64>,
    created_at: DateTime<Utc>,
    /// None if the bidder's row is gone (bids have no foreign key; a trigger refuses such
    /// deletes, but manual SQL could race it): the item is then not served.
    paddle_number: Option<i32>,
}

/// Replays one item's recorded bids. The journal is the truth of what was accepted: if the
/// calendar has since moved the close before a recorded bid, the replay's close is moved
/// after it (the close changes no price or leader). A recorded bid the rules still refuse
/// means the journal and the rules disagree: the item is not served at all (answered 503)
/// rather than with a truncated book whose sequence numbers would collide with the table.
fn build(row: &ItemRow, gates: &Gates, bids: &[BidRow]) -> Result<LoadedBook, NotBiddable> {
    if let Some(orphan) = bids.iter().find(|b| b.paddle_number.is_none()) {
        tracing::error!(
            item = row.id,
            bidder = orphan.bidder_id,
            "a recorded bid's bidder no longer exists; the item is not served until this is fixed"
        );
        return Err(NotBiddable::Inconsistent);
    }
    let recorded: Vec<RecordedBid> = bids
        .iter()
        .map(|b| RecordedBid {
            bidder: b.bidder_id,
            amount: Cents(b.amount),
            max_proxy: b.max_proxy_amount.map(Cents),
            at: b.created_at,
        })
        .collect();
    let mut params = row.params();
    if let Some(last) = recorded.last() {
        if params.closes_at <= last.at {
            params.closes_at = last.at + Duration::microseconds(1);
            params.hard_deadline = params.hard_deadline.max(params.closes_at);
        }
    }
    let book = Book::replay(params, &recorded).map_err(|e: ReplayError| {
        tracing::error!(item = row.id, error = %e, "replay refused a recorded bid; the item is not served until this is fixed");
        NotBiddable::Inconsistent
    })?;
    let paddles: HashMap<i64, i32> = bids
        .iter()
        .filter_map(|b| Some((b.bidder_id, b.paddle_number?)))
        .collect();
    let leader_paddle = book.leader().and_then(|l| paddles.get(&l).copied());
    Ok(LoadedBook {
        item: ItemId(row.id),
        auction: AuctionId(row.auction_id),
        gate: row.gate(gates),
        book,
        leader_paddle,
        paddles,
    })
}

/// Every biddable item's book, grouped by shard (`item id % shards`). Bids are streamed in
/// (item, seq) order, so memory holds one item's bids at a time, not the whole table.
pub async fn load_all(
    db: &PgPool,
    gates: &Gates,
    shards: usize,
) -> sqlx::Result<Vec<Vec<LoadedBook>>> {
    let items: Vec<ItemRow> = sqlx::query_as(&format!(
        "{ITEM_QUERY} AND a.state NOT IN ('closed', 'settlement') ORDER BY i.id"
    ))
    .fetch_all(db)
    .await?;
    let by_id: HashMap<i64, &ItemRow> = items.iter().map(|r| (r.id, r)).collect();
    let ids: Vec<i64> = items.iter().map(|r| r.id).collect();
    let mut out: Vec<Vec<LoadedBook>> = (0..shards).map(|_| Vec::new()).collect();
    let mut place = |row: &ItemRow, bids: &[BidRow]| {
        let shard = (row.id.unsigned_abs() % shards as u64) as usize;
        // An item whose journal does not replay is left unloaded: its first command tries
        // again and is refused (see `build`).
        if let Ok(book) = build(row, gates, bids) {
            out[shard].push(book);
        }
    };
    let mut stream = sqlx::query_as::<_, BidRow>(BIDS_QUERY).bind(&ids).fetch(db);
    let mut current: Vec<BidRow> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while let Some(bid) = stream.try_next().await? {
        if current.first().is_some_and(|c| c.item_id != bid.item_id) {
            let item = current[0].item_id;
            if let Some(row) = by_id.get(&item) {
                place(row, &current);
                seen.insert(item);
            }
            current.clear();
        }
        current.push(bid);
    }
    if let Some(first) = current.first() {
        let item = first.item_id;
        if let Some(row) = by_id.get(&item) {
            place(row, &current);
            seen.insert(item);
        }
    }
    for row in &items {
        if !seen.contains(&row.id) {
            place(row, &[]);
        }
    }
    Ok(out)
}

/// Why an item has no book.
#[derive(Debug)]
pub enum NotBiddable {
    Missing,
    /// Its recorded bids do not replay under the current rules (logged when found).
    Inconsistent,
    NotCompetitive,
    NotPublished,
}

/// Loads items' books from what Postgres has committed, in three queries whatever their
/// number (after a failed write, a calendar change or the first bids on new items, hundreds
/// of books may need loading at once; one query set each would queue on the pool behind
/// the storm). Answers every item asked for, in any order.
pub async fn load_items(
    db: &PgPool,
    gates: &Gates,
    items: &[ItemId],
) -> sqlx::Result<Vec<(ItemId, Result<LoadedBook, NotBiddable>)>> {
    let ids: Vec<i64> = items.iter().map(|i| i.0).collect();
    let mut conn = db.acquire().await?;
    let kinds: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, type, status FROM items WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
    let kinds: HashMap<i64, (String, String)> =
        kinds.into_iter().map(|(id, t, s)| (id, (t, s))).collect();
    let mut out = Vec::with_capacity(items.len());
    let mut biddable = Vec::new();
    for &item in items {
        match kinds.get(&item.0) {
            None => out.push((item, Err(NotBiddable::Missing))),
            Some((t, _)) if t != "competitive" => {
                out.push((item, Err(NotBiddable::NotCompetitive)))
            }
            Some((_, s)) if s != "published" && s != "closed" => {
                out.push((item, Err(NotBiddable::NotPublished)))
            }
            _ => biddable.push(item.0),
        }
    }
    if biddable.is_empty() {
        return Ok(out);
    }
    let rows: Vec<ItemRow> = sqlx::query_as(&format!("{ITEM_QUERY} AND i.id = ANY($1)"))
        .bind(&biddable)
        .fetch_all(&mut *conn)
        .await?;
    let bids: Vec<BidRow> = sqlx::query_as(BIDS_QUERY)
        .bind(&biddable)
        .fetch_all(&mut *conn)
        .await?;
    // Bids come ordered by item: each item's are one contiguous run.
    let mut runs: HashMap<i64, std::ops::Range<usize>> = HashMap::new();
    let mut start = 0;
    for i in 1..=bids.len() {
        if i == bids.len() || bids[i].item_id != bids[start].item_id {
            runs.insert(bids[start].item_id, start..i);
            start = i;
        }
    }
    for row in &rows {
        let mine = runs.get(&row.id).map(|r| &bids[r.clone()]).unwrap_or(&[]);
        let book = build(row, gates, mine);
        out.push((ItemId(row.id), book));
    }
    // An item that stopped being biddable between the two queries.
    let found: std::collections::HashSet<i64> = rows.iter().map(|r| r.id).collect();
    for id in biddable {
        if !found.contains(&id) {
            out.push((ItemId(id), Err(NotBiddable::NotPublished)));
        }
    }
    Ok(out)
}
