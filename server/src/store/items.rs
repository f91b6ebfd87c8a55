//! Items: the catalog's rows, their review workflow, and the catalog query (filters,
//! full-text search, sorting, paging).
//!
//! Reads join the auction (for the default close time), the category and the donor's name,
//! so one [`ItemRow`] is everything an item page or card needs apart from images and event.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, QueryBuilder};

use crate::domain::{
    catalog::{ItemFields, ItemStatus, ItemType},
    AuctionId, CategoryId, Cents, ItemId, UserId,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRow {
    pub id: i64,
    pub auction_id: i64,
    pub donor_id: i64,
    pub donor_name: String,
    pub item_type: String,
    pub title: String,
    pub description: String,
    pub donor_notes: Option<String>,
    pub restrictions: Option<String>,
    pub category_id: i64,
    pub category_name: String,
    pub category_slug: String,
    pub tags: Vec<String>,
    pub opening_min_bid: i64,
    pub bid_increment: Option<i64>,
    pub buy_now_price: Option<i64>,
    pub fair_market_value: Option<i64>,
    pub quantity_total: i32,
    pub quantity_sold: i32,
    pub status: String,
    pub review_note: Option<String>,
    pub featured: bool,
    /// The item's own close (soft close moves it) or else the auction's bidding close.
    pub closes_at: DateTime<Utc>,
    /// Live state written by the bid engine: the price to beat, `None` before any bid.
    pub current_price: Option<i64>,
    pub bid_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ItemRow {
    pub fn item_id(&self) -> ItemId {
        ItemId(self.id)
    }
    pub fn donor(&self) -> UserId {
        UserId(self.donor_id)
    }
    pub fn item_type(&self) -> ItemType {
        // The column's CHECK constraint admits only the four names.
        ItemType::parse(&self.item_type).unwrap_or(ItemType::FixedPriceItem)
    }
    pub fn status(&self) -> ItemStatus {
        // The column's CHECK constraint admits only the five names; unknown reads as the
        // most private one.
        ItemStatus::parse(&self.status).unwrap_or(ItemStatus::Draft)
    }
    pub fn quantity_remaining(&self) -> i32 {
        (self.quantity_total - self.quantity_sold).max(0)
    }
    pub fn opening_bid(&self) -> Cents {
        Cents(self.opening_min_bid)
    }
    /// The price shown in lists and used by price filters: the current bid, else the opening.
    pub fn display_price(&self) -> Cents {
        Cents(self.current_price.unwrap_or(self.opening_min_bid))
    }
}

const SELECT: &str = "SELECT i.id, i.auction_id, i.donor_id, u.name AS donor_name,
        i.type AS item_type, i.title, i.description, i.donor_notes, i.restrictions,
        i.category_id, c.name AS category_name, c.slug AS category_slug, i.tags,
        i.opening_min_bid, i.bid_increment, i.buy_now_price, i.fair_market_value,
        i.quantity_total, i.quantity_sold, i.status, i.review_note, i.featured,
        COALESCE(lb.closes_at, a.bidding_close_at) AS closes_at,
        lb.current_price, COALESCE(lb.bid_count, 0) AS bid_count, i.created_at, i.updated_at
   FROM items i
   JOIN auctions a ON a.id = i.auction_id
   LEFT JOIN item_bidding lb ON lb.item_id = i.id
   JOIN categories c ON c.id = i.category_id
   JOIN users u ON u.id = i.donor_id";

/// One item, any status. The engine and other modules may call this.
pub async fn by_id(db: impl PgExecutor<'_>, id: ItemId) -> sqlx::Result<Option<ItemRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE i.id = $1"))
        .bind(id.0)
        .fetch_optional(db)
        .await
}

/// One item, its row locked for the rest of the transaction (edits and status changes
/// read, decide, then write).
pub async fn by_id_for_update(
    db: impl PgExecutor<'_>,
    id: ItemId,
) -> sqlx::Result<Option<ItemRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE i.id = $1 FOR UPDATE OF i"))
        .bind(id.0)
        .fetch_optional(db)
        .await
}

/// Inserts a draft; returns its id.
pub async fn insert(
    db: impl PgExecutor<'_>,
    auction: AuctionId,
    donor: UserId,
    category: CategoryId,
    f: &ItemFields,
    featured: bool,
) -> sqlx::Result<ItemId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO items (auction_id, donor_id, type, title, description, donor_notes,
             restrictions, category_id, tags, opening_min_bid, bid_increment, buy_now_price,
             fair_market_value, quantity_total, featured)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)
         RETURNING id",
    )
    .bind(auction.0)
    .bind(donor.0)
    .bind(f.item_type.as_str())
    .bind(&f.title)
    .bind(&f.description)
    .bind(&f.donor_notes)
    .bind(&f.restrictions)
    .bind(category.0)
    .bind(&f.tags)
    .bind(f.opening_bid.0)
    .bind(f.bid_increment.map(|c| c.0))
    .bind(f.buy_now_price.map(|c| c.0))
    .bind(f.fair_market_value.map(|c| c.0))
    .bind(f.quantity_total)
    .bind(featured)
    .fetch_one(db)
    .await?;
    Ok(ItemId(id))
}

