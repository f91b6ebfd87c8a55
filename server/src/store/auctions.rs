//! Auctions and their calendar.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use crate::domain::{AuctionId, AuctionState, Calendar};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuctionRow {
    pub id: i64,
    pub year: i32,
    pub name: String,
    pub registration_open_at: DateTime<Utc>,
    pub catalog_publish_at: DateTime<Utc>,
    pub bidding_open_at: DateTime<Utc>,
    pub bidding_close_at: DateTime<Utc>,
    pub reoffer_open_at: DateTime<Utc>,
    pub reoffer_close_at: DateTime<Utc>,
    pub settlement_open_at: DateTime<Utc>,
    pub soft_close_seconds: i32,
    pub hard_close_at: Option<DateTime<Utc>>,
    pub state: String,
    pub state_override: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl AuctionRow {
    pub fn auction_id(&self) -> AuctionId {
        AuctionId(self.id)
    }

    pub fn calendar(&self) -> Calendar {
        Calendar {
            registration_open_at: self.registration_open_at,
            catalog_publish_at: self.catalog_publish_at,
            bidding_open_at: self.bidding_open_at,
            bidding_close_at: self.bidding_close_at,
            reoffer_open_at: self.reoffer_open_at,
            reoffer_close_at: self.reoffer_close_at,
            settlement_open_at: self.settlement_open_at,
        }
    }

    pub fn override_state(&self) -> Option<AuctionState> {
        self.state_override.as_deref().and_then(AuctionState::parse)
    }

    /// The state at `now`: a manager's override when one is set, else the calendar's.
    pub fn state_at(&self, now: DateTime<Utc>) -> AuctionState {
        self.override_state()
            .unwrap_or_else(|| self.calendar().state_at(now))
    }

    pub fn stored_state(&self) -> AuctionState {
        AuctionState::parse(&self.state).unwrap_or(AuctionState::Draft)
    }
}

const COLUMNS: &str = "id, year, name, registration_open_at, catalog_publish_at, bidding_open_at, \
    bidding_close_at, reoffer_open_at, reoffer_close_at, settlement_open_at, soft_close_seconds, \
    hard_close_at, state, state_override, updated_at";

/// What an admin writes when creating or editing an auction.
#[derive(Debug, Clone)]
pub struct AuctionFields {
    pub year: i32,
    pub name: String,
    pub calendar: Calendar,
    pub soft_close_seconds: i32,
    pub hard_close_at: Option<DateTime<Utc>>,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    f: &AuctionFields,
    state: AuctionState,
) -> sqlx::Result<Option<AuctionRow>> {
    let c = &f.calendar;
    sqlx::query_as(&format!(
        "INSERT INTO auctions (year, name, registration_open_at, catalog_publish_at, bidding_open_at,
             bidding_close_at, reoffer_open_at, reoffer_close_at, settlement_open_at,
             soft_close_seconds, hard_close_at, state)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)
         ON CONFLICT (year) DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(f.year)
    .bind(&f.name)
    .bind(c.registration_open_at)
    .bind(c.catalog_publish_at)
    .bind(c.bidding_open_at)
    .bind(c.bidding_close_at)
    .bind(c.reoffer_open_at)
    .bind(c.reoffer_close_at)
    .bind(c.settlement_open_at)
    .bind(f.soft_close_seconds)
    .bind(f.hard_close_at)
    .bind(state.as_str())
    .fetch_optional(db)
    .await
}

