//! Items through their life: a donor's draft, edits, the review workflow (submit, approve,
//! return, publish) and featuring on the home page. Who may edit what, and when, is
//! `domain::catalog`; this module asks it, writes, and audits staff overrides.

use ::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;

use crate::{
    domain::{
        catalog::{self, EditAs, ItemInput, ItemType, Refusal, Transition},
        validate, AuctionId, CategoryId, Cents, ItemId, Role,
    },
    error::{AppError, AppResult},
    services::item_view::Viewer,
    session::Actor,
    state::AppState,
    store::{
        auctions, audit, categories, events,
        items::{self, ItemRow},
    },
};

/// An item as a donor writes it (POST and PUT). Money is parsed by [`Cents`], which
/// refuses negatives and a third decimal.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemRequest {
    /// POST only: the auction to add to (default: the current one).
    #[serde(default)]
    pub auction_id: Option<AuctionId>,
    #[serde(rename = "type")]
    pub item_type: ItemType,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub donor_notes: Option<String>,
    #[serde(default)]
    pub restrictions: Option<String>,
    pub category_id: CategoryId,
    #[serde(default)]
    pub tags: Vec<String>,
    pub opening_bid: Cents,
    #[serde(default)]
    pub bid_increment: Option<Cents>,
    #[serde(default)]
    pub buy_now_price: Option<Cents>,
    #[serde(default)]
    pub fair_market_value: Option<Cents>,
    #[serde(default = "one")]
    pub quantity_total: i64,
    /// Managers only.
    #[serde(default)]
    pub featured: Option<bool>,
}

fn one() -> i64 {
    1
}

impl ItemRequest {
    /// The fields as the catalog rules validate them.
    pub fn input(&self) -> ItemInput {
        ItemInput {
            item_type: Some(self.item_type),
            title: self.title.clone(),
            description: self.description.clone(),
            donor_notes: self.donor_notes.clone(),
            restrictions: self.restrictions.clone(),
            tags: self.tags.clone(),
            opening_bid: self.opening_bid,
            bid_increment: self.bid_increment,
            buy_now_price: self.buy_now_price,
            fair_market_value: self.fair_market_value,
            quantity_total: self.quantity_total,
        }
    }
}

/// The category an item is filed under must exist and be active.
pub async fn active_category(db: &mut PgConnection, id: CategoryId) -> AppResult<()> {
    let field = |e: AppError| AppError {
        field: Some("categoryId"),
        ..e
    };
    match categories::by_id(&mut *db, id).await? {
        None => Err(field(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_category",
            "That category does not exist.",
        ))),
        Some(c) if !c.active => Err(field(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "inactive_category",
            format!(
                "The category {:?} is no longer in use; please choose another.",
                c.name
            ),
        ))),
        Some(_) => Ok(()),
    }
}

/// Loads an item `viewer` may see. A hidden item is a 404, exactly as a missing one, so
/// drafts do not leak through their ids: the one reading for the API, the item page and
/// the donor's pages.
pub async fn find_visible(state: &AppState, viewer: Viewer<'_>, id: ItemId) -> AppResult<ItemRow> {
    items::by_id(&state.db, id)
        .await?
        .filter(|row| catalog::may_view(row.status(), viewer.actor(row)))
        .ok_or_else(|| AppError::not_found("Item"))
}

/// Loads an item the viewer may see, locked for update; a hidden item is a 404, exactly as
/// a missing one, so drafts do not leak through their ids.
pub async fn lock_visible(db: &mut PgConnection, user: &Actor, id: ItemId) -> AppResult<ItemRow> {
    let row = items::by_id_for_update(&mut *db, id)
        .await?
        .ok_or_else(|| AppError::not_found("Item"))?;
    if !catalog::may_view(row.status(), Viewer(Some(user)).actor(&row)) {
        return Err(AppError::not_found("Item"));
    }
    Ok(row)
}

/// May `user` edit this item (fields, images, event, settings) now? The refusal, as every
/// edge says it.
pub fn edit_access(user: &Actor, row: &ItemRow) -> AppResult<EditAs> {
    catalog::may_edit(row.status(), Viewer(Some(user)).actor(row)).map_err(|r| match r {
        Refusal::NotAllowed => AppError::forbidden(),
        Refusal::Published => AppError::conflict(
            "item_published",
            "This item is already in the public catalog and can no longer be changed.",
        ),
        Refusal::WrongStatus => AppError::conflict(
            "item_approved",
            "This item has been approved; ask an auction manager to return it for changes.",
        ),
    })
}

