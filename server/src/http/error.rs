//! The one API error type. Every `/api` failure leaves as the spec's
//! `{"error": "code", "message": "..."}` with the right status; internal details are logged,
//! never shown.

use std::borrow::Cow;

use axum::{
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

use crate::domain::validate::FieldError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: Cow<'static, str>,
    /// The input field at fault, for forms that want to point at it.
    pub field: Option<&'static str>,
    /// Seconds, for 429 and 503 answers.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: the request was well-formed JSON but a value is not acceptable.
    pub fn validation(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
    }

    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Please log in first.",
        )
    }

    /// Bidding and buying need a verified email address.
    pub fn email_not_verified() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "email_not_verified",
            "Please confirm your email address first: we sent you a link.",
        )
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "You are not allowed to do that.",
        )
    }

    pub fn not_found(what: &'static str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} was not found."),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    pub fn rate_limited(retry_after_secs: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests. Please wait a moment and try again.",
            )
        }
    }

    /// 500 with a generic message; the cause is logged here, once, with its context.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %err, "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side. Please try again.",
        )
    }

    pub fn unavailable(code: &'static str, message: &'static str) -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> ApiError {
        ApiError {
            field: Some(e.field),
            ..ApiError::validation(e.message)
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> ApiError {
        match &err {
            sqlx::Error::RowNotFound => ApiError::not_found("Record"),
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // unique_violation
                Some("23505") => ApiError::conflict("conflict", "That already exists."),
                // check_violation, foreign_key_violation, not_null, string too long
                Some("23514") | Some("23503") | Some("23502") | Some("22001") => {
                    tracing::info!(error = %err, "constraint refused a write");
                    ApiError::validation("A value is not acceptable.")
                }
                _ => ApiError::internal("database error", err),
            },
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::error!(error = %err, "database unavailable");
                ApiError::unavailable(
                    "storage_unavailable",
                    "The database is not answering. Please try again shortly.",
                )
            }
            _ => ApiError::internal("database error", err),
        }
    }
}

impl From<tower_sessions::session::Error> for ApiError {
    fn from(err: tower_sessions::session::Error) -> ApiError {
        ApiError::internal("session store error", err)
    }
}

impl IntoResponse for ApiError {
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
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the request body as JSON with Content-Type: application/json.",
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
                "malformed_json",
                format!(
                    "The request body is not valid JSON: {}",
                    inner_message(&e.body_text())
                ),
            ),
            JsonRejection::JsonDataError(e) => ApiError::validation(format!(
                "The request body has a missing or wrong field: {}",
                inner_message(&e.body_text())
            )),
            JsonRejection::BytesRejection(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            ),
            other => ApiError::bad_request("bad_request", other.body_text()),
        }
    }
}

/// axum's rejection text starts with a generic prefix; keep only serde's precise part.
fn inner_message(text: &str) -> String {
    let msg = text.rsplit_once(": ").map(|(_, tail)| tail).unwrap_or(text);
    msg.chars().take(300).collect()
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> ApiError {
        ApiError::not_found("That address")
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request(
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
    ApiError::internal("handler panicked", detail).into_response()
}
