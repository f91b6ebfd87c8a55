//! `/api/items/{id}/reoffer`: a donor's buy-it-now settings for what is left after bidding
//! (spec 5.2). Owner or admin only; defaults when nothing was saved. The workflow is
//! `services::reoffer`, shared with the donor's settings page.

use axum::{extract::State, routing::get, Json, Router};

use crate::{
    domain::ItemId,
    error::AppResult,
    http::extract::{ApiJson, ApiPath},
    services::reoffer::{
        save_settings, settings, ReofferRequest, ReofferSettingsView, ReofferView,
    },
    session::Actor,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/items/{id}/reoffer", get(show).put(save))
}

/// `GET /api/items/{id}/reoffer`.
async fn show(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<ItemId>,
) -> AppResult<Json<ReofferSettingsView>> {
    Ok(Json(settings(&state, &user, id).await?))
}

/// `PUT /api/items/{id}/reoffer` → the spec's `{itemId, participate, price,
/// quantityEffective}`. Locked once the auction's reoffer window has opened: changing the
/// price under buyers would be unfair. Admin changes to someone else's item are audited.
async fn save(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<ItemId>,
    ApiJson(req): ApiJson<ReofferRequest>,
) -> AppResult<Json<ReofferView>> {
    Ok(Json(save_settings(&state, &user, id, req).await?))
}
