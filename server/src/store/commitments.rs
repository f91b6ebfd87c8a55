//! What a bidder owes: one commitment per win, reoffer purchase or fixed-price signup
//! (written by the bid engine's journal, read here for the bidder's own account page).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// One commitment of a user, with its item's title.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CommitmentLine {
    pub id: i64,
    pub item_id: i64,
    pub title: String,
    /// `win`, `reoffer` or `fixed_price`.
    pub source: String,
    pub quantity: i32,
    pub price_each: i64,
    pub created_at: DateTime<Utc>,
}

impl CommitmentLine {
    /// What the line costs in all, in cents.
    pub fn amount(&self) -> i64 {
        self.price_each * i64::from(self.quantity)
    }
}

/// Every commitment of `user`, oldest first.
pub async fn of_user(db: impl PgExecutor<'_>, user: i64) -> sqlx::Result<Vec<CommitmentLine>> {
    sqlx::query_as(
        "SELECT c.id, c.item_id, i.title, c.source, c.quantity, c.price_each, c.created_at
           FROM commitments c JOIN items i ON i.id = c.item_id
          WHERE c.user_id = $1
          ORDER BY c.created_at, c.id",
    )
    .bind(user)
    .fetch_all(db)
    .await
}
