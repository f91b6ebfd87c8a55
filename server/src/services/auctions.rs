//! Auctions as the calendar and the managers move them through their phases, and what each
//! phase begins: the reoffer phase's announcement when it opens, the items still unsold
//! closed when it ends. The scheduler's calendar flips and a manager's pins both come here,
//! so a phase begins the same way whoever starts it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    domain::{
        calendar::{CalendarError, Milestone},
        validate, AuctionId, AuctionState, Calendar, Cents, ItemId, Role, UserId,
    },
    error::{AppError, AppResult, ResultExt},
    session::Actor,
    state::AppState,
    store::{
        auctions::{self, AuctionFields, AuctionRow},
        audit,
    },
};

/// The public view of an auction.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuctionView {
    pub id: AuctionId,
    pub year: i32,
    pub name: String,
    #[serde(flatten)]
    pub calendar: Calendar,
    pub soft_close_seconds: i32,
    pub hard_close_at: Option<DateTime<Utc>>,
    pub state: AuctionState,
    pub state_label: &'static str,
    /// True while a manager's override, not the calendar, decides the state.
    pub state_overridden: bool,
    pub next_milestone: Option<Milestone>,
    /// The server's clock, so countdowns run on server time, not the device's.
    pub server_time: DateTime<Utc>,
}

impl AuctionView {
    pub fn new(row: &AuctionRow, now: DateTime<Utc>) -> AuctionView {
        let state = row.state_at(now);
        AuctionView {
            id: row.auction_id(),
            year: row.year,
            name: row.name.clone(),
            calendar: row.calendar(),
            soft_close_seconds: row.soft_close_seconds,
            hard_close_at: row.hard_close_at,
            state,
            state_label: state.label(),
            state_overridden: row.override_state().is_some(),
            next_milestone: row.calendar().next_milestone(now),
            server_time: now,
        }
    }
}

/// An auction as an admin writes it (`POST`/`PUT /api/auctions`, and the calendar form
/// of `/manage/auctions`).
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

/// Two minutes: the soft close when the request names none.
pub fn default_soft_close() -> i32 {
    120
}