/// A snapshot of an item for the audit log.
pub fn snapshot(row: &ItemRow) -> serde_json::Value {
    json!({
        "type": row.item_type, "title": row.title, "description": row.description,
        "donorNotes": row.donor_notes, "restrictions": row.restrictions,
        "categoryId": row.category_id, "tags": row.tags, "openingBid": row.opening_min_bid,
        "bidIncrement": row.bid_increment, "buyNowPrice": row.buy_now_price,
        "fairMarketValue": row.fair_market_value, "quantityTotal": row.quantity_total,
        "status": row.status, "featured": row.featured, "reviewNote": row.review_note,
    })
}

fn featured_needs_manager() -> AppError {
    AppError {
        field: Some("featured"),
        ..AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Only an auction manager may feature an item.",
        )
    }
}

/// Creates a donor's draft: the one path for the API and the donor pages. Returns the row.
pub async fn create_item(state: &AppState, user: &Actor, req: &ItemRequest) -> AppResult<ItemRow> {
    user.require(&[Role::Donor])?;
    let fields = catalog::validate_item(req.input())?;
    let featured = req.featured.unwrap_or(false);
    if featured && !user.roles.has_any(&[Role::Manager]) {
        return Err(featured_needs_manager());
    }
    let mut tx = state.db.begin().await?;
    let auction = match req.auction_id {
        Some(id) => auctions::by_id(&mut *tx, id)
            .await?
            .ok_or_else(|| AppError {
                field: Some("auctionId"),
                ..AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown_auction",
                    "That auction does not exist.",
                )
            })?,
        None => auctions::current(&mut *tx, state.now())
            .await?
            .ok_or_else(|| {
                AppError::conflict(
                    "no_auction",
                    "There is no auction to add items to yet; please ask an administrator.",
                )
            })?,
    };
    active_category(&mut tx, req.category_id).await?;
    let id = items::insert(
        &mut *tx,
        auction.auction_id(),
        user.id(),
        req.category_id,
        &fields,
        featured,
    )
    .await?;
    tx.commit().await?;
    items::by_id(&state.db, id)
        .await?
        .ok_or_else(|| AppError::internal("reading a new item", "row vanished"))
}

