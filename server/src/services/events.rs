//! A hosted event's date, place, capacity and notes: writing follows the item's edit rule
//! (owner before review ends, admin audited, nobody after publishing). Reading, with the
//! address privacy rule, is `services::item_view`.

use serde_json::json;

use crate::{
    domain::{
        catalog::EditAs,
        hosted_event::{validate_event, Audience, EventInput},
        ItemId,
    },
    error::{AppError, AppResult},
    services::{
        item_view::{event_view, EventView, Viewer},
        items::{edit_access, lock_visible},
    },
    session::Actor,
    state::AppState,
    store::{audit, events},
};

/// Creates (`replace == false`) or replaces the event; audited when an admin overrides.
/// The one path for the API and the donor pages.
pub async fn write_event(
    state: &AppState,
    user: &Actor,
    id: ItemId,
    input: EventInput,
    replace: bool,
) -> AppResult<EventView> {
    let mut tx = state.db.begin().await?;
    let item = lock_visible(&mut tx, user, id).await?;
    let edit = edit_access(user, &item)?;
    let fields = validate_event(input)?;
    let before = events::by_item(&mut *tx, id).await?;
    if replace {
        if !events::update(&mut *tx, id, &fields).await? {
            return Err(AppError::not_found("Event"));
        }
    } else if events::insert(&mut *tx, id, &fields).await?.is_none() {
        return Err(AppError::conflict(
            "event_exists",
            "This item already has an event; change it with PUT.",
        ));
    }
    let after = events::by_item(&mut *tx, id)
        .await?
        .ok_or_else(|| AppError::internal("reading an event just written", "row vanished"))?;
    if edit == EditAs::AdminOverride {
        let snap = |e: &events::EventRow| {
            serde_json::to_value(EventView::new(e, Audience::Staff)).unwrap_or_default()
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
