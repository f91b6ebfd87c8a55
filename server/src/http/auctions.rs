//! `/api/auctions/*`: the current auction, the calendar (admin) and state overrides (manager).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    domain::{AuctionId, AuctionState},
    error::{AppError, AppResult},
    http::extract::{ApiJson, ApiPath},
    services::{
        auctions::{
            self as services_auctions, pin_state, winners as services_winners, AuctionRequest,
            AuctionView, Winners,
        },
        reoffer::{listing, ReofferListing},
    },
    session::Actor,
    state::AppState,
    store::auctions,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auctions", get(list).post(create))
        .route("/auctions/current", get(current))
        .route("/auctions/{id}", get(by_id).put(update))
        .route("/auctions/{id}/state", post(set_state))
        .route("/auctions/{id}/reoffer/state", post(reoffer_state))
        .route("/auctions/{id}/reoffer/items", get(reoffer_items))
        .route("/auctions/{id}/winners", get(winners))
}

async fn current(State(state): State<AppState>) -> AppResult<Json<AuctionView>> {
    let now = state.now();
    let row = auctions::current(&state.db, now)
        .await?
        .ok_or_else(|| AppError::not_found("Auction"))?;
    Ok(Json(AuctionView::new(&row, now)))
}

async fn list(State(state): State<AppState>) -> AppResult<Json<serde_json::Value>> {
    let now = state.now();
    let rows = auctions::all(&state.db).await?;
    let views: Vec<AuctionView> = rows.iter().map(|r| AuctionView::new(r, now)).collect();
    Ok(Json(json!({ "auctions": views })))
}

async fn by_id(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<AuctionId>,
) -> AppResult<Json<AuctionView>> {
    let row = auctions::by_id(&state.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("Auction"))?;
    Ok(Json(AuctionView::new(&row, state.now())))
}

/// `POST /api/auctions` (admin) → 201 with the auction.
async fn create(
    State(state): State<AppState>,
    user: Actor,
    ApiJson(req): ApiJson<AuctionRequest>,
) -> AppResult<Response> {
    let row = services_auctions::create(&state, &user, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(AuctionView::new(&row, state.now())),
    )
        .into_response())
}

/// `PUT /api/auctions/{id}` (admin): replaces the name and calendar; audited.
async fn update(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<AuctionId>,
    ApiJson(req): ApiJson<AuctionRequest>,
) -> AppResult<Json<AuctionView>> {
    let after = services_auctions::update(&state, &user, id, req).await?;
    Ok(Json(AuctionView::new(&after, state.now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateRequest {
    /// A state to pin, or `"auto"` (or null) to let the calendar decide again.
    state: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/auctions/{id}/state` (manager): overrides the calendar's state; audited.
async fn set_state(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<AuctionId>,
    ApiJson(req): ApiJson<StateRequest>,
) -> AppResult<Json<AuctionView>> {
    let pinned = match req.state.as_deref() {
        None | Some("auto") => None,
        Some(name) => Some(AuctionState::parse(name).ok_or_else(|| AppError {
            field: Some("state"),
            ..AppError::validation(format!(
                "Unknown state {name:?}; use auto or one of draft, registration, catalog, bidding, paused, reoffer, closed, settlement."
            ))
        })?),
    };
    let after = pin_state(&state, &user, id, pinned, req.reason.as_deref()).await?;
    Ok(Json(AuctionView::new(&after, state.now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReofferStateRequest {
    /// `open` or `close`.
    state: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/auctions/{id}/reoffer/state {"state": "open" | "close"}` (manager, admin):
/// opens the reoffer phase now, or closes it, whatever the calendar says; audited. (It pins
/// the auction's state to `reoffer` or `closed`; `POST /state {"state": "auto"}` gives the
/// calendar back.)
async fn reoffer_state(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<AuctionId>,
    ApiJson(req): ApiJson<ReofferStateRequest>,
) -> AppResult<Json<AuctionView>> {
    let pinned = match req.state.as_str() {
        "open" => AuctionState::Reoffer,
        "close" => AuctionState::Closed,
        other => {
            return Err(AppError::validation(format!(
                "Unknown reoffer state {other:?}; use open or close."
            ))
            .on_field("state"))
        }
    };
    let after = pin_state(&state, &user, id, Some(pinned), req.reason.as_deref()).await?;
    Ok(Json(AuctionView::new(&after, state.now())))
}

/// `GET /api/auctions/{id}/winners` (manager, admin, finance): every item won, with its
/// winner, amount and quantity.
async fn winners(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<AuctionId>,
) -> AppResult<Json<Winners>> {
    Ok(Json(services_winners(&state, &user, id).await?))
}

/// `GET /api/auctions/{id}/reoffer/items` (anyone): the reoffer inventory in the spec's
/// shape, with its window.
async fn reoffer_items(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<AuctionId>,
) -> AppResult<Json<ReofferListing>> {
    Ok(Json(listing(&state, id).await?))
}
