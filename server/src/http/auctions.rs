//! `/api/auctions/*`: the current auction, the calendar (admin) and state overrides (manager).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::{
    domain::{validate, AuctionId, AuctionState, Calendar, Role},
    error::{AppError, AppResult, ResultExt},
    http::extract::{ApiJson, ApiPath},
    services::{
        auctions::{pin_state, snapshot, winners as services_winners, AuctionView, Winners},
        reoffer::{listing, ReofferListing},
    },
    session::Actor,
    state::AppState,
    store::{
        auctions::{self, AuctionFields},
        audit,
    },
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuctionRequest {
    pub year: i32,
    pub name: String,
    #[serde(flatten)]
    pub calendar: Calendar,
    #[serde(default = "default_soft_close")]
    pub soft_close_seconds: i32,
    #[serde(default)]
    pub hard_close_at: Option<DateTime<Utc>>,
}

fn default_soft_close() -> i32 {
    120
}

impl AuctionRequest {
    fn validate(self) -> Result<AuctionFields, AppError> {
        if !(2000..=2200).contains(&self.year) {
            return Err(AppError {
                field: Some("year"),
                ..AppError::validation("year must be between 2000 and 2200.")
            });
        }
        let name = validate::name(&self.name).map_err(|e| AppError {
            field: Some("name"),
            ..AppError::validation(e.message.replace("your name", "the auction's name"))
        })?;
        self.calendar
            .validate()
            .map_err(|e| AppError::validation(e.to_string()))?;
        if !(0..=3600).contains(&self.soft_close_seconds) {
            return Err(AppError {
                field: Some("softCloseSeconds"),
                ..AppError::validation("softCloseSeconds must be 0 to 3600.")
            });
        }
        if let Some(hard) = self.hard_close_at {
            if hard < self.calendar.bidding_close_at || hard > self.calendar.reoffer_open_at {
                return Err(AppError {
                    field: Some("hardCloseAt"),
                    ..AppError::validation(
                        "hardCloseAt must lie between biddingCloseAt and reofferOpenAt.",
                    )
                });
            }
        }
        Ok(AuctionFields {
            year: self.year,
            name,
            calendar: self.calendar,
            soft_close_seconds: self.soft_close_seconds,
            hard_close_at: self.hard_close_at,
        })
    }
}

/// `POST /api/auctions` (admin) → 201 with the auction.
async fn create(
    State(state): State<AppState>,
    user: Actor,
    ApiJson(req): ApiJson<AuctionRequest>,
) -> AppResult<Response> {
    user.require(&[Role::Admin])?;
    let fields = req.validate()?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let row = auctions::insert(&mut *tx, &fields, fields.calendar.state_at(now))
        .await?
        .ok_or_else(|| {
            AppError::conflict(
                "year_taken",
                format!("There is already an auction for {}.", fields.year),
            )
        })?;
    audit::record(
        &mut *tx,
        Some(user.id()),
        "auction.created",
        "auction",
        Some(row.id),
        None,
        Some(snapshot(&row, now)),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(AuctionView::new(&row, now))).into_response())
}

/// `PUT /api/auctions/{id}` (admin): replaces the name and calendar; audited.
async fn update(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<AuctionId>,
    ApiJson(req): ApiJson<AuctionRequest>,
) -> AppResult<Json<AuctionView>> {
    user.require(&[Role::Admin])?;
    let fields = req.validate()?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let before = auctions::by_id_for_update(&mut *tx, id)
        .await?
        .ok_or_else(|| AppError::not_found("Auction"))?;
    let state_now = before
        .override_state()
        .unwrap_or_else(|| fields.calendar.state_at(now));
    let after = auctions::update(&mut *tx, id, &fields, state_now)
        .await
        .on_constraint("auctions_year_key", || {
            AppError::conflict(
                "year_taken",
                format!("There is already an auction for {}.", fields.year),
            )
            .on_field("year")
        })?;
    audit::record(
        &mut *tx,
        Some(user.id()),
        "auction.updated",
        "auction",
        Some(id.0),
        Some(snapshot(&before, now)),
        Some(snapshot(&after, now)),
    )
    .await?;
    tx.commit().await?;
    // The books close by the calendar: the engine follows the new dates at once.
    state
        .engine
        .calendar_changed(id, after.state_at(now), after.override_state().is_some())
        .await;
    Ok(Json(AuctionView::new(&after, now)))
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
