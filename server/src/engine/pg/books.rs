//! Books' rows from Postgres: items with their auction's calendar, and their recorded bids.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use futures_util::TryStreamExt;
use sqlx::PgPool;

use crate::{
    domain::{bidding::BookParams, AuctionId, AuctionState, Cents, ItemId, UserId},
    engine::{
        pg::store_error,
        ports::{BookSource, StoreError, StoredBid, StoredBook, StoredItem},
        state::NotLive,
    },
};

pub struct PgBookSource {
    db: PgPool,
}

impl PgBookSource {
    pub fn new(db: PgPool) -> PgBookSource {
        PgBookSource { db }
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
    fn stored(&self) -> StoredItem {
        let overridden = self.state_override.is_some();
        let auction_state = self
            .state_override
            .as_deref()
            .or(Some(self.state.as_str()))
            .and_then(AuctionState::parse)
            .unwrap_or(AuctionState::Draft);
        StoredItem {
            item: ItemId(self.id),
            auction: AuctionId(self.auction_id),
            params: BookParams {
                opening: Cents(self.opening_min_bid),
                increment: self.bid_increment.map(Cents),
                closes_at: self.bidding_close_at,
                hard_deadline: self.hard_close_at.unwrap_or(self.bidding_close_at),
                soft_close_window: Duration::seconds(self.soft_close_seconds.into()),
            },
            auction_state,
            overridden,
        }
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
    /// deletes, but manual SQL could race it).
    paddle_number: Option<i32>,
}

impl BidRow {
    fn stored(&self) -> StoredBid {
        StoredBid {
            bidder: UserId(self.bidder_id),
            amount: Cents(self.amount),
            max_proxy: self.max_proxy_amount.map(Cents),
            at: self.created_at,
            paddle: self.paddle_number,
        }
    }
}

impl BookSource for PgBookSource {
    /// Bids are streamed in (item, seq) order, so memory holds one item's bids at a time.
    async fn load_all<F>(&self, mut each: F) -> Result<(), StoreError>
    where
        F: FnMut(StoredItem, Vec<StoredBid>) + Send,
    {
        let items: Vec<ItemRow> = sqlx::query_as(&format!(
            "{ITEM_QUERY} AND a.state NOT IN ('closed', 'settlement') ORDER BY i.id"
        ))
        .fetch_all(&self.db)
        .await
        .map_err(store_error)?;
        let by_id: HashMap<i64, &ItemRow> = items.iter().map(|r| (r.id, r)).collect();
        let ids: Vec<i64> = items.iter().map(|r| r.id).collect();
        let mut seen = HashSet::new();
        let mut stream = sqlx::query_as::<_, BidRow>(BIDS_QUERY)
            .bind(&ids)
            .fetch(&self.db);
        let mut current: Vec<StoredBid> = Vec::new();
        let mut current_item: Option<i64> = None;
        while let Some(bid) = stream.try_next().await.map_err(store_error)? {
            if current_item.is_some_and(|c| c != bid.item_id) {
                if let Some(row) = current_item.and_then(|c| by_id.get(&c)) {
                    each(row.stored(), std::mem::take(&mut current));
                    seen.insert(row.id);
                }
                current.clear();
            }
            current_item = Some(bid.item_id);
            current.push(bid.stored());
        }
        if let Some(row) = current_item.and_then(|c| by_id.get(&c)) {
            each(row.stored(), current);
            seen.insert(row.id);
        }
        for row in &items {
            if !seen.contains(&row.id) {
                each(row.stored(), Vec::new());
            }
        }
        Ok(())
    }

    /// Three queries whatever the number of items (after a failed write, a calendar change
    /// or the first bids on new items, hundreds of books may need loading at once; one
    /// query set each would queue on the pool behind the storm).
    async fn load_items(
        &self,
        items: &[ItemId],
    ) -> Result<Vec<(ItemId, Result<StoredBook, NotLive>)>, StoreError> {
        let ids: Vec<i64> = items.iter().map(|i| i.0).collect();
        let mut conn = self.db.acquire().await.map_err(store_error)?;
        let kinds: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, type, status FROM items WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await
                .map_err(store_error)?;
        let kinds: HashMap<i64, (String, String)> =
            kinds.into_iter().map(|(id, t, s)| (id, (t, s))).collect();
        let mut out = Vec::with_capacity(items.len());
        let mut biddable = Vec::new();
        for &item in items {
            match kinds.get(&item.0) {
                None => out.push((item, Err(NotLive::Missing))),
                Some((t, _)) if t != "competitive" => {
                    out.push((item, Err(NotLive::NotCompetitive)))
                }
                Some((_, s)) if s != "published" && s != "closed" => {
                    out.push((item, Err(NotLive::NotPublished)))
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
            .await
            .map_err(store_error)?;
        let bids: Vec<BidRow> = sqlx::query_as(BIDS_QUERY)
            .bind(&biddable)
            .fetch_all(&mut *conn)
            .await
            .map_err(store_error)?;
        let mut by_item: HashMap<i64, Vec<StoredBid>> = HashMap::new();
        for bid in &bids {
            by_item.entry(bid.item_id).or_default().push(bid.stored());
        }
        for row in &rows {
            let mine = by_item.remove(&row.id).unwrap_or_default();
            out.push((ItemId(row.id), Ok((row.stored(), mine))));
        }
        // An item that stopped being biddable between the two queries.
        let found: HashSet<i64> = rows.iter().map(|r| r.id).collect();
        for id in biddable {
            if !found.contains(&id) {
                out.push((ItemId(id), Err(NotLive::NotPublished)));
            }
        }
        Ok(out)
    }

    async fn auction_items(&self, auction: AuctionId) -> Result<Vec<ItemId>, StoreError> {
        let items: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM items WHERE auction_id = $1 AND type = 'competitive' AND status = 'published'",
        )
        .bind(auction.0)
        .fetch_all(&self.db)
        .await
        .map_err(store_error)?;
        Ok(items.into_iter().map(ItemId).collect())
    }
}
