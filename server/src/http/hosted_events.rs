//! `/api/items/{id}/event`: a hosted event's date, place, capacity and notes. Reading
//! follows the item's visibility and the address privacy rule; writing follows the item's
//! edit rule (owner before review ends, admin audited, nobody after publishing).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::{
    app::AppState,
    domain::{
        catalog::{self, EditAs},
        hosted_event::{validate_event, Address, AddressPrivacy, EventInput},
        ItemId,
    },
    http::{
        error::{ApiError, ApiResult},
        extract::{ApiJson, ApiPath, CurrentUser},
        item_view::{event_view, EventView, Viewer},
        items::{edit_access, lock_visible},
    },
    store::{audit, events, items},
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
    user: Option<CurrentUser>,
    ApiPath(id): ApiPath<ItemId>,
) -> ApiResult<Json<EventView>> {
    let viewer = Viewer(user.as_ref());
    let item = items::by_id(&state.db, id)
        .await?
        .filter(|row| catalog::may_view(row.status(), viewer.actor(row)))
        .ok_or_else(|| ApiError::not_found("Item"))?;
    let event = events::by_item(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Event"))?;
    Ok(Json(event_view(&state, viewer, &item, &event).await?))
}

/// Creates (`replace == false`) or replaces the event; audited when an admin overrides.
/// The one path for the API and the donor pages.
pub async fn write_event(
    state: &AppState,
    user: &CurrentUser,
    id: ItemId,
    input: EventInput,
    replace: bool,
) -> ApiResult<EventView> {
    let mut tx = state.db.begin().await?;
    let item = lock_visible(&mut tx, user, id).await?;
    let edit = edit_access(user, &item)?;
    let fields = validate_event(input)?;
    let before = events::by_item(&mut *tx, id).await?;
    if replace {
        if !events::update(&mut *tx, id, &fields).await? {
            return Err(ApiError::not_found("Event"));
        }
    } else if events::insert(&mut *tx, id, &fields).await?.is_none() {
        return Err(ApiError::conflict(
            "event_exists",
            "This item already has an event; change it with PUT.",
        ));
    }
    let after = events::by_item(&mut *tx, id)
        .await?
        .ok_or_else(|| ApiError::internal("reading an event just written", "row vanished"))?;
    if edit == EditAs::AdminOverride {
        let snap = |e: &events::EventRow| {
            serde_json::to_value(EventView::new(
                e,
                crate::domain::hosted_event::Audience::Staff,
            ))
            .unwrap_or_default()
        };
        audit::record(
            &mut *tx,
            Some(user.id()),
            "event.updated_by_admin",
            "item",
            Some(id.0),
            before.as_ref().map(snap),
            Some(json!(snap(&after))),
        )
        .await?;
    }
    tx.commit().await?;
    event_view(state, Viewer(Some(user)), &item, &after).await
}

/// `POST /api/items/{id}/event` → 201; 409 `event_exists` when there is one.
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<ItemId>,
    ApiJson(req): ApiJson<EventRequest>,
) -> ApiResult<Response> {
    let view = write_event(&state, &user, id, req.into(), false).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `PUT /api/items/{id}/event`: replaces every field; 404 when there is no event yet.
async fn replace(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<ItemId>,
    ApiJson(req): ApiJson<EventRequest>,
) -> ApiResult<Json<EventView>> {
    Ok(Json(
        write_event(&state, &user, id, req.into(), true).await?,
    ))
}
