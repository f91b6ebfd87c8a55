//! Categories: the admin's picklist that items are filed under.

use serde::Serialize;
use sqlx::PgExecutor;

use crate::domain::CategoryId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct CategoryRow {
    #[serde(serialize_with = "ser_id")]
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub active: bool,
    pub sort_order: i32,
}

fn ser_id<S: serde::Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&CategoryId(*id))
}

impl CategoryRow {
    pub fn category_id(&self) -> CategoryId {
        CategoryId(self.id)
    }
}

const COLUMNS: &str = "id, name, slug, active, sort_order";

/// What an admin writes.
#[derive(Debug, Clone)]
pub struct CategoryFields {
    pub name: String,
    pub slug: String,
    pub active: bool,
    pub sort_order: i32,
}

/// Active categories, or all of them, in display order.
pub async fn list(
    db: impl PgExecutor<'_>,
    include_inactive: bool,
) -> sqlx::Result<Vec<CategoryRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM categories WHERE active OR $1 ORDER BY sort_order, name"
    ))
    .bind(include_inactive)
    .fetch_all(db)
    .await
}

pub async fn by_id(db: impl PgExecutor<'_>, id: CategoryId) -> sqlx::Result<Option<CategoryRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM categories WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(db)
        .await
}

pub async fn by_slug(db: impl PgExecutor<'_>, slug: &str) -> sqlx::Result<Option<CategoryRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM categories WHERE slug = $1"))
        .bind(slug)
        .fetch_optional(db)
        .await
}

/// Locks the row: a delete decides between deleting and deactivating on what it read.
pub async fn by_id_for_update(
    db: impl PgExecutor<'_>,
    id: CategoryId,
) -> sqlx::Result<Option<CategoryRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM categories WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(db)
    .await
}

/// Inserts a category; a taken name or slug is a unique violation for the caller to map.
pub async fn insert(db: impl PgExecutor<'_>, f: &CategoryFields) -> sqlx::Result<CategoryRow> {
    sqlx::query_as(&format!(
        "INSERT INTO categories (name, slug, active, sort_order) VALUES ($1, $2, $3, $4)
         RETURNING {COLUMNS}"
    ))
    .bind(&f.name)
    .bind(&f.slug)
    .bind(f.active)
    .bind(f.sort_order)
    .fetch_one(db)
    .await
}

pub async fn update(
    db: impl PgExecutor<'_>,
    id: CategoryId,
    f: &CategoryFields,
) -> sqlx::Result<CategoryRow> {
    sqlx::query_as(&format!(
        "UPDATE categories SET name = $2, slug = $3, active = $4, sort_order = $5 WHERE id = $1
         RETURNING {COLUMNS}"
    ))
    .bind(id.0)
    .bind(&f.name)
    .bind(&f.slug)
    .bind(f.active)
    .bind(f.sort_order)
    .fetch_one(db)
    .await
}

/// Is any item filed under this category (in any auction, any status)?
pub async fn in_use(db: impl PgExecutor<'_>, id: CategoryId) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM items WHERE category_id = $1)")
        .bind(id.0)
        .fetch_one(db)
        .await
}

pub async fn delete(db: impl PgExecutor<'_>, id: CategoryId) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM categories WHERE id = $1")
        .bind(id.0)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn deactivate(db: impl PgExecutor<'_>, id: CategoryId) -> sqlx::Result<CategoryRow> {
    sqlx::query_as(&format!(
        "UPDATE categories SET active = FALSE WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id.0)
    .fetch_one(db)
    .await
}
