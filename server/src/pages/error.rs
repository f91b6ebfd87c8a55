//! Friendly HTML error pages. A handler (or layer) returns [`PageError`]; the outermost
//! layer, which has the templates, renders it. API responses are never touched. The
//! fallbacks for unknown pages and wrong methods are here too.

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode, Uri},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use minijinja::context;

use crate::{
    error::{AppError, Outage},
    state::AppState,
};

#[derive(Clone, Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub heading: String,
    pub message: String,
    /// Seconds, sent as `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
    /// An outage (the database not answering), counted as such in `/metrics`.
    pub outage: bool,
}

impl PageError {
    pub fn new(status: StatusCode, heading: &str, message: &str) -> PageError {
        PageError {
            status,
            heading: heading.into(),
            message: message.into(),
            retry_after: None,
            outage: false,
        }
    }

    /// The page for a database outage: nothing is broken for good, nothing was recorded,
    /// and a minute from now it will likely work.
    pub fn storage_unavailable() -> PageError {
        PageError {
            retry_after: Some(crate::error::STORAGE_RETRY_AFTER_SECS),
            outage: true,
            ..PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "We will be right back",
                "The auction's database is not answering for a moment, so nothing you just did was recorded. Please wait a minute and try again.",
            )
        }
    }
}

/// Marker carried by an error response until [`render_error_pages`] renders it.
#[derive(Clone, Debug)]
struct Unrendered(PageError);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.message.clone()).into_response();
        if let Some(v) = self
            .retry_after
            .and_then(|secs| HeaderValue::from_str(&secs.to_string()).ok())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.outage {
            response.extensions_mut().insert(Outage);
        }
        response.extensions_mut().insert(Unrendered(self));
        response
    }
}

/// Pages call the same services as the API, which answer [`AppError`]: show its message.
impl From<AppError> for PageError {
    fn from(e: AppError) -> PageError {
        if e.is_storage_unavailable() {
            return PageError::storage_unavailable();
        }
        let heading = match e.status {
            StatusCode::UNAUTHORIZED => "Please log in",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::TOO_MANY_REQUESTS => "Slow down, please",
            s if s.is_server_error() => "Sorry, something went wrong",
            _ => "That did not work",
        };
        PageError {
            retry_after: e.retry_after,
            ..PageError::new(e.status, heading, &e.message)
        }
    }
}

/// A store error met by a page directly (a listing, say): as [`AppError`] shows it.
impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> PageError {
        AppError::from(e).into()
    }
}

/// Unknown page: a friendly 404 page (unknown API paths get JSON from the API's router).
pub async fn fallback(uri: Uri) -> Response {
    tracing::debug!(path = %uri.path(), "no route");
    PageError::new(
        StatusCode::NOT_FOUND,
        "Page not found",
        "We could not find that page. It may have moved; try the home page or the catalog.",
    )
    .into_response()
}

/// A page address used with the wrong method (e.g. a form posted to a read-only page).
pub async fn page_method_not_allowed() -> Response {
    PageError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "That did not work",
        "This page cannot be used that way. Please go back and try again.",
    )
    .into_response()
}

/// The outermost page layer: renders a [`PageError`] carried by a response with the
/// `error.html` template (it keeps any `Retry-After`).
pub async fn render_error_pages(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let Some(Unrendered(err)) = response.extensions().get::<Unrendered>().cloned() else {
        return response;
    };
    let ctx = context! {
        title => &err.heading, status => err.status.as_u16(), heading => &err.heading, message => &err.message,
        user => (), csrf_token => "", display => context! { large_text => false, high_contrast => false },
        path => "", flash => (), site_name => "auuction",
    };
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let outage = response.extensions().get::<Outage>().copied();
    let mut page = match state.templates.render("error.html", ctx) {
        Ok(html) => (err.status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering error page");
            (
                err.status,
                Html(format!(
                    "<!doctype html><title>{0}</title><h1>{0}</h1>",
                    err.status
                )),
            )
                .into_response()
        }
    };
    if let Some(v) = retry_after {
        page.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if let Some(outage) = outage {
        page.extensions_mut().insert(outage);
    }
    page.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    page
}
