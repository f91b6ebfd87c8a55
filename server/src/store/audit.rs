//! The audit log: who changed what, with before and after snapshots.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};

use crate::domain::UserId;

/// Writes one audit entry. Call it inside the transaction of the change it records, so the
/// entry exists exactly when the change does. `actor` is `None` for the system itself.
pub async fn record(
    db: impl PgExecutor<'_>,
    actor: Option<UserId>,
    action: &str,
    entity_type: &str,
    entity_id: Option<i64>,
    before: Option<Value>,
    after: Option<Value>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (actor_id, action, entity_type, entity_id, before, after)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(actor.map(|a| a.0))
    .bind(action)
    .bind(entity_type)
    .bind(entity_id)
    .bind(before)
    .bind(after)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    #[serde(serialize_with = "ser_actor")]
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<i64>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub created_at: DateTime<Utc>,
}

fn ser_actor<S: serde::Serializer>(id: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.collect_str(&UserId(*id)),
        None => s.serialize_none(),
    }
}

/// The newest entries first, optionally for one entity type (and id).
pub async fn list(
    db: &PgPool,
    entity_type: Option<&str>,
    entity_id: Option<i64>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<AuditEntry>> {
    sqlx::query_as(
        "SELECT a.id, a.actor_id, u.name AS actor_name, a.action, a.entity_type, a.entity_id,
                a.before, a.after, a.created_at
           FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id
          WHERE ($1::text IS NULL OR a.entity_type = $1)
            AND ($2::bigint IS NULL OR a.entity_id = $2)
          ORDER BY a.id DESC
          LIMIT $3 OFFSET $4",
    )
    .bind(entity_type)
    .bind(entity_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}
