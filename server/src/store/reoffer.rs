//! Donors' reoffer (buy-it-now) settings, one row per item once a donor has saved them;
//! no row means the defaults (participate, opening price, all remaining units).

use sqlx::PgExecutor;

use crate::domain::{Cents, ItemId};

#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct ReofferRow {
    pub participate: bool,
    pub price: Option<i64>,
    pub quantity_override: Option<i32>,
    pub notes: Option<String>,
}

impl ReofferRow {
    /// What an item without saved settings gets (spec 3.2: opt-in by default).
    pub fn defaults() -> ReofferRow {
        ReofferRow {
            participate: true,
            ..ReofferRow::default()
        }
    }
}

pub async fn by_item(db: impl PgExecutor<'_>, item: ItemId) -> sqlx::Result<Option<ReofferRow>> {
    sqlx::query_as(
        "SELECT participate, price, quantity_override, notes
           FROM item_reoffer_settings WHERE item_id = $1",
    )
    .bind(item.0)
    .fetch_optional(db)
    .await
}

/// Saves the settings, replacing earlier ones.
pub async fn upsert(
    db: impl PgExecutor<'_>,
    item: ItemId,
    participate: bool,
    price: Option<Cents>,
    quantity_override: Option<i32>,
    notes: Option<&str>,
) -> sqlx::Result<ReofferRow> {
    sqlx::query_as(
        "INSERT INTO item_reoffer_settings (item_id, participate, price, quantity_override, notes)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (item_id) DO UPDATE SET participate = EXCLUDED.participate,
             price = EXCLUDED.price, quantity_override = EXCLUDED.quantity_override,
             notes = EXCLUDED.notes
         RETURNING participate, price, quantity_override, notes",
    )
    .bind(item.0)
    .bind(participate)
    .bind(price.map(|c| c.0))
    .bind(quantity_override)
    .bind(notes)
    .fetch_one(db)
    .await
}
