//! A donor's buy-it-now settings for what is left after bidding (spec 5.2): read with
//! defaults filled in, saved until the reoffer opens. Owner or admin only; an admin's
//! change to someone else's item is audited.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    domain::{
        catalog::{check_quantity_override, reoffer_terms},
        validate, AuctionId, AuctionState, Cents, ItemId, Role,
    },
    error::{AppError, AppResult},
    services::{
        item_view::Viewer,
        items::{find_visible, lock_visible},
    },
    session::Actor,
    state::AppState,
    store::{
        auctions, audit,
        items::ItemRow,
        reoffer::{self, ReofferRow},
    },
};

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
fn owner_or_admin(user: &Actor, item: &ItemRow) -> AppResult<()> {
    if user.id() == item.donor() || user.roles.has(Role::Admin) {
        Ok(())
    } else {
        Err(AppError::forbidden())
    }
}

/// The saved settings and the terms that apply (owner or admin): for the API and the page.
pub async fn settings(
    state: &AppState,
    user: &Actor,
    id: ItemId,
) -> AppResult<ReofferSettingsView> {
    let item = find_visible(state, Viewer(Some(user)), id).await?;
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

/// Saves reoffer settings: for the API and the donor page. Locked once the auction's
/// reoffer window has opened: changing the price under buyers would be unfair. Admin
/// changes to someone else's item are audited.
pub async fn save_settings(
    state: &AppState,
    user: &Actor,
    id: ItemId,
    req: ReofferRequest,
) -> AppResult<ReofferView> {
    let mut tx = state.db.begin().await?;
    let item = lock_visible(&mut tx, user, id).await?;
    owner_or_admin(user, &item)?;
    let auction = auctions::by_id(&mut *tx, AuctionId(item.auction_id))
        .await?
        .ok_or_else(|| AppError::not_found("Auction"))?;
    if matches!(
        auction.state_at(state.now()),
        AuctionState::Reoffer | AuctionState::Closed | AuctionState::Settlement
    ) {
        return Err(AppError::conflict(
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
    // The engine sells from its own copy of the terms: it reads them again.
    state.engine.item_changed(id).await;
    Ok(view(&item, &saved))
}

/// One item on offer in the reoffer phase (the spec's shape).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReofferLine {
    pub id: ItemId,
    pub title: String,
    pub price: Cents,
    pub quantity_remaining: u32,
}

/// When the reoffer phase is open.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReofferWindow {
    pub opens_at: chrono::DateTime<chrono::Utc>,
    pub closes_at: chrono::DateTime<chrono::Utc>,
}

/// `GET /auctions/{id}/reoffer/items`: the inventory and its window.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReofferListing {
    pub items: Vec<ReofferLine>,
    pub window: ReofferWindow,
    /// Whether buying is open right now.
    pub open: bool,
}

/// The reoffer inventory (spec 3.2): every item of the auction with units left to sell
/// after bidding (unsold competitive items, unfilled fixed-price capacity) whose donor did
/// not opt out; items with successful bids are not shown. Quantities and prices are the
/// engine's committed ones, the same the live `capacity` frames carry.
pub async fn listing(state: &AppState, id: AuctionId) -> AppResult<ReofferListing> {
    let auction = auctions::by_id(&state.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("Auction"))?;
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, title FROM items WHERE auction_id = $1 AND status IN ('published', 'closed') ORDER BY title, id",
    )
    .bind(id.0)
    .fetch_all(&state.db)
    .await?;
    let mut items = Vec::new();
    for (item, title) in rows {
        let Some(live) = state.engine.live_state(ItemId(item)).await else {
            continue;
        };
        if on_offer(&live) {
            items.push(ReofferLine {
                id: live.item,
                title,
                price: live.unit_price,
                quantity_remaining: live.stock_left,
            });
        }
    }
    Ok(ReofferListing {
        items,
        window: ReofferWindow {
            opens_at: auction.reoffer_open_at,
            closes_at: auction.reoffer_close_at,
        },
        open: state
            .engine
            .auction_state(id)
            .unwrap_or(auction.state_at(state.now()))
            == AuctionState::Reoffer,
    })
}

/// Whether the reoffer sells this item now: units left, and (if it was up for bids) its
/// bidding closed without selling them.
fn on_offer(live: &crate::engine::ItemState) -> bool {
    live.stock_left > 0 && (!live.competitive || live.closed)
}

/// The current auction (the one the home page shows) and its reoffer listing; `None` when
/// there is no auction at all.
pub async fn current_listing(
    state: &AppState,
) -> AppResult<Option<(auctions::AuctionRow, ReofferListing)>> {
    let Some(row) = auctions::current(&state.db, state.now()).await? else {
        return Ok(None);
    };
    let listing = listing(state, row.auction_id()).await?;
    Ok(Some((row, listing)))
}

/// One item as the reoffer offers it right now, for the buyer's confirmation: its line
/// when it has units to sell (`None`: sold out, or not in the reoffer), and whether buying
/// is open. Only items the viewer may see.
pub async fn offer(
    state: &AppState,
    viewer: Viewer<'_>,
    id: ItemId,
) -> AppResult<(ItemRow, Option<ReofferLine>, bool)> {
    let item = find_visible(state, viewer, id).await?;
    let auction = auctions::by_id(&state.db, AuctionId(item.auction_id))
        .await?
        .ok_or_else(|| AppError::not_found("Auction"))?;
    let open = state
        .engine
        .auction_state(auction.auction_id())
        .unwrap_or(auction.state_at(state.now()))
        == AuctionState::Reoffer;
    let line = state
        .engine
        .live_state(id)
        .await
        .filter(on_offer)
        .map(|live| ReofferLine {
            id,
            title: item.title.clone(),
            price: live.unit_price,
            quantity_remaining: live.stock_left,
        });
    Ok((item, line, open))
}

/// The most units one purchase takes: a family buying dinner seats, not a reseller.
pub const MAX_UNITS_PER_PURCHASE: u32 = 20;

/// Buys `quantity` units of a reoffer item, first come first served, no holds; the answer
/// once durable (201 with the commitment, 409 `sold_out`...). Signed-in, verified buyers.
pub async fn buy(
    state: &AppState,
    user: &Actor,
    item: ItemId,
    quantity: u32,
    idempotency_key: Option<String>,
) -> AppResult<crate::engine::BidReply> {
    user.require_verified()?;
    if quantity == 0 || quantity > MAX_UNITS_PER_PURCHASE {
        return Err(AppError::validation(format!(
            "quantity must be 1 to {MAX_UNITS_PER_PURCHASE}."
        ))
        .on_field("quantity"));
    }
    Ok(state
        .engine
        .buy(crate::engine::BuyInput {
            item,
            buyer: user.id(),
            quantity,
            idempotency_key,
        })
        .await)
}
