//! Hosted events (one per item at most) and the question the address privacy rule needs
//! answered: does this viewer hold a place at this item's event?

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::{
    domain::{
        hosted_event::{Address, AddressPrivacy, EventFields},
        EventId, ItemId, UserId,
    },
    store::items::SEATS_LEFT_SQL,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub item_id: i64,
    pub datetime_start: DateTime<Utc>,
    pub datetime_end: DateTime<Utc>,
    pub location_label: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub address_privacy: String,
    pub capacity: i32,
    pub seats_left: i32,
    pub accessibility_notes: Option<String>,
    pub age_restrictions: Option<String>,
    pub dietary_notes: Option<String>,
    pub host_notes: Option<String>,
}

impl EventRow {
    pub fn event_id(&self) -> EventId {
        EventId(self.id)
    }
    pub fn privacy(&self) -> AddressPrivacy {
        // The CHECK constraint admits only the three names; unknown reads as the strictest.
        AddressPrivacy::parse(&self.address_privacy).unwrap_or(AddressPrivacy::HideAll)
    }
    pub fn address(&self) -> Address {
        Address {
            address_line1: self.address_line1.clone(),
            address_line2: self.address_line2.clone(),
            city: self.city.clone(),
            state: self.state.clone(),
            postal_code: self.postal_code.clone(),
        }
    }
}

fn select() -> String {
    format!(
        "SELECT e.id, e.item_id, e.datetime_start, e.datetime_end, e.location_label,
                e.address_line1, e.address_line2, e.city, e.state, e.postal_code,
                e.address_privacy, e.capacity, GREATEST({SEATS_LEFT_SQL}, 0) AS seats_left,
                e.accessibility_notes, e.age_restrictions, e.dietary_notes, e.host_notes
           FROM events e JOIN items i ON i.id = e.item_id"
    )
}

pub async fn by_item(db: impl PgExecutor<'_>, item: ItemId) -> sqlx::Result<Option<EventRow>> {
    sqlx::query_as(&format!("{} WHERE e.item_id = $1", select()))
        .bind(item.0)
        .fetch_optional(db)
        .await
}

/// The events of several items (a catalog page) in one query.
pub async fn for_items(db: impl PgExecutor<'_>, items: &[i64]) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(&format!("{} WHERE e.item_id = ANY($1)", select()))
        .bind(items)
        .fetch_all(db)
        .await
}

/// Creates the item's event; `None` when it already has one.
pub async fn insert(
    db: impl PgExecutor<'_>,
    item: ItemId,
    f: &EventFields,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO events (item_id, datetime_start, datetime_end, location_label,
             address_line1, address_line2, city, state, postal_code, address_privacy, capacity,
             accessibility_notes, age_restrictions, dietary_notes, host_notes)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)
         ON CONFLICT (item_id) DO NOTHING
         RETURNING id",
    )
    .bind(item.0)
    .bind(f.datetime_start)
    .bind(f.datetime_end)
    .bind(&f.location_label)
    .bind(&f.address.address_line1)
    .bind(&f.address.address_line2)
    .bind(&f.address.city)
    .bind(&f.address.state)
    .bind(&f.address.postal_code)
    .bind(f.address_privacy.as_str())
    .bind(f.capacity)
    .bind(&f.accessibility_notes)
    .bind(&f.age_restrictions)
    .bind(&f.dietary_notes)
    .bind(&f.host_notes)
    .fetch_optional(db)
    .await
}

/// Replaces the item's event details; `false` when it has no event.
pub async fn update(db: impl PgExecutor<'_>, item: ItemId, f: &EventFields) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE events SET datetime_start = $2, datetime_end = $3, location_label = $4,
             address_line1 = $5, address_line2 = $6, city = $7, state = $8, postal_code = $9,
             address_privacy = $10, capacity = $11, accessibility_notes = $12,
             age_restrictions = $13, dietary_notes = $14, host_notes = $15
         WHERE item_id = $1",
    )
    .bind(item.0)
    .bind(f.datetime_start)
    .bind(f.datetime_end)
    .bind(&f.location_label)
    .bind(&f.address.address_line1)
    .bind(&f.address.address_line2)
    .bind(&f.address.city)
    .bind(&f.address.state)
    .bind(&f.address.postal_code)
    .bind(f.address_privacy.as_str())
    .bind(f.capacity)
    .bind(&f.accessibility_notes)
    .bind(&f.age_restrictions)
    .bind(&f.dietary_notes)
    .bind(&f.host_notes)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Of `items`, those at whose event `user` holds a place: a confirmed (or attended)
/// attendance, an active signup, a commitment (win, purchase) or a win. Waitlisted and
/// canceled places do not count: they do not make someone a guest in the host's home.
pub async fn items_attended_by(
    db: impl PgExecutor<'_>,
    user: UserId,
    items: &[i64],
) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT e.item_id FROM events e
          WHERE e.item_id = ANY($2) AND (
                EXISTS (SELECT 1 FROM attendance at WHERE at.event_id = e.id AND at.user_id = $1
                          AND at.status IN ('confirmed','attended'))
             OR EXISTS (SELECT 1 FROM signups s WHERE (s.item_id = e.item_id OR s.event_id = e.id)
                          AND s.user_id = $1 AND s.status = 'active')
             OR EXISTS (SELECT 1 FROM commitments c WHERE c.item_id = e.item_id AND c.user_id = $1)
             OR EXISTS (SELECT 1 FROM winners w WHERE w.item_id = e.item_id AND w.user_id = $1))",
    )
    .bind(user.0)
    .bind(items)
    .fetch_all(db)
    .await
}
