//! The live close, as pages: `/manage/live` (the managers' dashboard) and `GET /display`
//! (the hall's projector, public). Both show first the same numbers the live feeds send
//! (`services::dashboard`), so they are useful without JavaScript; their scripts
//! (`client-js/dashboard.js`, `client-js/projector.js`) follow `dashboard:<auction>` and
//! `display:<auction>` and update every number in place.

use std::collections::HashMap;

use axum::{
    extract::Query,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use chrono::{DateTime, Utc};
use minijinja::{context, Value};
use serde::Deserialize;

use crate::{
    domain::{AuctionId, Cents, ItemId, Role},
    error::AppError,
    pages::{error::PageError, PageCtx},
    services::dashboard::{self, ItemLine, Rates},
    state::AppState,
    store::auctions::{self, AuctionRow},
};

/// `/manage/live`. (`GET /display` is routed beside `POST /display`, the display
/// preferences, in `pages::router`: one path, one route.)
pub fn router() -> Router<AppState> {
    Router::new().route("/manage/live", get(live_page))
}

/// `?auction=a_2`: which auction to show (the current one when absent).
#[derive(Deserialize)]
pub struct AuctionQuery {
    auction: Option<String>,
}

/// The auction asked for (`?auction=a_2`), else the current one; `None` when there is none.
async fn chosen(ctx: &PageCtx, query: &AuctionQuery) -> Result<Option<AuctionRow>, PageError> {
    match query.auction.as_deref().filter(|a| !a.is_empty()) {
        Some(text) => {
            let id: AuctionId = text
                .parse()
                .map_err(|_| PageError::from(AppError::not_found("Auction")))?;
            Ok(Some(auctions::by_id(&ctx.state.db, id).await?.ok_or_else(
                || PageError::from(AppError::not_found("Auction")),
            )?))
        }
        None => Ok(auctions::current(&ctx.state.db, ctx.state.now()).await?),
    }
}

/// Item titles by public id: the feeds carry ids only, the pages name the items.
async fn titles(ctx: &PageCtx, auction: AuctionId) -> Result<HashMap<String, String>, PageError> {
    Ok(auctions::item_titles(&ctx.state.db, auction)
        .await?
        .into_iter()
        .map(|(id, title)| (ItemId(id).to_string(), title))
        .collect())
}

fn title_of(titles: &HashMap<String, String>, item: ItemId) -> String {
    let id = item.to_string();
    titles.get(&id).cloned().unwrap_or(id)
}

fn money(amount: Option<Cents>) -> Option<i64> {
    amount.map(|c| c.0)
}

/// The auction's zone's clock and the instant, for a deadline tonight.
fn at(ctx: &PageCtx, t: DateTime<Utc>) -> Value {
    context! { iso => t.to_rfc3339(), clock => ctx.state.config.time_zone.clock(t) }
}

fn lines(ctx: &PageCtx, titles: &HashMap<String, String>, list: &[ItemLine]) -> Vec<Value> {
    list.iter()
        .map(|l| {
            context! {
                id => l.item_id.to_string(), title => title_of(titles, l.item_id),
                current_bid => money(l.current_bid), bid_count => l.bid_count,
                bidders => l.bidders, closes_at => at(ctx, l.closes_at), extended => l.extended,
                closed => l.closed, leader => &l.leading_bidder_id,
            }
        })
        .collect()
}

fn no_auction(ctx: &PageCtx) -> Result<Response, PageError> {
    ctx.message(
        "No auction yet",
        "There is no auction to show yet.",
        Some(("/", "Go to the home page")),
    )
}

/// `GET /manage/live` (managers, admins): the live close dashboard.
async fn live_page(ctx: PageCtx, Query(query): Query<AuctionQuery>) -> Result<Response, PageError> {
    if let Err(denied) = ctx.require_role(&[Role::Manager]) {
        return Ok(denied.into_response());
    }
    let Some(row) = chosen(&ctx, &query).await? else {
        return no_auction(&ctx);
    };
    let now = ctx.state.now();
    // The first view has no rate history: rates start at 0 and the feed fills them in.
    let frame = dashboard::dashboard(
        &ctx.state.engine,
        ctx.state.metrics.live.connections.get(),
        row.auction_id(),
        now,
        &Rates::default(),
    );
    let titles = titles(&ctx, row.auction_id()).await?;
    let state = frame.state.unwrap_or_else(|| row.state_at(now));
    ctx.render(
        "manage/live.html",
        "Live close",
        context! {
            auction => context! { id => row.auction_id().to_string(), name => &row.name },
            state => state.as_str(), state_label => state.label(),
            server_time => now.to_rfc3339(), updated => ctx.state.config.time_zone.clock(now),
            bids_total => frame.bids_total, bids_per_minute => frame.bids_per_minute,
            committed_total => frame.committed_total.0, items_open => frame.items_open,
            items_closed => frame.items_closed, in_extension => frame.in_extension,
            watchers => frame.watchers,
            errors => context! {
                storage_unavailable => frame.errors.storage_unavailable,
                refused => frame.errors.refused, rate_limited => frame.errors.rate_limited,
            },
            reoffer => context! {
                units_sold => frame.reoffer.units_sold,
                units_remaining => frame.reoffer.units_remaining,
                buys_per_minute => frame.reoffer.buys_per_minute,
            },
            closing_soon => lines(&ctx, &titles, &frame.closing_soon),
            top_by_price => lines(&ctx, &titles, &frame.top_by_price),
            top_by_bidders => lines(&ctx, &titles, &frame.top_by_bidders),
            titles_json => serde_json::to_string(&titles).unwrap_or_else(|_| "{}".into()),
        },
    )
}

/// `p_101` → `101`: the projector says "Paddle 101".
fn paddle_number(label: &str) -> &str {
    label.strip_prefix("p_").unwrap_or(label)
}

/// `GET /display` (anyone): the hall's projector. Paddle numbers only, never names.
pub async fn display_page(
    ctx: PageCtx,
    Query(query): Query<AuctionQuery>,
) -> Result<Response, PageError> {
    let Some(row) = chosen(&ctx, &query).await? else {
        return no_auction(&ctx);
    };
    let now = ctx.state.now();
    let frame = dashboard::display(&ctx.state.engine, row.auction_id(), now);
    let titles = titles(&ctx, row.auction_id()).await?;
    let state = frame.state.unwrap_or_else(|| row.state_at(now));
    let closing_soon: Vec<Value> = frame
        .closing_soon
        .iter()
        .map(|l| {
            context! {
                id => l.item_id.to_string(), title => title_of(&titles, l.item_id),
                current_bid => money(l.current_bid), bid_count => l.bid_count,
                closes_at => at(&ctx, l.closes_at), extended => l.extended,
            }
        })
        .collect();
    let winners: Vec<Value> = frame
        .latest_winners
        .iter()
        .map(|w| {
            context! {
                id => w.item_id.to_string(), title => title_of(&titles, w.item_id),
                paddle => paddle_number(&w.paddle), amount => w.amount.0,
            }
        })
        .collect();
    ctx.render(
        "display.html",
        &row.name,
        context! {
            auction => context! { id => row.auction_id().to_string(), name => &row.name },
            state => state.as_str(), state_label => state.label(),
            server_time => now.to_rfc3339(),
            total_raised => frame.total_raised.0, items_open => frame.items_open,
            closing_soon => closing_soon, winners => winners,
            titles_json => serde_json::to_string(&titles).unwrap_or_else(|_| "{}".into()),
        },
    )
}