/// Replaces an item's editable fields (not its status or live bidding state).
pub async fn update(
    db: impl PgExecutor<'_>,
    id: ItemId,
    category: CategoryId,
    f: &ItemFields,
    featured: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE items SET type = $2, title = $3, description = $4, donor_notes = $5,
             restrictions = $6, category_id = $7, tags = $8, opening_min_bid = $9,
             bid_increment = $10, buy_now_price = $11, fair_market_value = $12,
             quantity_total = $13, featured = $14, updated_at = now()
         WHERE id = $1",
    )
    .bind(id.0)
    .bind(f.item_type.as_str())
    .bind(&f.title)
    .bind(&f.description)
    .bind(&f.donor_notes)
    .bind(&f.restrictions)
    .bind(category.0)
    .bind(&f.tags)
    .bind(f.opening_bid.0)
    .bind(f.bid_increment.map(|c| c.0))
    .bind(f.buy_now_price.map(|c| c.0))
    .bind(f.fair_market_value.map(|c| c.0))
    .bind(f.quantity_total)
    .bind(featured)
    .execute(db)
    .await?;
    Ok(())
}

/// Moves an item to `status`, setting (or clearing) the reviewer's note.
pub async fn set_status(
    db: impl PgExecutor<'_>,
    id: ItemId,
    status: ItemStatus,
    review_note: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE items SET status = $2, review_note = $3, updated_at = now() WHERE id = $1")
        .bind(id.0)
        .bind(status.as_str())
        .bind(review_note)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn set_featured(db: impl PgExecutor<'_>, id: ItemId, featured: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE items SET featured = $2, updated_at = now() WHERE id = $1")
        .bind(id.0)
        .bind(featured)
        .execute(db)
        .await?;
    Ok(())
}

/// Catalog order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogSort {
    /// Best full-text match first (title only without a search).
    Relevance,
    /// Closing soonest first.
    Closing,
    PriceAsc,
    PriceDesc,
    Newest,
    Title,
}

impl CatalogSort {
    pub fn parse(text: &str) -> Option<CatalogSort> {
        Some(match text {
            "relevance" => CatalogSort::Relevance,
            "closing" => CatalogSort::Closing,
            "price_asc" => CatalogSort::PriceAsc,
            "price_desc" => CatalogSort::PriceDesc,
            "newest" => CatalogSort::Newest,
            "title" => CatalogSort::Title,
            _ => return None,
        })
    }
}

/// A catalog query, already authorised: `statuses` is what this viewer may see.
#[derive(Clone, Debug)]
pub struct CatalogQuery {
    pub statuses: Vec<ItemStatus>,
    pub auction: Option<AuctionId>,
    pub donor: Option<UserId>,
    pub category: Option<CategoryId>,
    pub item_type: Option<ItemType>,
    pub tag: Option<String>,
    pub min_price: Option<Cents>,
    pub max_price: Option<Cents>,
    /// Only items with a hosted event that still has seats.
    pub seats_left: bool,
    /// Only items closing between these instants.
    pub closing_between: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub featured: Option<bool>,
    /// A `to_tsquery` text from [`crate::domain::catalog::search_query`].
    pub search: Option<String>,
    pub sort: CatalogSort,
    pub limit: i64,
    pub offset: i64,
}

