//! An item's images: adding (checked, re-encoded, stored, recorded) and removing them.
//! Who may: whoever may edit the item (`services::items::edit_access`). What is accepted
//! and how it is re-encoded: `crate::media`, which also reads the upload from a form.

use ::http::StatusCode;
use serde_json::json;

use crate::{
    domain::{catalog::EditAs, ids::ImageId, validate, ItemId},
    error::{AppError, AppResult},
    media::{self, ImageRefusal, Upload},
    services::{
        item_view::ImageView,
        items::{edit_access, lock_visible},
    },
    session::Actor,
    state::AppState,
    store::{
        audit,
        item_images::{self, NewImage},
    },
};

/// More than a catalog page needs; bounds the disk one item can take.
pub const MAX_IMAGES_PER_ITEM: i64 = 12;

/// Fails unless `user` may edit the item now: checked before a large body is read, and
/// again when the row is written.
pub async fn ensure_editable(state: &AppState, user: &Actor, id: ItemId) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    let item = lock_visible(&mut tx, user, id).await?;
    edit_access(user, &item)?;
    Ok(())
}

/// Checks, re-encodes and stores an uploaded image and records it: the one path for the
/// API and the donor pages (the demo's generated pictures share `media`'s re-encoding).
pub async fn add_image(
    state: &AppState,
    user: &Actor,
    id: ItemId,
    upload: Upload,
) -> AppResult<ImageView> {
    let alt =
        validate::optional_text("alt", upload.alt.as_deref(), 300)?.ok_or_else(|| AppError {
            field: Some("alt"),
            ..AppError::validation(
                "Please describe the image in a few words (alt text) for people who cannot see it.",
            )
        })?;
    let file = upload
        .file
        .filter(|f| !f.is_empty())
        .ok_or_else(|| AppError {
            field: Some("file"),
            ..AppError::validation("Please choose an image file.")
        })?;
    let processed = media::process_upload(file)
        .await
        .map_err(|e| AppError::internal("processing an upload", e))?
        .map_err(|refusal| match refusal {
            ImageRefusal::Unsupported => AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_image",
                refusal.to_string(),
            ),
            ImageRefusal::TooManyPixels => AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "image_too_large",
                refusal.to_string(),
            ),
            ImageRefusal::Corrupt => AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_image",
                refusal.to_string(),
            ),
        })?;
    let (file_name, thumb_name) = media::store(&state.config.media_dir, &processed)
        .await
        .map_err(|e| AppError::internal("storing an upload", e))?;
    let saved = save_row(state, user, id, &file_name, &thumb_name, &alt, &processed).await;
    if saved.is_err() {
        media::remove(&state.config.media_dir, &[&file_name, &thumb_name]).await;
    }
    saved
}

async fn save_row(
    state: &AppState,
    user: &Actor,
    id: ItemId,
    file_name: &str,
    thumb_name: &str,
    alt: &str,
    processed: &media::Processed,
) -> AppResult<ImageView> {
    let mut tx = state.db.begin().await?;
    let item = lock_visible(&mut tx, user, id).await?;
    let edit = edit_access(user, &item)?;
    if item_images::count(&mut *tx, id).await? >= MAX_IMAGES_PER_ITEM {
        return Err(AppError::conflict(
            "too_many_images",
            format!("An item may have at most {MAX_IMAGES_PER_ITEM} images."),
        ));
    }
    let row = item_images::insert(
        &mut *tx,
        id,
        NewImage {
            file_name,
            thumb_name,
            alt_text: alt,
            // Both at most FULL_SIZE (1600), so they fit an i32.
            width: processed.width as i32,
            height: processed.height as i32,
        },
    )
    .await?;
    if edit == EditAs::AdminOverride {
        audit::record(
            &mut *tx,
            Some(user.id()),
            "item.image_added_by_admin",
            "item",
            Some(id.0),
            None,
            Some(json!({ "image": row.image_id(), "file": row.file_name, "alt": row.alt_text })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(ImageView::from(&row))
}

/// Removes one of an item's images (its row, then its files), with the same rights as an
/// edit of the item. Shared by the API and the donor's edit page.
pub async fn remove_image(
    state: &AppState,
    user: &Actor,
    id: ItemId,
    image: ImageId,
) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    let item = lock_visible(&mut tx, user, id).await?;
    let edit = edit_access(user, &item)?;
    let row = item_images::delete(&mut *tx, id, image)
        .await?
        .ok_or_else(|| AppError::not_found("Image"))?;
    if edit == EditAs::AdminOverride {
        audit::record(
            &mut *tx,
            Some(user.id()),
            "item.image_removed_by_admin",
            "item",
            Some(id.0),
            Some(json!({ "image": row.image_id(), "file": row.file_name, "alt": row.alt_text })),
            None,
        )
        .await?;
    }
    tx.commit().await?;
    // After the commit: a failed commit must not lose the files of a row that still exists.
    media::remove(&state.config.media_dir, &[&row.file_name, &row.thumb_name]).await;
    Ok(())
}
