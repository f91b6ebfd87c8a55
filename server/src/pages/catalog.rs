//! The catalog pages: `/catalog` (browse, search, filter; a plain GET form so it works
//! without JavaScript and every result page has an address to share), `/wishlist` (the
//! device's saved list, drawn by `client-js/wishlist.js`), and the item cards that the home
//! page's featured block reuses.
//!
//! Listing goes through [`crate::services::catalog::catalog_page`], the API's own
//! workflow, so a page can never show what the API would hide.

use axum::{extract::Query, http::StatusCode, response::Response, routing::get, Router};
use minijinja::{context, Value};
use serde::Deserialize;

use crate::{
    domain::{catalog::ItemType, Cents},
    pages::{error::PageError, urlencode, PageCtx},
    services::{
        catalog::{catalog_page, ListQuery, PER_PAGE_DEFAULT},
        item_view::ItemView,
    },
    session::Actor,
    state::AppState,
    store::categories,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/catalog", get(browse))
        .route("/wishlist", get(wishlist))
}

/// A reader's word for an item type.
pub fn type_label(t: ItemType) -> &'static str {
    match t {
        ItemType::Competitive => "Silent auction",
        ItemType::FixedPriceEvent => "Event tickets",
        ItemType::FixedPriceItem => "Buy now",
        ItemType::Service => "Service",
    }
}

/// An item as a catalog card. Money goes as text ("125.00"), never through a float.
pub fn card(v: &ItemView) -> Value {
    let thumb = v
        .images
        .first()
        .map(|i| context! { url => &i.thumb_url, alt => &i.alt });
    let (price_label, price) = match (v.item_type, v.current_bid) {
        (ItemType::Competitive, Some(bid)) => ("Current bid", bid),
        (ItemType::Competitive, None) => ("Opening bid", v.opening_bid),
        _ => ("Price", v.opening_bid),
    };
    context! {
        id => v.id.to_string(),
        title => &v.title,
        kind => v.item_type.as_str(),
        kind_label => type_label(v.item_type),
        category => &v.category.name,
        tags => &v.tags,
        price_label => price_label,
        price => price.to_string(),
        bid_count => v.bid_count,
        closes_at => v.closes_at.to_rfc3339(),
        seats_left => v.event.as_ref().map(|e| e.seats_left),
        featured => v.featured,
        status => v.status,
        thumb => thumb,
    }
}

/// The filter form as typed. Every field is text so a bad value is explained on the page
/// instead of failing to parse.
#[derive(Deserialize, Default, Clone)]
struct CatalogForm {
    q: Option<String>,
    category: Option<String>,
    #[serde(rename = "type")]
    item_type: Option<String>,
    min_price: Option<String>,
    max_price: Option<String>,
    seats_left: Option<String>,
    closing_soon: Option<String>,
    featured: Option<String>,
    sort: Option<String>,
    page: Option<String>,
}

/// Empty inputs are "not given": a submitted GET form sends every field.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A price as people type it ([`Cents::parse_input`]): "$1,250" → "1250.00", the API's
/// text. `name` is the API's parameter, which the message names as the API would.
fn money_text(name: &str, v: &Option<String>) -> Result<Option<String>, String> {
    match Cents::parse_input(v.as_deref().unwrap_or("")) {
        Ok(c) => Ok(c.map(|c| c.to_string())),
        Err(e) => Err(format!("{name} is not an amount of money: {e}.")),
    }
}

impl CatalogForm {
    /// The API query this form asks for, or the message explaining which field is wrong.
    fn to_query(&self) -> Result<ListQuery, String> {
        let page = match given(&self.page) {
            None => None,
            Some(p) => Some(
                p.parse::<i64>()
                    .map_err(|_| "The page number is not a number.".to_string())?,
            ),
        };
        let closing_soon = match given(&self.closing_soon) {
            None => None,
            Some(m) => Some(
                m.parse::<i64>()
                    .map_err(|_| "Please choose a closing time from the list.".to_string())?,
            ),
        };
        Ok(ListQuery {
            page,
            per_page: Some(PER_PAGE_DEFAULT),
            category: given(&self.category),
            item_type: given(&self.item_type),
            min_price: money_text("minPrice", &self.min_price)?,
            max_price: money_text("maxPrice", &self.max_price)?,
            seats_left: given(&self.seats_left).map(|_| true),
            closing_soon,
            featured: given(&self.featured).map(|_| true),
            q: given(&self.q),
            sort: given(&self.sort),
            ..ListQuery::default()
        })
    }

