//! `/api/items/{id}/images`: upload (multipart `file` + `alt`) and delete item images.
//! The workflow is `services::images`, shared with the donor's edit page.

use axum::{
    extract::{multipart::MultipartRejection, DefaultBodyLimit, Multipart, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, post},
    Json, Router,
};

use crate::{
    domain::{ids::ImageId, ItemId},
    error::{AppError, AppResult},
    http::extract::ApiPath,
    media::{read_upload, UPLOAD_BODY_LIMIT},
    services::images::{add_image, ensure_editable, remove_image},
    session::Actor,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/items/{id}/images",
            post(upload).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        .route("/items/{id}/images/{image_id}", delete(remove))
}

/// `POST /api/items/{id}/images` (multipart: `file`, `alt`) → 201 with the image.
async fn upload(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<ItemId>,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<Response> {
    ensure_editable(&state, &user, id).await?;
    let multipart = multipart.map_err(|_| {
        AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the image as multipart/form-data with the fields file and alt.",
        )
    })?;
    let upload = read_upload(multipart).await?;
    let view = add_image(&state, &user, id, upload).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `DELETE /api/items/{id}/images/{imageId}` → 204.
async fn remove(
    State(state): State<AppState>,
    user: Actor,
    ApiPath((id, image)): ApiPath<(ItemId, ImageId)>,
) -> AppResult<StatusCode> {
    remove_image(&state, &user, id, image).await?;
    Ok(StatusCode::NO_CONTENT)
}
