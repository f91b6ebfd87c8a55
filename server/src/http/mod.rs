//! The JSON edge: one module per resource, each exporting a `router()`, merged here.
//! Handlers extract, call a service (`crate::services`) or the store, and answer JSON;
//! they never import the pages, and the pages never import them.

pub mod auctions;
pub mod auth;
pub mod bids;
pub mod bulk;
pub mod categories;
pub mod error;
pub mod extract;
pub mod hosted_events;
pub mod images;
pub mod items;
pub mod notifications;
pub mod ops;
pub mod reoffer;
pub mod static_files;
pub mod users;

use axum::{http::StatusCode, Router};

use crate::{error::AppError, state::AppState};

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
        .merge(notifications::router())
        .fallback(api_not_found)
        .method_not_allowed_fallback(api_method_not_allowed)
}

async fn api_method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "That method is not allowed on this endpoint.",
    )
}

async fn api_not_found() -> AppError {
    AppError::not_found("That API endpoint")
}
