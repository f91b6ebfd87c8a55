//! `/api/items/{id}/images`: upload (multipart `file` + `alt`) and delete item images.
//! Who may: whoever may edit the item (`items::edit_access`). What is accepted and how it is
//! re-encoded: `crate::media`.

use axum::{
    extract::{multipart::MultipartRejection, DefaultBodyLimit, Multipart, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, post},
    Json, Router,
};
use serde_json::json;

use crate::{
    app::AppState,
    domain::{catalog::EditAs, ids::ImageId, validate, ItemId},
    http::{
        error::{ApiError, ApiResult},
        extract::{ApiPath, CurrentUser},
        item_view::ImageView,
        items::{edit_access, lock_visible},
    },
    media::{self, ImageRefusal},
    store::{
        audit,
        item_images::{self, NewImage},
    },
};

/// More than a catalog page needs; bounds the disk one item can take.
pub const MAX_IMAGES_PER_ITEM: i64 = 12;
/// The request may be a little larger than the file: multipart headers and the alt text.
pub const UPLOAD_BODY_LIMIT: usize = media::MAX_UPLOAD_BYTES + 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/items/{id}/images",
            post(upload).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        .route("/items/{id}/images/{image_id}", delete(remove))
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "The image is too large; please upload one of at most 10 MB.",
    )
}

/// The upload's two fields, read in whatever order they come.
pub struct Upload {
    pub file: Option<Vec<u8>>,
    pub alt: Option<String>,
}

/// Reads `file` and `alt` from a multipart body (the API's and the donor page's form).
pub async fn read_upload(mut multipart: Multipart) -> ApiResult<Upload> {
    let mut upload = Upload {
        file: None,
        alt: None,
    };
    let broken = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::bad_request("malformed_multipart", "The upload could not be read.")
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(broken)? {
        match field.name() {
            Some("file") => {
                let bytes = field.bytes().await.map_err(broken)?;
                if bytes.len() > media::MAX_UPLOAD_BYTES {
                    return Err(too_large());
                }
                upload.file = Some(bytes.to_vec());
            }
            Some("alt") => upload.alt = Some(field.text().await.map_err(broken)?),
            // Other fields (a form's csrf_token, say) are not ours to refuse.
            _ => {}
        }
    }
    Ok(upload)
}

/// Fails unless `user` may edit the item now: checked before a large body is read, and
/// again when the row is written.
pub async fn ensure_editable(state: &AppState, user: &CurrentUser, id: ItemId) -> ApiResult<()> {
    let mut tx = state.db.begin().await?;
    let item = lock_visible(&mut tx, user, id).await?;
    edit_access(user, &item)?;
    Ok(())
}

/// `POST /api/items/{id}/images` (multipart: `file`, `alt`) → 201 with the image.
async fn upload(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<ItemId>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    ensure_editable(&state, &user, id).await?;
    let multipart = multipart.map_err(|_| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the image as multipart/form-data with the fields file and alt.",
        )
    })?;
    let upload = read_upload(multipart).await?;
    let view = add_image(&state, &user, id, upload).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Checks, re-encodes and stores an uploaded image and records it: the one path for the
/// API, the donor pages and the demo's generated pictures.
pub async fn add_image(
    state: &AppState,
    user: &CurrentUser,
    id: ItemId,
    upload: Upload,
) -> ApiResult<ImageView> {
    let alt =
        validate::optional_text("alt", upload.alt.as_deref(), 300)?.ok_or_else(|| ApiError {
            field: Some("alt"),
            ..ApiError::validation(
                "Please describe the image in a few words (alt text) for people who cannot see it.",
            )
        })?;
    let file = upload
        .file
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError {
            field: Some("file"),
            ..ApiError::validation("Please choose an image file.")
        })?;
    let processed = media::process_upload(file)
        .await
        .map_err(|e| ApiError::internal("processing an upload", e))?
        .map_err(|refusal| match refusal {
            ImageRefusal::Unsupported => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_image",
                refusal.to_string(),
            ),
            ImageRefusal::TooManyPixels => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "image_too_large",
                refusal.to_string(),
            ),
            ImageRefusal::Corrupt => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_image",
                refusal.to_string(),
            ),
        })?;
    let (file_name, thumb_name) = media::store(&state.config.media_dir, &processed)
        .await
        .map_err(|e| ApiError::internal("storing an upload", e))?;
    let saved = save_row(state, user, id, &file_name, &thumb_name, &alt, &processed).await;
    if saved.is_err() {
        media::remove(&state.config.media_dir, &[&file_name, &thumb_name]).await;
    }
    saved
}

async fn save_row(
    state: &AppState,
    user: &CurrentUser,
    id: ItemId,
    file_name: &str,
    thumb_name: &str,
    alt: &str,
    processed: &media::Processed,
) -> ApiResult<ImageView> {
    let mut tx = state.db.begin().await?;
    let item = lock_visible(&mut tx, user, id).await?;
    let edit = edit_access(user, &item)?;
    if item_images::count(&mut *tx, id).await? >= MAX_IMAGES_PER_ITEM {
        return Err(ApiError::conflict(
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

/// `DELETE /api/items/{id}/images/{imageId}` → 204.
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, image)): ApiPath<(ItemId, ImageId)>,
) -> ApiResult<StatusCode> {
    remove_image(&state, &user, id, image).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one of an item's images (its row, then its files), with the same rights as an
/// edit of the item. Shared by the API and the donor's edit page.
pub async fn remove_image(
    state: &AppState,
    user: &CurrentUser,
    id: ItemId,
    image: ImageId,
) -> ApiResult<()> {
    let mut tx = state.db.begin().await?;
    let item = lock_visible(&mut tx, user, id).await?;
    let edit = edit_access(user, &item)?;
    let row = item_images::delete(&mut *tx, id, image)
        .await?
        .ok_or_else(|| ApiError::not_found("Image"))?;
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