impl AuctionRequest {
    /// The fields to store, or the first thing wrong with them. A calendar out of order
    /// names no field here (the API never did); [`calendar_field`] says which date it is.
    pub fn validate(self) -> Result<AuctionFields, AppError> {
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

/// The date a calendar error is about (the later of the two out of order), by its API name:
/// where a form shows the error.
pub fn calendar_field(error: &CalendarError) -> &'static str {
    match error {
        CalendarError::CatalogBeforeRegistration => "catalogPublishAt",
        CalendarError::BiddingBeforeCatalog => "biddingOpenAt",
        CalendarError::BiddingCloseNotAfterOpen => "biddingCloseAt",
        CalendarError::ReofferBeforeBiddingClose => "reofferOpenAt",
        CalendarError::ReofferCloseNotAfterOpen => "reofferCloseAt",
        CalendarError::SettlementBeforeReofferClose => "settlementOpenAt",
    }
}

fn year_taken(year: i32) -> AppError {
    AppError::conflict(
        "year_taken",
        format!("There is already an auction for {year}."),
    )
}

/// Creates an auction (admin), audited; its state is the calendar's now.
pub async fn create(state: &AppState, user: &Actor, req: AuctionRequest) -> AppResult<AuctionRow> {
    user.require(&[Role::Admin])?;
    let fields = req.validate()?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let row = auctions::insert(&mut *tx, &fields, fields.calendar.state_at(now))
        .await?
        .ok_or_else(|| year_taken(fields.year))?;
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
    Ok(row)
}

/// Replaces an auction's name and calendar (admin), audited; the engine follows the new
/// dates at once. A manager's pinned state stays pinned.
pub async fn update(
    state: &AppState,
    user: &Actor,
    id: AuctionId,
    req: AuctionRequest,
) -> AppResult<AuctionRow> {
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
            year_taken(fields.year).on_field("year")
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
    Ok(after)
}

/// The auction as its audit entries show it.
pub fn snapshot(row: &AuctionRow, now: DateTime<Utc>) -> serde_json::Value {
    serde_json::to_value(AuctionView::new(row, now)).unwrap_or_default()
}

/// Pins the auction's state (or gives it back to the calendar with `None`), audited, and
/// begins what the new phase begins (manager, admin).
pub async fn pin_state(
    state: &AppState,
    user: &Actor,
    id: AuctionId,
    pinned: Option<AuctionState>,
    reason: Option<&str>,
) -> AppResult<AuctionRow> {
    user.require(&[Role::Manager])?;
    let reason = validate::optional_text("reason", reason, 500)?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let before = auctions::by_id_for_update(&mut *tx, id)
        .await?
        .ok_or_else(|| AppError::not_found("Auction"))?;
    let effective = pinned.unwrap_or_else(|| before.calendar().state_at(now));
    let after = auctions::set_state(&mut *tx, id, effective, pinned).await?;
    let mut after_snapshot = snapshot(&after, now);
    if let (Some(reason), Some(obj)) = (reason, after_snapshot.as_object_mut()) {
        obj.insert("reason".into(), json!(reason));
    }
    audit::record(
        &mut *tx,
        Some(user.id()),
        "auction.state_overridden",
        "auction",
        Some(id.0),
        Some(snapshot(&before, now)),
        Some(after_snapshot),
    )
    .await?;
    tx.commit().await?;
    // The books close by the calendar: the engine follows the new dates at once.
    state
        .engine
        .calendar_changed(id, after.state_at(now), after.override_state().is_some())
        .await;
    phase_changed(state, &after, before.state_at(now), after.state_at(now)).await?;
    Ok(after)
}

/// What a move from `old` to `new` begins. Each step is written so that doing it twice does
/// nothing more (a restart, the scheduler and a manager racing).
pub async fn phase_changed(
    state: &AppState,
    row: &AuctionRow,
    old: AuctionState,
    new: AuctionState,
) -> AppResult<()> {
    if new == AuctionState::Reoffer && old != AuctionState::Reoffer {
        let sent = announce_reoffer(state, row).await?;
        tracing::info!(auction = row.id, bidders = sent, "reoffer announced");
    }
    if new >= AuctionState::Closed && old < AuctionState::Closed {
        let closed = close_unsold(state, row).await?;
        tracing::info!(
            auction = row.id,
            items = closed,
            "reoffer over: unsold items closed"
        );
    }
    Ok(())
}

/// A `reoffer_announcement` (the spec's payload) for every registered bidder (verified
/// accounts with the bidder role), once per bidder and auction.
pub async fn announce_reoffer(state: &AppState, row: &AuctionRow) -> AppResult<u64> {
    let payload = json!({
        "auctionId": row.auction_id(),
        "opensAt": row.reoffer_open_at,
        "closesAt": row.reoffer_close_at,
    });
    let inserted = sqlx::query(
        "INSERT INTO notifications (user_id, channel, type, template_key, payload, related_entity_type, related_entity_id)
         SELECT u.id, 'email', 'reoffer_announcement', 'reoffer_open', $2, 'auction', $1
           FROM users u
          WHERE 'bidder' = ANY(u.roles) AND u.email_verified_at IS NOT NULL
         ON CONFLICT (user_id, related_entity_id) WHERE type = 'reoffer_announcement' DO NOTHING",
    )
    .bind(row.id)
    .bind(payload)
    .execute(&state.db)
    .await?;
    Ok(inserted.rows_affected())
}

/// The reoffer phase is over: what is still published closes (unsold), and the engine
/// reads the auction's items again.
pub async fn close_unsold(state: &AppState, row: &AuctionRow) -> AppResult<u64> {
    let closed = sqlx::query(
        "UPDATE items SET status = 'closed', updated_at = now()
          WHERE auction_id = $1 AND status = 'published'",
    )
    .bind(row.id)
    .execute(&state.db)
    .await?
    .rows_affected();
    let now = state.now();
    state
        .engine
        .calendar_changed(
            row.auction_id(),
            row.state_at(now),
            row.override_state().is_some(),
        )
        .await;
    Ok(closed)
}

/// One item won.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WinnerLine {
    pub item_id: ItemId,
    pub title: String,
    pub user_id: UserId,
    pub name: String,
    /// The winner's paddle, as bidders see it (`p_<n>`).
    pub paddle: String,
    pub amount: Cents,
    pub quantity: i32,
    pub determined_at: DateTime<Utc>,
}

/// `GET /auctions/{id}/winners`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Winners {
    pub auction_id: AuctionId,
    pub winners: Vec<WinnerLine>,
}

/// Every unit won in the auction, by item (managers, admins, finance: staff see names).
pub async fn winners(state: &AppState, user: &Actor, id: AuctionId) -> AppResult<Winners> {
    user.require(&[Role::Manager, Role::Finance])?;
    auctions::by_id(&state.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("Auction"))?;
    type Row = (i64, String, i64, String, i32, i64, i32, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT w.item_id, i.title, w.user_id, u.name, u.paddle_number, w.amount, w.quantity, w.determined_at
           FROM winners w JOIN items i ON i.id = w.item_id JOIN users u ON u.id = w.user_id
          WHERE i.auction_id = $1
          ORDER BY i.title, w.item_id, w.amount DESC, w.id",
    )
    .bind(id.0)
    .fetch_all(&state.db)
    .await?;
    let winners = rows
        .into_iter()
        .map(
            |(item, title, user, name, paddle, amount, quantity, determined_at)| WinnerLine {
                item_id: ItemId(item),
                title,
                user_id: UserId(user),
                name,
                paddle: crate::engine::bidder_label(paddle),
                amount: Cents(amount),
                quantity,
                determined_at,
            },
        )
        .collect();
    Ok(Winners {
        auction_id: id,
        winners,
    })
}
