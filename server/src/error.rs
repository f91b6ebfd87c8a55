//! The application's one error type: what a workflow answers when it refuses or fails.
//!
//! Services (`crate::services`) and the session extractor return [`AppError`]; each edge
//! chooses how to show it. The API's `IntoResponse` (the spec's `{"error", "message"}`
//! body) and the conversions from axum's rejections live in `http/error.rs`; the pages turn
//! it into a `PageError` with the same message. Internal details are logged here, once,
//! and never shown.

use std::borrow::Cow;

// The `http` crate's types, not axum's re-export: this module knows nothing of the web
// framework, only of status codes.
use ::http::StatusCode;

use crate::{domain::validate::FieldError, limits::RateLimited};

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: Cow<'static, str>,
    /// The input field at fault, for forms that want to point at it.
    pub field: Option<&'static str>,
    /// Seconds, for 429 and 503 answers.
    pub retry_after: Option<u64>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> AppError {
        AppError {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// The same error, pointing at the input field at fault.
    pub fn on_field(self, field: &'static str) -> AppError {
        AppError {
            field: Some(field),
            ..self
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: the request was well-formed but a value is not acceptable.
    pub fn validation(message: impl Into<Cow<'static, str>>) -> AppError {
        AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
    }

    pub fn unauthenticated() -> AppError {
        AppError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Please log in first.",
        )
    }

    /// Bidding and buying need a verified email address.
    pub fn email_not_verified() -> AppError {
        AppError::new(
            StatusCode::FORBIDDEN,
            "email_not_verified",
            "Please confirm your email address first: we sent you a link.",
        )
    }

    pub fn forbidden() -> AppError {
        AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "You are not allowed to do that.",
        )
    }

    pub fn not_found(what: &'static str) -> AppError {
        AppError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} was not found."),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> AppError {
        AppError::new(StatusCode::CONFLICT, code, message)
    }

    pub fn rate_limited(retry_after_secs: u64) -> AppError {
        AppError {
            retry_after: Some(retry_after_secs.max(1)),
            ..AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                RateLimited::MESSAGE,
            )
        }
    }

    /// 500 with a generic message; the cause is logged here, once, with its context.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> AppError {
        tracing::error!(error = %err, "{context}");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side. Please try again.",
        )
    }

    pub fn unavailable(code: &'static str, message: &'static str) -> AppError {
        AppError {
            retry_after: Some(1),
            ..AppError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// 503: the database cannot be reached, so nothing was done. An outage, not a bug: the
    /// edges show it as such ("we will be right back") and `/metrics` counts it.
    pub fn storage_unavailable() -> AppError {
        AppError {
            retry_after: Some(STORAGE_RETRY_AFTER_SECS),
            ..AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                STORAGE_UNAVAILABLE,
                "The database is not answering, so nothing was recorded. Please try again in a moment.",
            )
        }
    }

    /// Whether this is [`AppError::storage_unavailable`].
    pub fn is_storage_unavailable(&self) -> bool {
        self.code == STORAGE_UNAVAILABLE
    }
}

/// Marks a response that answered an outage (`storage_unavailable`): `/metrics` counts
/// them (`auuction_outage_answers_total`), apart from the errors that are bugs.
#[derive(Clone, Copy, Debug)]
pub struct Outage;

/// The code of every answer that means "the database is not answering".
pub const STORAGE_UNAVAILABLE: &str = "storage_unavailable";
/// What `Retry-After` says during an outage: a restarted database is usually back within
/// seconds, and the pool reconnects by itself.
pub const STORAGE_RETRY_AFTER_SECS: u64 = 2;

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> AppError {
        AppError::validation(e.message).on_field(e.field)
    }
}

impl From<RateLimited> for AppError {
    fn from(limited: RateLimited) -> AppError {
        AppError::rate_limited(limited.retry_after_secs)
    }
}

/// Unique constraints whose violation means something a person can fix, by the name
/// Postgres gives them (`<table>_<column>_key` for an inline `UNIQUE`). Anything else that
/// collides is a plain 409 `conflict`. Most inserts already say `ON CONFLICT DO NOTHING`
/// and answer precisely themselves; these are the writes that cannot (updates, and inserts
/// with two unique columns).
const UNIQUE_CONSTRAINTS: &[(&str, &str, &str, &str)] = &[
    // (constraint, code, field, message)
    (
        "auctions_year_key",
        "year_taken",
        "year",
        "There is already an auction for that year.",
    ),
    (
        "categories_name_key",
        "category_exists",
        "name",
        "A category with that name already exists.",
    ),
    (
        "categories_slug_key",
        "category_exists",
        "slug",
        "A category with that slug already exists.",
    ),
];

fn unique_violation(constraint: Option<&str>) -> AppError {
    UNIQUE_CONSTRAINTS
        .iter()
        .find(|(name, ..)| Some(*name) == constraint)
        .map(|&(_, code, field, message)| AppError::conflict(code, message).on_field(field))
        .unwrap_or_else(|| AppError::conflict("conflict", "That already exists."))
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> AppError {
        if crate::store::is_outage(&err) {
            // One line, no stack: an outage is the database's state, not a bug here.
            tracing::warn!(error = %err, "database unavailable");
            return AppError::storage_unavailable();
        }
        match &err {
            sqlx::Error::RowNotFound => AppError::not_found("Record"),
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // unique_violation
                Some("23505") => unique_violation(db.constraint()),
                // check_violation, foreign_key_violation, not_null, string too long
                Some("23514") | Some("23503") | Some("23502") | Some("22001") => {
                    tracing::info!(error = %err, "constraint refused a write");
                    AppError::validation("A value is not acceptable.")
                }
                _ => AppError::internal("database error", err),
            },
            _ => AppError::internal("database error", err),
        }
    }
}

