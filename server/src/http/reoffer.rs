//! `/api/items/{id}/reoffer`: a donor's buy-it-now settings for what is left after bidding
//! (spec 5.2). Owner or admin only; defaults when nothing was saved.

use axum::{extract::State, routing::get, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    app::AppState,
    domain::{
        catalog::{check_quantity_override, reoffer_terms},
        validate, AuctionId, AuctionState, Cents, ItemId, Role,
    },
    http::{
        error::{ApiError, ApiResult},
        extract::{ApiJson, ApiPath, CurrentUser},
        items::lock_visible,
    },
    store::{
        auctions, audit,
        items::{self, ItemRow},
        reoffer::{self, ReofferRow},
    },
};

pub fn router() -> Router<AppState> {
    Router::new().route("/items/{id}/reoffer", get(show).put(save))
}

/// The spec's response: the terms that apply, defaults filled in.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReofferView {
    pub item_id: ItemId,
    pub participate: bool,
    pub price: Cents,
    pub quantity_effective: i32,
}

/// What `GET` adds for the settings form: what the donor saved, before defaults.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReofferSettingsView {
    #[serde(flatten)]
    pub terms: ReofferView,
    pub price_set: Option<Cents>,
    pub quantity_override: Option<i32>,
    pub notes: Option<String>,
}

fn view(item: &ItemRow, s: &ReofferRow) -> ReofferView {
    let terms = reoffer_terms(
        s.participate,
        s.price.map(Cents),
        s.quantity_override,
        item.opening_bid(),
        item.quantity_remaining(),
    );
    ReofferView {
        item_id: item.item_id(),
        participate: terms.participate,
        price: terms.price,
        quantity_effective: terms.quantity,
    }
}

/// Owner or admin; anyone else who can see the item gets 403 (others a 404).
fn owner_or_admin(user: &CurrentUser, item: &ItemRow) -> ApiResult<()> {
    if user.id() == item.donor() || user.roles.has(Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// `GET /api/items/{id}/reoffer`.
async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<ItemId>,
) -> ApiResult<Json<ReofferSettingsView>> {
    Ok(Json(settings(&state, &user, id).await?))
}

/// The saved settings and the terms that apply (owner or admin): for the API and the page.
pub async fn settings(
    state: &AppState,
    user: &CurrentUser,
    id: ItemId,
) -> ApiResult<ReofferSettingsView> {
    let item = items::by_id(&state.db, id)
        .await?
        .filter(|row| {
            crate::domain::catalog::may_view(
                row.status(),
                crate::http::item_view::Viewer(Some(user)).actor(row),
            )
        })
        .ok_or_else(|| ApiError::not_found("Item"))?;
    owner_or_admin(user, &item)?;
    let saved = reoffer::by_item(&state.db, id)
        .await?
        .unwrap_or_else(ReofferRow::defaults);
    Ok(ReofferSettingsView {
        terms: view(&item, &saved),
        price_set: saved.price.map(Cents),
        quantity_override: saved.quantity_override,
        notes: saved.notes,
    })
}

/// The spec's request (5.2); also what the donor's settings page fills in.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReofferRequest {
    #[serde(default = "yes")]
    pub participate: bool,
    /// `null`: the opening bid. May be below it (spec 3.2).
    #[serde(default)]
    pub price: Option<Cents>,
    /// `null`: every remaining unit.
    #[serde(default)]
    pub quantity_override: Option<i64>,
    #[serde(default)]
    pub notes: Option<String>,
}

fn yes() -> bool {
    true
}

/// `PUT /api/items/{id}/reoffer` → the spec's `{itemId, participate, price,
/// quantityEffective}`. Locked once the auction's reoffer window has opened: changing the
/// price under buyers would be unfair. Admin changes to someone else's item are audited.
async fn save(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<ItemId>,
    ApiJson(req): ApiJson<ReofferRequest>,
) -> ApiResult<Json<ReofferView>> {
    Ok(Json(save_settings(&state, &user, id, req).await?))
}

/// Saves reoffer settings (see [`save`] for the rules): for the API and the donor page.
pub async fn save_settings(
    state: &AppState,
    user: &CurrentUser,
    id: ItemId,
    req: ReofferRequest,
) -> ApiResult<ReofferView> {
    let mut tx = state.db.begin().await?;
    let item = lock_visible(&mut tx, user, id).await?;
    owner_or_admin(user, &item)?;
    let auction = auctions::by_id(&mut *tx, AuctionId(item.auction_id))
        .await?
        .ok_or_else(|| ApiError::not_found("Auction"))?;
    if matches!(
        auction.state_at(state.now()),
        AuctionState::Reoffer | AuctionState::Closed | AuctionState::Settlement
    ) {
        return Err(ApiError::conflict(
            "reoffer_started",
            "The reoffer has already started; its settings can no longer change.",
        ));
    }
    let quantity_override =
        check_quantity_override(req.quantity_override, item.quantity_remaining())?;
    let notes = validate::optional_text("notes", req.notes.as_deref(), 2000)?;
    let before = reoffer::by_item(&mut *tx, id).await?;
    let saved = reoffer::upsert(
        &mut *tx,
        id,
        req.participate,
        req.price,
        quantity_override,
        notes.as_deref(),
    )
    .await?;
    if user.id() != item.donor() {
        let snap = |r: &ReofferRow| {
            json!({ "participate": r.participate, "price": r.price,
                    "quantityOverride": r.quantity_override, "notes": r.notes })
        };
        audit::record(
            &mut *tx,
            Some(user.id()),
            "reoffer.updated_by_admin",
            "item",
            Some(id.0),
            before.as_ref().map(snap),
            Some(snap(&saved)),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(view(&item, &saved))
}