    /// The query string of this search at another page, for the paging links.
    fn page_href(&self, page: i64) -> String {
        let mut parts: Vec<String> = Vec::new();
        let fields = [
            ("q", &self.q),
            ("category", &self.category),
            ("type", &self.item_type),
            ("min_price", &self.min_price),
            ("max_price", &self.max_price),
            ("seats_left", &self.seats_left),
            ("closing_soon", &self.closing_soon),
            ("featured", &self.featured),
            ("sort", &self.sort),
        ];
        for (name, value) in fields {
            if let Some(v) = given(value) {
                parts.push(format!("{name}={}", urlencode(&v)));
            }
        }
        parts.push(format!("page={page}"));
        format!("/catalog?{}", parts.join("&"))
    }
}

async fn browse(ctx: PageCtx, Query(form): Query<CatalogForm>) -> Result<Response, PageError> {
    let cats = categories::list(&ctx.state.db, false).await?;
    let categories: Vec<Value> = cats
        .iter()
        .map(|c| context! { slug => &c.slug, name => &c.name })
        .collect();
    let types: Vec<Value> = ItemType::ALL
        .iter()
        .map(|t| context! { value => t.as_str(), label => type_label(*t) })
        .collect();
    let result = match form.to_query() {
        Ok(query) => catalog_page(&ctx.state, ctx.user.as_ref(), query)
            .await
            .map_err(|e| {
                if e.status.is_client_error() {
                    Ok(e.message.to_string())
                } else {
                    Err(e)
                }
            }),
        Err(message) => Err(Ok(message)),
    };
    let (status, error, items, total, page, pages) = match result {
        Ok(p) => {
            let pages = (p.total + p.per_page - 1) / p.per_page;
            let cards: Vec<Value> = p.items.iter().map(card).collect();
            (StatusCode::OK, None, cards, p.total, p.page, pages)
        }
        Err(Ok(message)) => (StatusCode::BAD_REQUEST, Some(message), vec![], 0, 1, 0),
        Err(Err(e)) => return Err(e.into()),
    };
    let searching = [
        &form.q,
        &form.category,
        &form.item_type,
        &form.min_price,
        &form.max_price,
        &form.seats_left,
        &form.closing_soon,
        &form.featured,
    ]
    .iter()
    .any(|v| given(v).is_some());
    let f = context! {
        q => given(&form.q), category => given(&form.category), type => given(&form.item_type),
        min_price => given(&form.min_price), max_price => given(&form.max_price),
        seats_left => given(&form.seats_left).is_some(), closing_soon => given(&form.closing_soon),
        featured => given(&form.featured).is_some(), sort => given(&form.sort),
    };
    ctx.render_status(
        status,
        "catalog.html",
        "Catalog",
        context! {
            form => f, categories => categories, types => types, items => items,
            total => total, page => page, pages => pages, error => error, searching => searching,
            prev_href => (page > 1).then(|| form.page_href(page - 1)),
            next_href => (page < pages).then(|| form.page_href(page + 1)),
        },
    )
}

/// `/wishlist`: the shell of the saved list. The list itself lives in this device's
/// localStorage (nothing is sent to the server until someone bids), so the script draws it.
async fn wishlist(ctx: PageCtx) -> Result<Response, PageError> {
    ctx.render("wishlist.html", "My saved list", context! {})
}

/// Up to `limit` featured, published items of the current auction, as cards for the home
/// page. Never fails the home page: a listing error is logged and shows no cards.
pub async fn featured_cards(state: &AppState, user: Option<&Actor>, limit: i64) -> Vec<Value> {
    let query = ListQuery {
        featured: Some(true),
        per_page: Some(limit),
        sort: Some("closing".into()),
        ..ListQuery::default()
    };
    match catalog_page(state, user, query).await {
        Ok(page) => page.items.iter().map(card).collect(),
        Err(e) => {
            tracing::warn!(error = %e.message, "listing featured items for the home page");
            vec![]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_not_filters_and_prices_are_forgiving() {
        let form = CatalogForm {
            q: Some("  ".into()),
            min_price: Some("$1,250".into()),
            featured: Some("on".into()),
            ..CatalogForm::default()
        };
        let q = form.to_query().unwrap();
        assert_eq!(q.q, None);
        assert_eq!(q.min_price.as_deref(), Some("1250.00"));
        assert_eq!(q.featured, Some(true));
        assert_eq!(q.seats_left, None);
    }

    #[test]
    fn a_bad_page_number_is_explained() {
        let form = CatalogForm {
            page: Some("two".into()),
            ..CatalogForm::default()
        };
        assert!(form.to_query().is_err());
    }

    #[test]
    fn paging_links_keep_the_search() {
        let form = CatalogForm {
            q: Some("quilt & pie".into()),
            sort: Some("title".into()),
            page: Some("1".into()),
            ..CatalogForm::default()
        };
        assert_eq!(
            form.page_href(2),
            "/catalog?q=quilt+%26+pie&sort=title&page=2"
        );
    }
}
