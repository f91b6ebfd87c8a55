//! Friendly HTML error pages. A handler (or layer) returns [`PageError`]; the outermost
//! layer, which has the templates, renders it. API responses are never touched.

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use minijinja::context;

use crate::{app::AppState, http::error::ApiError};

#[derive(Clone, Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub heading: String,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, heading: &str, message: &str) -> PageError {
        PageError {
            status,
            heading: heading.into(),
            message: message.into(),
        }
    }
}

/// Marker carried by an error response until [`render_error_pages`] renders it.
#[derive(Clone, Debug)]
struct Unrendered(PageError);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.message.clone()).into_response();
        response.extensions_mut().insert(Unrendered(self));
        response
    }
}

/// Pages reuse the account workflows, which speak [`ApiError`]: show their message.
impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        let heading = match e.status {
            StatusCode::UNAUTHORIZED => "Please log in",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::TOO_MANY_REQUESTS => "Slow down, please",
            s if s.is_server_error() => "Sorry, something went wrong",
            _ => "That did not work",
        };
        PageError::new(e.status, heading, &e.message)
    }
}

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
    page.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    page
}
