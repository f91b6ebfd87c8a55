//! `/api/items/*`: the catalog listing, donors' drafts, edits, submission; managers'
//! review and publishing. The workflows are `services::items` (shared with the pages);
//! images, events and reoffer settings have their own modules beside this one.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;

use crate::{
    domain::{catalog::Transition, ItemId, Role},
    error::AppResult,
    http::extract::{ApiJson, ApiPath, ApiQuery},
    services::{
        catalog::{catalog_page, CatalogPage, ListQuery},
        item_view::{one_item_view, ItemView, Viewer},
        items::{
            apply_step, create_item, feature_item, find_visible, review_decision, update_item,
            ItemRequest,
        },
    },
    session::Actor,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/items", post(create).get(list))
        .route("/items/{id}", get(show).put(update))
        .route("/items/{id}/submit", post(submit))
        .route("/items/{id}/review", post(review))
        .route("/items/{id}/publish", post(publish))
        .route("/items/{id}/featured", post(set_featured))
}

/// `GET /api/items`: guests and bidders list published items; a donor adds `mine=true`
/// for their own; managers may list any status.
async fn list(
    State(state): State<AppState>,
    user: Option<Actor>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<CatalogPage>> {
    Ok(Json(catalog_page(&state, user.as_ref(), q).await?))
}

/// `POST /api/items` (donor) → 201 with the new draft.
async fn create(
    State(state): State<AppState>,
    user: Actor,
    ApiJson(req): ApiJson<ItemRequest>,
) -> AppResult<Response> {
    let row = create_item(&state, &user, &req).await?;
    let view = one_item_view(&state, Viewer(Some(&user)), &row).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /api/items/{id}`: public items to everyone; others to their donor and staff.
async fn show(
    State(state): State<AppState>,
    user: Option<Actor>,
    ApiPath(id): ApiPath<ItemId>,
) -> AppResult<Json<ItemView>> {
    let viewer = Viewer(user.as_ref());
    let row = find_visible(&state, viewer, id).await?;
    Ok(Json(one_item_view(&state, viewer, &row).await?))
}

/// `PUT /api/items/{id}`: replaces every editable field (see [`update_item`], the rules).
async fn update(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<ItemId>,
    ApiJson(req): ApiJson<ItemRequest>,
) -> AppResult<Json<ItemView>> {
    let after = update_item(&state, &user, id, &req).await?;
    Ok(Json(
        one_item_view(&state, Viewer(Some(&user)), &after).await?,
    ))
}

/// [`apply_step`], answered with the item's view.
async fn step(
    state: &AppState,
    user: &Actor,
    id: ItemId,
    step: Transition,
    note: Option<String>,
) -> AppResult<Json<ItemView>> {
    let after = apply_step(state, user, id, step, note).await?;
    Ok(Json(
        one_item_view(state, Viewer(Some(user)), &after).await?,
    ))
}

/// `POST /api/items/{id}/submit` (owner): draft → submitted, into the review queue.
async fn submit(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<ItemId>,
) -> AppResult<Json<ItemView>> {
    step(&state, &user, id, Transition::Submit, None).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReviewRequest {
    decision: String,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/items/{id}/review {"decision": "approve"|"return", "note"}` (manager).
/// Returning needs a note: the donor must learn what to change.
async fn review(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<ItemId>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> AppResult<Json<ItemView>> {
    user.require(&[Role::Manager])?;
    let (transition, note) = review_decision(&req.decision, req.note.as_deref())?;
    step(&state, &user, id, transition, note).await
}

/// `POST /api/items/{id}/publish` (manager): approved → published, into the catalog.
async fn publish(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<ItemId>,
) -> AppResult<Json<ItemView>> {
    user.require(&[Role::Manager])?;
    step(&state, &user, id, Transition::Publish, None).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeaturedRequest {
    featured: bool,
}

/// `POST /api/items/{id}/featured {"featured": true}` (manager, any status, audited):
/// curating the home page is not an edit of the item, so it is allowed after publishing.
async fn set_featured(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<ItemId>,
    ApiJson(req): ApiJson<FeaturedRequest>,
) -> AppResult<Json<ItemView>> {
    let after = feature_item(&state, &user, id, req.featured).await?;
    Ok(Json(
        one_item_view(&state, Viewer(Some(&user)), &after).await?,
    ))
}
