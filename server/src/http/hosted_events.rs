//! `/api/items/{id}/event`: a hosted event's date, place, capacity and notes. Reading
//! follows the item's visibility and the address privacy rule; writing is
//! `services::events` (the item's edit rule), shared with the donor pages.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{
    domain::{
        hosted_event::{Address, AddressPrivacy, EventInput},
        ItemId,
    },
    error::{AppError, AppResult},
    http::extract::{ApiJson, ApiPath},
    services::{
        events::write_event,
        item_view::{event_view, EventView, Viewer},
        items::find_visible,
    },
    session::Actor,
    state::AppState,
    store::events,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/items/{id}/event", get(show).post(create).put(replace))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventRequest {
    datetime_start: DateTime<Utc>,
    datetime_end: DateTime<Utc>,
    #[serde(default)]
    location_label: Option<String>,
    #[serde(default)]
    address_line1: Option<String>,
    #[serde(default)]
    address_line2: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    postal_code: Option<String>,
    /// Defaults to `show_city_only`, as the database does.
    #[serde(default)]
    address_privacy: Option<AddressPrivacy>,
    capacity: i64,
    #[serde(default)]
    accessibility_notes: Option<String>,
    #[serde(default)]
    age_restrictions: Option<String>,
    #[serde(default)]
    dietary_notes: Option<String>,
    #[serde(default)]
    host_notes: Option<String>,
}

impl From<EventRequest> for EventInput {
    fn from(r: EventRequest) -> EventInput {
        EventInput {
            datetime_start: r.datetime_start,
            datetime_end: r.datetime_end,
            location_label: r.location_label,
            address: Address {
                address_line1: r.address_line1,
                address_line2: r.address_line2,
                city: r.city,
                state: r.state,
                postal_code: r.postal_code,
            },
            address_privacy: r.address_privacy.unwrap_or(AddressPrivacy::ShowCityOnly),
            capacity: r.capacity,
            accessibility_notes: r.accessibility_notes,
            age_restrictions: r.age_restrictions,
            dietary_notes: r.dietary_notes,
            host_notes: r.host_notes,
        }
    }
}

/// `GET /api/items/{id}/event`: 404 when the item is hidden or has no event.
async fn show(
    State(state): State<AppState>,
    user: Option<Actor>,
    ApiPath(id): ApiPath<ItemId>,
) -> AppResult<Json<EventView>> {
    let viewer = Viewer(user.as_ref());
    let item = find_visible(&state, viewer, id).await?;
    let event = events::by_item(&state.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("Event"))?;
    Ok(Json(event_view(&state, viewer, &item, &event).await?))
}

/// `POST /api/items/{id}/event` → 201; 409 `event_exists` when there is one.
async fn create(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<ItemId>,
    ApiJson(req): ApiJson<EventRequest>,
) -> AppResult<Response> {
    let view = write_event(&state, &user, id, req.into(), false).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `PUT /api/items/{id}/event`: replaces every field; 404 when there is no event yet.
async fn replace(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<ItemId>,
    ApiJson(req): ApiJson<EventRequest>,
) -> AppResult<Json<EventView>> {
    Ok(Json(
        write_event(&state, &user, id, req.into(), true).await?,
    ))
}