/// Seats still free at an item's event: capacity less confirmed places, and never more
/// than the units left to sell.
pub const SEATS_LEFT_SQL: &str = "LEAST(e.capacity - (SELECT count(*) FROM attendance at
        WHERE at.event_id = e.id AND at.status IN ('confirmed','attended'))::int,
        i.quantity_total - i.quantity_sold)";

fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, q: &CatalogQuery) {
    let statuses: Vec<&'static str> = q.statuses.iter().map(|s| s.as_str()).collect();
    qb.push(" WHERE i.status = ANY(")
        .push_bind(statuses)
        .push(")");
    if let Some(a) = q.auction {
        qb.push(" AND i.auction_id = ").push_bind(a.0);
    }
    if let Some(d) = q.donor {
        qb.push(" AND i.donor_id = ").push_bind(d.0);
    }
    if let Some(c) = q.category {
        qb.push(" AND i.category_id = ").push_bind(c.0);
    }
    if let Some(t) = q.item_type {
        qb.push(" AND i.type = ").push_bind(t.as_str());
    }
    if let Some(tag) = &q.tag {
        qb.push(" AND i.tags @> ARRAY[")
            .push_bind(tag.clone())
            .push("]::text[]");
    }
    if let Some(min) = q.min_price {
        qb.push(" AND COALESCE(lb.current_price, i.opening_min_bid) >= ")
            .push_bind(min.0);
    }
    if let Some(max) = q.max_price {
        qb.push(" AND COALESCE(lb.current_price, i.opening_min_bid) <= ")
            .push_bind(max.0);
    }
    if q.seats_left {
        qb.push(format!(
            " AND EXISTS (SELECT 1 FROM events e WHERE e.item_id = i.id AND {SEATS_LEFT_SQL} > 0)"
        ));
    }
    if let Some((from, to)) = q.closing_between {
        qb.push(" AND COALESCE(lb.closes_at, a.bidding_close_at) BETWEEN ")
            .push_bind(from)
            .push(" AND ")
            .push_bind(to);
    }
    if let Some(f) = q.featured {
        qb.push(" AND i.featured = ").push_bind(f);
    }
    if let Some(s) = &q.search {
        qb.push(" AND i.search @@ to_tsquery('english', ")
            .push_bind(s.clone())
            .push(")");
    }
}

/// One page of the catalog and the total number of matches.
pub async fn catalog(
    db: impl PgExecutor<'_> + Copy,
    q: &CatalogQuery,
) -> sqlx::Result<(Vec<ItemRow>, i64)> {
    let mut count = QueryBuilder::<Postgres>::new(
        "SELECT count(*) FROM items i JOIN auctions a ON a.id = i.auction_id
           LEFT JOIN item_bidding lb ON lb.item_id = i.id",
    );
    push_filters(&mut count, q);
    let total: i64 = count.build_query_scalar().fetch_one(db).await?;

    let mut qb = QueryBuilder::<Postgres>::new(SELECT);
    push_filters(&mut qb, q);
    qb.push(" ORDER BY ");
    match (q.sort, &q.search) {
        (CatalogSort::Relevance, Some(s)) => {
            qb.push("ts_rank(i.search, to_tsquery('english', ")
                .push_bind(s.clone())
                .push(")) DESC, lower(i.title), i.id");
        }
        (CatalogSort::Relevance | CatalogSort::Title, _) => {
            qb.push("lower(i.title), i.id");
        }
        (CatalogSort::Closing, _) => {
            qb.push("COALESCE(lb.closes_at, a.bidding_close_at), lower(i.title), i.id");
        }
        (CatalogSort::PriceAsc, _) => {
            qb.push("COALESCE(lb.current_price, i.opening_min_bid), lower(i.title), i.id");
        }
        (CatalogSort::PriceDesc, _) => {
            qb.push("COALESCE(lb.current_price, i.opening_min_bid) DESC, lower(i.title), i.id");
        }
        (CatalogSort::Newest, _) => {
            qb.push("i.created_at DESC, i.id DESC");
        }
    }
    qb.push(" LIMIT ")
        .push_bind(q.limit)
        .push(" OFFSET ")
        .push_bind(q.offset);
    let rows = qb.build_query_as().fetch_all(db).await?;
    Ok((rows, total))
}
