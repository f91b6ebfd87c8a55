//! Extractors: JSON/path/query with errors in the API's shape, the client's address, and the
//! signed-in user. Authorization is one mechanism: handlers take [`CurrentUser`] and call
//! [`CurrentUser::require`] with the roles a route allows.

use std::{net::IpAddr, str::FromStr};

use axum::{
    extract::{FromRequest, FromRequestParts, OptionalFromRequestParts},
    http::{header, request::Parts, Method},
};
use tower_sessions::{session::Id, Session, SessionStore};

use crate::{
    app::AppState,
    domain::{Role, Roles, UserId},
    http::error::ApiError,
    store::users::{self, UserRow},
};

/// `Json<T>` whose rejections are [`ApiError`]s (400 malformed, 422 wrong field, 415).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `Path<T>` whose rejection is a JSON 404.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Query<T>` whose rejection is a JSON 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The client's IP address, put into the request's extensions by the security layer
/// (from the socket, or from `X-Forwarded-For` when `TRUST_PROXY` is set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or(ClientIp(IpAddr::from([127, 0, 0, 1]))))
    }
}

/// Session keys.
pub const SESSION_USER: &str = "user_id";
pub const SESSION_CSRF: &str = "csrf";

/// The signed-in user, from the session cookie or an `Authorization: Bearer` token (the
/// token is the session's id, as returned by login).
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub row: UserRow,
    pub roles: Roles,
    /// True when authenticated by bearer token (no cookie, so no CSRF check applies).
    pub via_bearer: bool,
}

impl CurrentUser {
    pub fn id(&self) -> UserId {
        self.row.user_id()
    }

    /// Allows the request when the user holds any of `roles` (admins hold every role).
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.roles.has_any(roles) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// Bidding and buying need a verified email address.
    pub fn require_verified(&self) -> Result<(), ApiError> {
        if self.row.verified() {
            Ok(())
        } else {
            Err(ApiError::email_not_verified())
        }
    }
}

/// The bearer token of the request, if it carries one.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Finds the user id of the request's session or bearer token. `Err` means a bearer token
/// was given but is not valid (which must not silently fall back to the cookie).
pub async fn session_user(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<(UserId, bool)>, ApiError> {
    if let Some(token) = bearer_token(parts) {
        let invalid = || {
            ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The access token is not valid; please log in again.",
            )
        };
        let id = Id::from_str(token).map_err(|_| invalid())?;
        let record = state
            .sessions
            .load(&id)
            .await
            .map_err(|e| ApiError::internal("loading a bearer session", e))?
            .ok_or_else(invalid)?;
        let user = record
            .data
            .get(SESSION_USER)
            .and_then(|v| v.as_i64())
            .ok_or_else(invalid)?;
        return Ok(Some((UserId(user), true)));
    }
    let Ok(session) = Session::from_request_parts(parts, state).await else {
        return Ok(None);
    };
    let user: Option<i64> = session.get(SESSION_USER).await?;
    Ok(user.map(|u| (UserId(u), false)))
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let cached = parts.extensions.get::<CurrentUser>().cloned();
        let user = match cached {
            Some(user) => user,
            None => {
                let (id, via_bearer) = session_user(parts, state)
                    .await?
                    .ok_or_else(ApiError::unauthenticated)?;
                let row = users::by_id(&state.db, id)
                    .await?
                    .ok_or_else(ApiError::unauthenticated)?;
                let user = CurrentUser {
                    roles: row.roles(),
                    row,
                    via_bearer,
                };
                // Writes are limited per account too, so one account cannot hog the server
                // from many addresses.
                if !is_safe(&parts.method) {
                    state.limits.check_write_account(user.id())?;
                }
                parts.extensions.insert(user.clone());
                user
            }
        };
        Ok(user)
    }
}

impl OptionalFromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        match <CurrentUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(user) => Ok(Some(user)),
            Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => Ok(None),
            Err(e) => Err(e),
        }
    }
}

pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}
