//! Static files (`/static/*` from `static/`, page scripts `/js/*` from `client-js/`, uploaded
//! media `/media/*`), with cache headers.

use axum::{
    http::{header, HeaderValue},
    Router,
};
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer};

use crate::{config::Config, state::AppState};

pub fn router(config: &Config) -> Router<AppState> {
    let client_js = config.static_dir.join("..").join("client-js");
    // Assets are not fingerprinted, so browsers revalidate after an hour (ETag/Last-Modified
    // make that cheap); media files never change once written, so they cache for a year.
    let hour = SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    let year = SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Router::new()
        .nest_service(
            "/static",
            tower::ServiceBuilder::new()
                .layer(hour.clone())
                .service(ServeDir::new(&config.static_dir)),
        )
        .nest_service(
            "/js",
            tower::ServiceBuilder::new()
                .layer(hour)
                .service(ServeDir::new(client_js)),
        )
        .nest_service(
            "/media",
            tower::ServiceBuilder::new()
                .layer(year)
                .service(ServeDir::new(&config.media_dir)),
        )
}