/// Turning one named constraint's violation into the caller's own error, where the caller
/// can say more than [`UNIQUE_CONSTRAINTS`] can (the year that is taken, say). As
/// realworld-axum-sqlx's `on_constraint`.
pub trait ResultExt<T> {
    fn on_constraint(self, name: &str, map: impl FnOnce() -> AppError) -> Result<T, AppError>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn on_constraint(self, name: &str, map: impl FnOnce() -> AppError) -> Result<T, AppError> {
        self.map_err(|err| match &err {
            sqlx::Error::Database(db) if db.constraint() == Some(name) => map(),
            _ => AppError::from(err),
        })
    }
}

/// Sessions are kept in Postgres: a store that fails is the database not answering (its
/// error arrives as text, so an outage cannot be told from anything else by type).
impl From<tower_sessions::session::Error> for AppError {
    fn from(err: tower_sessions::session::Error) -> AppError {
        match err {
            tower_sessions::session::Error::Store(store) => AppError::from(store),
            other => AppError::internal("session data", other),
        }
    }
}

impl From<tower_sessions::session_store::Error> for AppError {
    fn from(err: tower_sessions::session_store::Error) -> AppError {
        match err {
            tower_sessions::session_store::Error::Backend(why) => {
                tracing::warn!(error = %why, "session store unavailable");
                AppError::storage_unavailable()
            }
            other => AppError::internal("session store", other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::error::{DatabaseError, ErrorKind};

    use super::*;

    /// A unique violation as Postgres reports it, without a database.
    #[derive(Debug)]
    struct Collision(&'static str);

    impl std::fmt::Display for Collision {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "duplicate key value violates unique constraint {:?}",
                self.0
            )
        }
    }

    impl std::error::Error for Collision {}

    impl DatabaseError for Collision {
        fn message(&self) -> &str {
            "duplicate key value violates unique constraint"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some("23505".into())
        }
        fn constraint(&self) -> Option<&str> {
            Some(self.0)
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::UniqueViolation
        }
    }

    fn collision(name: &'static str) -> Result<(), sqlx::Error> {
        Err(sqlx::Error::Database(Box::new(Collision(name))))
    }

    #[test]
    fn a_store_collision_becomes_the_precise_error() {
        let e = AppError::from(collision("categories_name_key").unwrap_err());
        assert_eq!((&*e.code, e.field), ("category_exists", Some("name")));
        let e = AppError::from(collision("users_paddle_number_key").unwrap_err());
        assert_eq!((e.status, &*e.code), (StatusCode::CONFLICT, "conflict"));
    }

    #[test]
    fn the_caller_may_say_more_about_its_own_constraint() {
        let said = || AppError::conflict("year_taken", "There is already an auction for 2026.");
        let e = collision("auctions_year_key")
            .on_constraint("auctions_year_key", said)
            .unwrap_err();
        assert_eq!(&*e.message, "There is already an auction for 2026.");
        // Another constraint falls through to the general mapping.
        let e = collision("categories_slug_key")
            .on_constraint("auctions_year_key", said)
            .unwrap_err();
        assert_eq!((&*e.code, e.field), ("category_exists", Some("slug")));
    }

    #[test]
    fn known_constraints_name_their_field() {
        let e = unique_violation(Some("categories_slug_key"));
        assert_eq!(
            (e.status, &*e.code, e.field),
            (StatusCode::CONFLICT, "category_exists", Some("slug"))
        );
        let e = unique_violation(Some("auctions_year_key"));
        assert_eq!((&*e.code, e.field), ("year_taken", Some("year")));
    }

    #[test]
    fn other_collisions_are_a_plain_conflict() {
        for name in [None, Some("something_else_key")] {
            let e = unique_violation(name);
            assert_eq!(
                (e.status, &*e.code, e.field),
                (StatusCode::CONFLICT, "conflict", None)
            );
        }
    }

    #[test]
    fn rate_limits_wait_at_least_a_second() {
        let e = AppError::from(RateLimited {
            retry_after_secs: 0,
        });
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(1));
    }

    #[test]
    fn an_unreachable_database_is_an_outage_not_a_bug() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        for err in [sqlx::Error::PoolTimedOut, sqlx::Error::Io(refused)] {
            let e = AppError::from(err);
            assert_eq!(
                (e.status, &*e.code, e.retry_after),
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    STORAGE_UNAVAILABLE,
                    Some(STORAGE_RETRY_AFTER_SECS)
                )
            );
            assert!(e.message.contains("nothing was recorded"));
        }
        // The session store is the database too: its failure is the same outage.
        let store = tower_sessions::session_store::Error::Backend("connection refused".into());
        assert!(AppError::from(store).is_storage_unavailable());
        // A bug stays a bug.
        let e = AppError::from(sqlx::Error::Protocol("nonsense".into()));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
