//! Extractors of the JSON edge: body, path and query whose rejections are
//! [`AppError`]s in the API's shape. Who is asking is `crate::session::Actor`; the client's
//! address is `crate::limits::ClientIp`.

use axum::extract::{FromRequest, FromRequestParts};

use crate::error::AppError;

/// `Json<T>` whose rejections are [`AppError`]s (400 malformed, 422 wrong field, 415).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

/// `Path<T>` whose rejection is a JSON 404.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

/// `Query<T>` whose rejection is a JSON 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);