/// Replaces an item's editable fields: the owner while draft or submitted; an admin until
/// published, audited. The one path for the API and the donor pages.
pub async fn update_item(
    state: &AppState,
    user: &Actor,
    id: ItemId,
    req: &ItemRequest,
) -> AppResult<ItemRow> {
    let mut tx = state.db.begin().await?;
    let before = lock_visible(&mut tx, user, id).await?;
    let edit = edit_access(user, &before)?;
    if req.auction_id.is_some_and(|a| a.0 != before.auction_id) {
        return Err(AppError {
            field: Some("auctionId"),
            ..AppError::validation("An item cannot move to another auction.")
        });
    }
    let fields = catalog::validate_item(req.input())?;
    let featured = req.featured.unwrap_or(before.featured);
    if featured != before.featured && !user.roles.has_any(&[Role::Manager]) {
        return Err(featured_needs_manager());
    }
    if fields.item_type != ItemType::Competitive && before.bid_count > 0 {
        return Err(AppError::conflict(
            "item_has_bids",
            "This item already has bids, so it must stay a competitive item.",
        ));
    }
    // The bid journal is replayed with the item's opening bid and increment: changing them
    // under existing bids would make the recorded bids disagree with the rules.
    if before.bid_count > 0
        && (fields.opening_bid.0 != before.opening_min_bid
            || fields.bid_increment.map(|c| c.0) != before.bid_increment)
    {
        return Err(AppError::conflict(
            "item_has_bids",
            "This item already has bids, so its opening bid and increment cannot change.",
        ));
    }
    active_category(&mut tx, req.category_id).await?;
    items::update(&mut *tx, id, req.category_id, &fields, featured).await?;
    let after = items::by_id(&mut *tx, id)
        .await?
        .ok_or_else(|| AppError::not_found("Item"))?;
    if edit == EditAs::AdminOverride {
        audit::record(
            &mut *tx,
            Some(user.id()),
            "item.updated_by_admin",
            "item",
            Some(id.0),
            Some(snapshot(&before)),
            Some(snapshot(&after)),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(after)
}

/// Runs a workflow step: checks it against the rules, writes the new status (and note),
/// audits staff steps, and returns the item. The one path for the API and the pages.
pub async fn apply_step(
    state: &AppState,
    user: &Actor,
    id: ItemId,
    step: Transition,
    note: Option<String>,
) -> AppResult<ItemRow> {
    let mut tx = state.db.begin().await?;
    let before = lock_visible(&mut tx, user, id).await?;
    let actor = Viewer(Some(user)).actor(&before);
    let to = catalog::transition(before.status(), step, actor).map_err(|r| match r {
        Refusal::NotAllowed => AppError::forbidden(),
        Refusal::WrongStatus | Refusal::Published => AppError::conflict(
            "invalid_transition",
            format!(
                "That cannot be done to an item that is {}.",
                before.status().as_str()
            ),
        ),
    })?;
    if step == Transition::Submit
        && before.item_type() == ItemType::FixedPriceEvent
        && events::by_item(&mut *tx, id).await?.is_none()
    {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "event_required",
            "Please add the event's date, place and capacity before submitting it.",
        ));
    }
    // A returned item keeps the manager's note for the donor; approval may replace it;
    // submitting keeps it for the reviewer's reference.
    let review_note = match step {
        Transition::Approve | Transition::Return => note,
        _ => before.review_note.clone(),
    };
    items::set_status(&mut *tx, id, to, review_note.as_deref()).await?;
    let after = items::by_id(&mut *tx, id)
        .await?
        .ok_or_else(|| AppError::not_found("Item"))?;
    if step != Transition::Submit {
        let action = match step {
            Transition::Approve => "item.approved",
            Transition::Return => "item.returned",
            Transition::Publish => "item.published",
            Transition::Close | Transition::Submit => "item.closed",
        };
        audit::record(
            &mut *tx,
            Some(user.id()),
            action,
            "item",
            Some(id.0),
            Some(json!({ "status": before.status })),
            Some(json!({ "status": after.status, "reviewNote": after.review_note })),
        )
        .await?;
    }
    tx.commit().await?;
    if matches!(step, Transition::Publish | Transition::Close) {
        // The engine may remember the item as not live (someone looked at it before), or
        // hold its book: either way it reads the item again now.
        state.engine.item_changed(id).await;
    }
    Ok(after)
}

/// A manager's review decision and note as a workflow step. Returning needs a note: the
/// donor must learn what to change.
pub fn review_decision(
    decision: &str,
    note: Option<&str>,
) -> AppResult<(Transition, Option<String>)> {
    let note = validate::optional_text("note", note, 4000)?;
    let transition = match decision {
        "approve" => Transition::Approve,
        "return" if note.is_none() => {
            return Err(AppError {
                field: Some("note"),
                ..AppError::validation("Please tell the donor what to change.")
            })
        }
        "return" => Transition::Return,
        _ => {
            return Err(AppError {
                field: Some("decision"),
                ..AppError::validation("decision must be \"approve\" or \"return\".")
            })
        }
    };
    Ok((transition, note))
}

/// Features an item on the home page or not (manager, audited). Shared with the review page.
pub async fn feature_item(
    state: &AppState,
    user: &Actor,
    id: ItemId,
    featured: bool,
) -> AppResult<ItemRow> {
    user.require(&[Role::Manager])?;
    let mut tx = state.db.begin().await?;
    let before = lock_visible(&mut tx, user, id).await?;
    items::set_featured(&mut *tx, id, featured).await?;
    audit::record(
        &mut *tx,
        Some(user.id()),
        "item.featured",
        "item",
        Some(id.0),
        Some(json!({ "featured": before.featured })),
        Some(json!({ "featured": featured })),
    )
    .await?;
    let after = items::by_id(&mut *tx, id)
        .await?
        .ok_or_else(|| AppError::not_found("Item"))?;
    tx.commit().await?;
    Ok(after)
}