pub async fn update(
    db: impl PgExecutor<'_>,
    id: AuctionId,
    f: &AuctionFields,
    state: AuctionState,
) -> sqlx::Result<AuctionRow> {
    let c = &f.calendar;
    sqlx::query_as(&format!(
        "UPDATE auctions SET year = $2, name = $3, registration_open_at = $4, catalog_publish_at = $5,
             bidding_open_at = $6, bidding_close_at = $7, reoffer_open_at = $8, reoffer_close_at = $9,
             settlement_open_at = $10, soft_close_seconds = $11, hard_close_at = $12, state = $13,
             updated_at = now()
         WHERE id = $1
         RETURNING {COLUMNS}"
    ))
    .bind(id.0)
    .bind(f.year)
    .bind(&f.name)
    .bind(c.registration_open_at)
    .bind(c.catalog_publish_at)
    .bind(c.bidding_open_at)
    .bind(c.bidding_close_at)
    .bind(c.reoffer_open_at)
    .bind(c.reoffer_close_at)
    .bind(c.settlement_open_at)
    .bind(f.soft_close_seconds)
    .bind(f.hard_close_at)
    .bind(state.as_str())
    .fetch_one(db)
    .await
}

pub async fn by_id(db: impl PgExecutor<'_>, id: AuctionId) -> sqlx::Result<Option<AuctionRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM auctions WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(db)
        .await
}

pub async fn by_id_for_update(
    db: impl PgExecutor<'_>,
    id: AuctionId,
) -> sqlx::Result<Option<AuctionRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM auctions WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(db)
    .await
}

/// The current auction: the latest one whose registration has opened; before any has, the
/// next one to open. Drafts that have not reached their registration date come second.
pub async fn current(
    db: impl PgExecutor<'_>,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<AuctionRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM auctions
          ORDER BY (registration_open_at <= $1) DESC,
                   CASE WHEN registration_open_at <= $1 THEN registration_open_at END DESC,
                   registration_open_at ASC
          LIMIT 1"
    ))
    .bind(now)
    .fetch_optional(db)
    .await
}

pub async fn all(db: &PgPool) -> sqlx::Result<Vec<AuctionRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM auctions ORDER BY year DESC"
    ))
    .fetch_all(db)
    .await
}

/// Whether the auction still has items published (on sale or up for bids).
pub async fn has_published_items(db: &PgPool, id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM items WHERE auction_id = $1 AND status = 'published')",
    )
    .bind(id)
    .fetch_one(db)
    .await
}

pub async fn set_state(
    db: impl PgExecutor<'_>,
    id: AuctionId,
    state: AuctionState,
    state_override: Option<AuctionState>,
) -> sqlx::Result<AuctionRow> {
    sqlx::query_as(&format!(
        "UPDATE auctions SET state = $2, state_override = $3, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id.0)
    .bind(state.as_str())
    .bind(state_override.map(|s| s.as_str()))
    .fetch_one(db)
    .await
}

/// Persists the calendar's state where it changed; returns the auctions that moved, with
/// their old state. Guarded by the old state so two nodes flipping at once write once;
/// each flip is audited (as the system's) in its own transaction.
pub async fn persist_calendar_states(
    db: &PgPool,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<(AuctionRow, AuctionState)>> {
    let mut moved = Vec::new();
    for row in all(db).await? {
        let due = row.state_at(now);
        let stored = row.stored_state();
        if due != stored {
            // The flip and its audit row commit together: a crash between them must not
            // leave a state change nobody can account for.
            let mut tx = db.begin().await?;
            let updated: Option<AuctionRow> = sqlx::query_as(&format!(
                "UPDATE auctions SET state = $2, updated_at = now() WHERE id = $1 AND state = $3 RETURNING {COLUMNS}"
            ))
            .bind(row.id)
            .bind(due.as_str())
            .bind(stored.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(updated) = updated {
                super::audit::record(
                    &mut *tx,
                    None,
                    "auction.state_changed",
                    "auction",
                    Some(updated.id),
                    Some(serde_json::json!({ "state": stored.as_str() })),
                    Some(serde_json::json!({ "state": updated.state })),
                )
                .await?;
                tx.commit().await?;
                moved.push((updated, stored));
            }
        }
    }
    Ok(moved)
}

/// The titles of the auction's items in the catalog (published, or closed), by id: what
/// the live close pages name the engine's items by.
pub async fn item_titles(db: &PgPool, id: AuctionId) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as(
        "SELECT id, title FROM items WHERE auction_id = $1 AND status IN ('published', 'closed') ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(db)
    .await
}
