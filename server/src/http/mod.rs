//! The HTTP edge: one module per resource, each exporting a `router()`, merged here.

pub mod auctions;
pub mod auth;
pub mod bids;
pub mod bulk;
pub mod catalog;
pub mod categories;
pub mod error;
pub mod extract;
pub mod hosted_events;
pub mod images;
pub mod item_view;
pub mod items;
pub mod ops;
pub mod reoffer;
pub mod security;
pub mod static_files;
pub mod users;

use axum::{
    http::Uri,
    response::{IntoResponse, Response},
    Router,
};

use crate::{app::AppState, pages::error::PageError};

/// Every `/api` route (mounted under `/api` by the app).
pub fn api_router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(auctions::router())
        .merge(bids::router())
        .merge(bulk::router())
        .merge(categories::router())
        .merge(items::router())
        .merge(images::router())
        .merge(hosted_events::router())
        .merge(reoffer::router())
        .fallback(api_not_found)
        .method_not_allowed_fallback(api_method_not_allowed)
}

async fn api_method_not_allowed() -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "That method is not allowed on this endpoint.",
    )
}

/// A page address used with the wrong method (e.g. a form posted to a read-only page).
pub async fn page_method_not_allowed() -> Response {
    PageError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "That did not work",
        "This page cannot be used that way. Please go back and try again.",
    )
    .into_response()
}

async fn api_not_found() -> error::ApiError {
    error::ApiError::not_found("That API endpoint")
}

/// Unknown page: a friendly 404 page (unknown API paths get JSON from `api_router`).
pub async fn fallback(uri: Uri) -> Response {
    tracing::debug!(path = %uri.path(), "no route");
    PageError::new(
        axum::http::StatusCode::NOT_FOUND,
        "Page not found",
        "We could not find that page. It may have moved; try the home page or the catalog.",
    )
    .into_response()
}
