//! The catalog: filters, full-text search, sorting and paging. What a viewer may list is
//! decided here before the store is asked; the API's `GET /api/items` and the catalog,
//! home, donor and review pages all list through [`catalog_page`].

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::{
    domain::{
        catalog::{search_query, status_allowed, ItemStatus, ItemType},
        AuctionId, CategoryId, Cents,
    },
    error::{AppError, AppResult},
    services::item_view::{item_views, ItemView, Viewer},
    session::Actor,
    state::AppState,
    store::{
        auctions, categories,
        items::{self, CatalogQuery, CatalogSort},
    },
};

/// What to list: the API's query parameters, all optional (the pages fill it from their
/// forms). Paging is either `page`/`perPage` or `limit`/`offset`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    pub page: Option<i64>,
    pub per_page: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub auction_id: Option<String>,
    /// A category id (`cat_3`) or slug (`goods`).
    pub category: Option<String>,
    #[serde(rename = "type")]
    pub item_type: Option<String>,
    pub tag: Option<String>,
    pub min_price: Option<String>,
    pub max_price: Option<String>,
    pub seats_left: Option<bool>,
    /// Minutes: items closing within this many minutes from now.
    pub closing_soon: Option<i64>,
    pub featured: Option<bool>,
    pub q: Option<String>,
    pub sort: Option<String>,
    /// The signed-in donor's own items, at any status.
    pub mine: Option<bool>,
    /// `published` (default), `closed`; `draft`, `submitted`, `approved` for staff (the
    /// review queue is `?status=submitted`) or with `mine=true`.
    pub status: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogPage {
    pub items: Vec<ItemView>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    pub limit: i64,
    pub offset: i64,
}

pub const PER_PAGE_DEFAULT: i64 = 24;
/// A page is at most 100 items: enough for any screen, small enough to answer fast.
pub const PER_PAGE_MAX: i64 = 100;
/// "Closing soon" looks at most a week ahead.
const CLOSING_SOON_MAX_MINUTES: i64 = 7 * 24 * 60;

fn bad(message: impl Into<std::borrow::Cow<'static, str>>) -> AppError {
    AppError::bad_request("invalid_query", message)
}

fn money(name: &str, value: Option<&str>) -> AppResult<Option<Cents>> {
    value
        .map(|v| {
            Cents::parse(v).map_err(|e| bad(format!("{name} is not an amount of money: {e}.")))
        })
        .transpose()
}

/// `(limit, offset)` from either paging style.
fn paging(q: &ListQuery) -> AppResult<(i64, i64)> {
    let page_style = q.page.is_some() || q.per_page.is_some();
    let offset_style = q.limit.is_some() || q.offset.is_some();
    if page_style && offset_style {
        return Err(bad("Use either page and perPage, or limit and offset."));
    }
    let limit = q.per_page.or(q.limit).unwrap_or(PER_PAGE_DEFAULT);
    if !(1..=PER_PAGE_MAX).contains(&limit) {
        return Err(bad(format!(
            "perPage and limit must be 1 to {PER_PAGE_MAX}."
        )));
    }
    let offset = match (q.page, q.offset) {
        (Some(page), _) if !(1..=100_000).contains(&page) => {
            return Err(bad("page must be 1 or more."))
        }
        (Some(page), _) => (page - 1) * limit,
        (None, Some(offset)) if offset < 0 => return Err(bad("offset must not be negative.")),
        (None, Some(offset)) => offset,
        (None, None) => 0,
    };
    Ok((limit, offset))
}

/// One page of the catalog as `user` may see it: the API's listing and the catalog,
/// home and review pages all come through here, so visibility is decided once.
pub async fn catalog_page(
    state: &AppState,
    user: Option<&Actor>,
    q: ListQuery,
) -> AppResult<CatalogPage> {
    let viewer = Viewer(user);
    let (limit, offset) = paging(&q)?;
    let mine = q.mine.unwrap_or(false);
    if mine && user.is_none() {
        return Err(AppError::unauthenticated());
    }
    let statuses = match q.status.as_deref() {
        Some(s) => {
            let status = ItemStatus::parse(s).ok_or_else(|| {
                bad("status must be draft, submitted, approved, published or closed.")
            })?;
            if !status_allowed(status, viewer.is_staff(), mine) {
                return Err(AppError::forbidden());
            }
            vec![status]
        }
        None if mine => ItemStatus::ALL.to_vec(),
        None => vec![ItemStatus::Published],
    };
    let auction = match q.auction_id.as_deref() {
        Some(a) => Some(
            a.parse::<AuctionId>()
                .map_err(|_| bad("auctionId is not an auction id."))?,
        ),
        // A donor's own list spans the years; the catalog shows the current auction.
        None if mine => None,
        None => auctions::current(&state.db, state.now())
            .await?
            .map(|a| a.auction_id()),
    };
    let category = match q.category.as_deref() {
        None => None,
        Some(c) => {
            let row = match c.parse::<CategoryId>() {
                Ok(id) => categories::by_id(&state.db, id).await?,
                Err(_) => categories::by_slug(&state.db, c).await?,
            };
            Some(row.ok_or_else(|| bad("No such category."))?.category_id())
        }
    };
    let item_type = q
        .item_type
        .as_deref()
        .map(|t| {
            ItemType::parse(t).ok_or_else(|| {
                bad("type must be competitive, fixed_price_event, fixed_price_item or service.")
            })
        })
        .transpose()?;
    let closing_between = match q.closing_soon {
        None => None,
        Some(m) if (1..=CLOSING_SOON_MAX_MINUTES).contains(&m) => {
            let now = state.now();
            Some((now, now + Duration::minutes(m)))
        }
        Some(_) => {
            return Err(bad(format!(
                "closingSoon is minutes, 1 to {CLOSING_SOON_MAX_MINUTES}."
            )))
        }
    };
    if q.q.as_deref().is_some_and(|s| s.chars().count() > 200) {
        return Err(bad("The search text is too long."));
    }
    let search = q.q.as_deref().and_then(search_query);
    let sort = match q.sort.as_deref() {
        None => CatalogSort::Relevance,
        Some(s) => CatalogSort::parse(s).ok_or_else(|| {
            bad("sort must be relevance, closing, price_asc, price_desc, newest or title.")
        })?,
    };
    let query = CatalogQuery {
        statuses,
        auction,
        donor: if mine { viewer.user_id() } else { None },
        category,
        item_type,
        tag: q.tag.map(|t| t.trim().to_lowercase()),
        min_price: money("minPrice", q.min_price.as_deref())?,
        max_price: money("maxPrice", q.max_price.as_deref())?,
        seats_left: q.seats_left.unwrap_or(false),
        closing_between,
        featured: q.featured,
        search,
        sort,
        limit,
        offset,
    };
    let (rows, total) = items::catalog(&state.db, &query).await?;
    let items = item_views(state, viewer, &rows).await?;
    Ok(CatalogPage {
        items,
        total,
        page: offset / limit + 1,
        per_page: limit,
        limit,
        offset,
    })
}
