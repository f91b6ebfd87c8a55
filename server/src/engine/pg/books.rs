//! Books' rows from Postgres: items with their auction's calendar, and their recorded bids.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use futures_util::TryStreamExt;
use sqlx::PgPool;

use crate::{
    domain::{bidding::BookParams, AuctionId, AuctionState, Cents, ItemId, UserId},
    engine::{
        pg::store_error,
        ports::{BookSource, StockParams, StoreError, StoredBid, StoredBook, StoredItem},
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
    #[sqlx(rename = "type")]
    kind: String,
    opening_min_bid: i64,
    bid_increment: Option<i64>,
    quantity_total: i32,
    quantity_sold: i32,
    bidding_close_at: DateTime<Utc>,
    hard_close_at: Option<DateTime<Utc>>,
    soft_close_seconds: i32,
    state: String,
    state_override: Option<String>,
    closed: bool,
    participate: bool,
    reoffer_price: Option<i64>,
    quantity_override: Option<i32>,
    winners: i64,
    reoffer_units: i64,
    purchases: i64,
}

/// Every item that is in the catalog (published, or closed: its book still answers), of any
/// kind: competitive items have a book, every item may have reoffer stock.
const ITEM_QUERY: &str =
    "SELECT i.id, i.auction_id, i.type, i.opening_min_bid, i.bid_increment, i.quantity_total,
        i.quantity_sold, a.bidding_close_at, a.hard_close_at, a.soft_close_seconds, a.state,
        a.state_override, ib.closed_at IS NOT NULL AS closed,
        COALESCE(rs.participate, TRUE) AS participate, rs.price AS reoffer_price,
        rs.quantity_override,
        (SELECT count(*) FROM winners w WHERE w.item_id = i.id) AS winners,
        COALESCE((SELECT sum(c.quantity) FROM commitments c
                   WHERE c.item_id = i.id AND c.source = 'reoffer'), 0)::bigint AS reoffer_units,
        (SELECT count(*) FROM commitments c WHERE c.item_id = i.id AND c.source = 'reoffer') AS purchases
   FROM items i JOIN auctions a ON a.id = i.auction_id
   LEFT JOIN item_bidding ib ON ib.item_id = i.id
   LEFT JOIN item_reoffer_settings rs ON rs.item_id = i.id
  WHERE i.status IN ('published', 'closed')";

/// The winners recorded at the given items' closes.
const WINNERS_QUERY: &str =
    "SELECT item_id, user_id, amount FROM winners WHERE item_id = ANY($1) ORDER BY item_id, id";

/// The recorded bids of the given items with their bidders' paddle numbers, in the order
/// a replay needs: by item, then by seq.
const BIDS_QUERY: &str =
    "SELECT b.item_id, b.bidder_id, b.amount, b.max_proxy_amount, b.created_at, u.paddle_number
   FROM bids b LEFT JOIN users u ON u.id = b.bidder_id
  WHERE b.item_id = ANY($1) ORDER BY b.item_id, b.seq";

impl ItemRow {
    /// What the reoffer phase may still sell (the spec's defaults): nothing when the donor
    /// opted out or the item was won; else all units left after bidding, or the donor's
    /// smaller quantity, less what reoffer sold already; at the donor's price, or else the
    /// opening bid.
    fn stock(&self) -> StockParams {
        let reoffer_units = self.reoffer_units.max(0);
        let sold_before = (i64::from(self.quantity_sold) - reoffer_units).max(0);
        let left_after_bidding = (i64::from(self.quantity_total) - sold_before).max(0);
        let offered = if !self.participate || self.winners > 0 {
            0
        } else {
            match self.quantity_override {
                Some(over) => i64::from(over.max(0)).min(left_after_bidding),
                None => left_after_bidding,
            }
        };
        StockParams {
            left: u32::try_from((offered - reoffer_units).max(0)).unwrap_or(0),
            price: Cents(self.reoffer_price.unwrap_or(self.opening_min_bid)),
        }
    }

    fn stored(&self, winners: Vec<(UserId, Cents)>) -> StoredItem {
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
            competitive: self.kind == "competitive",
            units: u32::try_from(self.quantity_total).unwrap_or(1),
            closed: self.closed,
            winners,
            stock: self.stock(),
            events: u64::from(self.closed) + u64::try_from(self.purchases).unwrap_or(0),
            reoffer_sold: u32::try_from(self.reoffer_units).unwrap_or(0),
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

/// The recorded winners of `ids`, by item.
async fn winners_of(
    db: impl sqlx::PgExecutor<'_>,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<(UserId, Cents)>>, StoreError> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(WINNERS_QUERY)
        .bind(ids)
        .fetch_all(db)
        .await
        .map_err(store_error)?;
    let mut by_item: HashMap<i64, Vec<(UserId, Cents)>> = HashMap::new();
    for (item, user, amount) in rows {
        by_item
            .entry(item)
            .or_default()
            .push((UserId(user), Cents(amount)));
    }
    Ok(by_item)
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
        let ids: Vec<i64> = items.iter().map(|r| r.id).collect();
        let closed: Vec<i64> = items.iter().filter(|r| r.closed).map(|r| r.id).collect();
        let mut winners = winners_of(&self.db, &closed).await?;
        let by_id: HashMap<i64, &ItemRow> = items.iter().map(|r| (r.id, r)).collect();
        let mut stored = |row: &ItemRow| row.stored(winners.remove(&row.id).unwrap_or_default());
        let mut seen = HashSet::new();
        let mut stream = sqlx::query_as::<_, BidRow>(BIDS_QUERY)
            .bind(&ids)
            .fetch(&self.db);
        let mut current: Vec<StoredBid> = Vec::new();
        let mut current_item: Option<i64> = None;
        while let Some(bid) = stream.try_next().await.map_err(store_error)? {
            if current_item.is_some_and(|c| c != bid.item_id) {
                if let Some(row) = current_item.and_then(|c| by_id.get(&c)) {
                    each(stored(row), std::mem::take(&mut current));
                    seen.insert(row.id);
                }
                current.clear();
            }
            current_item = Some(bid.item_id);
            current.push(bid.stored());
        }
        if let Some(row) = current_item.and_then(|c| by_id.get(&c)) {
            each(stored(row), current);
            seen.insert(row.id);
        }
        for row in &items {
            if !seen.contains(&row.id) {
                each(stored(row), Vec::new());
            }
        }
        Ok(())
    }

    /// Four queries whatever the number of items (after a failed write, a calendar change
    /// or the first bids on new items, hundreds of books may need loading at once; one
    /// query set each would queue on the pool behind the storm).
    async fn load_items(
        &self,
        items: &[ItemId],
    ) -> Result<Vec<(ItemId, Result<StoredBook, NotLive>)>, StoreError> {
        let ids: Vec<i64> = items.iter().map(|i| i.0).collect();
        let mut conn = self.db.acquire().await.map_err(store_error)?;
        let rows: Vec<ItemRow> = sqlx::query_as(&format!("{ITEM_QUERY} AND i.id = ANY($1)"))
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(store_error)?;
        let found: HashSet<i64> = rows.iter().map(|r| r.id).collect();
        let mut out = Vec::with_capacity(items.len());
        let missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !found.contains(id))
            .collect();
        if !missing.is_empty() {
            // Not in the catalog: no such item, or not (or no longer) published.
            let exist: HashSet<i64> =
                sqlx::query_scalar::<_, i64>("SELECT id FROM items WHERE id = ANY($1)")
                    .bind(&missing)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(store_error)?
                    .into_iter()
                    .collect();
            for id in missing {
                let why = if exist.contains(&id) {
                    NotLive::NotPublished
                } else {
                    NotLive::Missing
                };
                out.push((ItemId(id), Err(why)));
            }
        }
        if rows.is_empty() {
            return Ok(out);
        }
        let live: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let closed: Vec<i64> = rows.iter().filter(|r| r.closed).map(|r| r.id).collect();
        let mut winners = winners_of(&mut *conn, &closed).await?;
        let bids: Vec<BidRow> = sqlx::query_as(BIDS_QUERY)
            .bind(&live)
            .fetch_all(&mut *conn)
            .await
            .map_err(store_error)?;
        let mut by_item: HashMap<i64, Vec<StoredBid>> = HashMap::new();
        for bid in &bids {
            by_item.entry(bid.item_id).or_default().push(bid.stored());
        }
        for row in &rows {
            let mine = by_item.remove(&row.id).unwrap_or_default();
            let stored = row.stored(winners.remove(&row.id).unwrap_or_default());
            out.push((ItemId(row.id), Ok((stored, mine))));
        }
        Ok(out)
    }

    async fn auction_items(&self, auction: AuctionId) -> Result<Vec<ItemId>, StoreError> {
        let items: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM items WHERE auction_id = $1 AND status IN ('published', 'closed')",
        )
        .bind(auction.0)
        .fetch_all(&self.db)
        .await
        .map_err(store_error)?;
        Ok(items.into_iter().map(ItemId).collect())
    }
}
