//! The API's face of [`AppError`]: every `/api` failure leaves as the spec's
//! `{"error": "code", "message": "..."}` with the right status (and `Retry-After` when
//! there is one). The error type itself, its constructors and its conversions from the
//! store and the rules are `crate::error`; what is here is what only a JSON edge needs:
//! the response, axum's extractor rejections, and the answer to a panic.

use axum::{
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

use crate::error::{AppError, Outage};

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: &self.code,
            message: &self.message,
            field: self.field,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.is_storage_unavailable() {
            response.extensions_mut().insert(Outage);
        }
        response
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> AppError {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the request body as JSON with Content-Type: application/json.",
            ),
            JsonRejection::JsonSyntaxError(e) => AppError::bad_request(
                "malformed_json",
                format!(
                    "The request body is not valid JSON: {}",
                    inner_message(&e.body_text())
                ),
            ),
            JsonRejection::JsonDataError(e) => AppError::validation(format!(
                "The request body has a missing or wrong field: {}",
                inner_message(&e.body_text())
            )),
            JsonRejection::BytesRejection(_) => AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            ),
            other => AppError::bad_request("bad_request", other.body_text()),
        }
    }
}

/// axum's rejection text starts with a generic prefix; keep only serde's precise part.
fn inner_message(text: &str) -> String {
    let msg = text.rsplit_once(": ").map(|(_, tail)| tail).unwrap_or(text);
    msg.chars().take(300).collect()
}

impl From<PathRejection> for AppError {
    fn from(_: PathRejection) -> AppError {
        AppError::not_found("That address")
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> AppError {
        AppError::bad_request(
            "invalid_query",
            format!(
                "Invalid query parameters: {}",
                inner_message(&rejection.body_text())
            ),
        )
    }
}

/// The answer to a request whose handler panicked: logged, then a generic JSON 500.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    AppError::internal("handler panicked", detail).into_response()
}
