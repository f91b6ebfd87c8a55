//! Item images: rows that point at files under `MEDIA_DIR` (the files are written and
//! removed by `crate::media`).

use sqlx::PgExecutor;

use crate::domain::{ids::ImageId, ItemId};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImageRow {
    pub id: i64,
    pub item_id: i64,
    /// Path relative to `MEDIA_DIR`, served under `/media/`.
    pub file_name: String,
    pub thumb_name: String,
    pub alt_text: String,
    pub width: i32,
    pub height: i32,
    pub position: i32,
}

impl ImageRow {
    pub fn image_id(&self) -> ImageId {
        ImageId(self.id)
    }
}

const COLUMNS: &str = "id, item_id, file_name, thumb_name, alt_text, width, height, position";

/// The images of several items, in display order.
pub async fn for_items(db: impl PgExecutor<'_>, items: &[i64]) -> sqlx::Result<Vec<ImageRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM item_images WHERE item_id = ANY($1) ORDER BY item_id, position, id"
    ))
    .bind(items)
    .fetch_all(db)
    .await
}

/// How many images an item has (uploads are capped per item).
pub async fn count(db: impl PgExecutor<'_>, item: ItemId) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM item_images WHERE item_id = $1")
        .bind(item.0)
        .fetch_one(db)
        .await
}

pub struct NewImage<'a> {
    pub file_name: &'a str,
    pub thumb_name: &'a str,
    pub alt_text: &'a str,
    pub width: i32,
    pub height: i32,
}

/// Adds an image after the item's others.
pub async fn insert(
    db: impl PgExecutor<'_>,
    item: ItemId,
    new: NewImage<'_>,
) -> sqlx::Result<ImageRow> {
    sqlx::query_as(&format!(
        "INSERT INTO item_images (item_id, file_name, thumb_name, alt_text, width, height, position)
         VALUES ($1, $2, $3, $4, $5, $6,
                 (SELECT COALESCE(max(position) + 1, 0) FROM item_images WHERE item_id = $1))
         RETURNING {COLUMNS}"
    ))
    .bind(item.0)
    .bind(new.file_name)
    .bind(new.thumb_name)
    .bind(new.alt_text)
    .bind(new.width)
    .bind(new.height)
    .fetch_one(db)
    .await
}

/// Deletes one image of one item; returns it so its files can be removed.
pub async fn delete(
    db: impl PgExecutor<'_>,
    item: ItemId,
    image: ImageId,
) -> sqlx::Result<Option<ImageRow>> {
    sqlx::query_as(&format!(
        "DELETE FROM item_images WHERE id = $1 AND item_id = $2 RETURNING {COLUMNS}"
    ))
    .bind(image.0)
    .bind(item.0)
    .fetch_optional(db)
    .await
}
