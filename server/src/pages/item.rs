//! The item page, `/items/{id}`: what a bidder reads before bidding, and the live bid panel.

use axum::{extract::Path, response::Response, routing::get, Router};
use minijinja::context;

use crate::{
    app::AppState,
    domain::{Cents, ItemId, Role},
    http::error::ApiError,
    pages::{bidding, error::PageError, PageCtx},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/items/{id}", get(show))
}

#[derive(sqlx::FromRow)]
struct ItemPage {
    donor_id: i64,
    r#type: String,
    title: String,
    description: String,
    donor_notes: Option<String>,
    restrictions: Option<String>,
    opening_min_bid: i64,
    fair_market_value: Option<i64>,
    status: String,
}

async fn show(ctx: PageCtx, Path(id): Path<String>) -> Result<Response, PageError> {
    let not_found = || PageError::from(ApiError::not_found("Item"));
    let id: ItemId = id.parse().map_err(|_| not_found())?;
    let item: ItemPage = sqlx::query_as(
        "SELECT donor_id, type, title, description, donor_notes, restrictions, opening_min_bid,
                fair_market_value, status FROM items WHERE id = $1",
    )
    .bind(id.0)
    .fetch_optional(&ctx.state.db)
    .await
    .map_err(ApiError::from)?
    .ok_or_else(not_found)?;
    // Drafts are seen by their donor and the managers only; to anyone else they do not exist.
    let public = matches!(item.status.as_str(), "published" | "closed");
    let privileged = ctx
        .user
        .as_ref()
        .is_some_and(|u| u.id().0 == item.donor_id || u.roles.has_any(&[Role::Manager]));
    if !public && !privileged {
        return Err(not_found());
    }
    let live = if item.r#type == "competitive" && public {
        bidding::panel_context(&ctx.state, id).await
    } else {
        None
    };
    let page = context! {
        item => context! {
            id => id.to_string(), title => &item.title, description => &item.description,
            donor_notes => &item.donor_notes, restrictions => &item.restrictions, kind => &item.r#type,
            opening_bid => Cents(item.opening_min_bid).to_string(),
            fair_market_value => item.fair_market_value.map(|v| Cents(v).to_string()),
            status => &item.status,
        },
        live => live,
    };
    ctx.render("item.html", &item.title, page)
}
