//! Who is asking: the session's keys, its CSRF token, and the signed-in [`Actor`].
//!
//! Authorization is one mechanism for every edge: a handler takes an [`Actor`] (or
//! `Option<Actor>`), passes it to a service, and the service calls [`Actor::require`] with
//! the roles its workflow allows. The cookie's attributes and the CSRF check itself are
//! layers of the assembly (`app/security.rs`).

use std::str::FromStr;

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::{header, request::Parts, Method, StatusCode},
};
use rand::RngCore;
use tower_sessions::{session::Id, Session, SessionStore};

use crate::{
    domain::{Role, Roles, UserId},
    error::AppError,
    state::AppState,
    store::users::{self, UserRow},
};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "auuction_session";
/// Session key of the signed-in user's id.
pub const SESSION_USER: &str = "user_id";
/// Session key of the session's CSRF token.
pub const SESSION_CSRF: &str = "csrf";

/// The signed-in user, from the session cookie or an `Authorization: Bearer` token (the
/// token is the session's id, as returned by login). Services take `&Actor`, never the
/// request: the same workflow serves the API, the pages and the demo.
#[derive(Clone, Debug)]
pub struct Actor {
    pub row: UserRow,
    pub roles: Roles,
    /// True when authenticated by bearer token (no cookie, so no CSRF check applies).
    pub via_bearer: bool,
}

impl Actor {
    pub fn id(&self) -> UserId {
        self.row.user_id()
    }

    /// Allows the request when the user holds any of `roles` (admins hold every role).
    pub fn require(&self, roles: &[Role]) -> Result<(), AppError> {
        if self.roles.has_any(roles) {
            Ok(())
        } else {
            Err(AppError::forbidden())
        }
    }

    /// Bidding and buying need a verified email address.
    pub fn require_verified(&self) -> Result<(), AppError> {
        if self.row.verified() {
            Ok(())
        } else {
            Err(AppError::email_not_verified())
        }
    }
}

/// The CSRF token of this session, created on first use. Pages put it in their forms and
/// in a `<meta>` for scripts; API clients get it from login or `GET /api/auth/csrf`.
pub async fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(SESSION_CSRF).await? {
        return Ok(token);
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    session.insert(SESSION_CSRF, &token).await?;
    Ok(token)
}

/// Safe methods change nothing: they need no CSRF token and spend no write budget.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
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
) -> Result<Option<(UserId, bool)>, AppError> {
    if let Some(token) = bearer_token(parts) {
        let invalid = || {
            AppError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The access token is not valid; please log in again.",
            )
        };
        let id = Id::from_str(token).map_err(|_| invalid())?;
        let record = state
            .sessions
            .load(&id)
            .await
            .map_err(AppError::from)?
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

/// The key a request's session is known by: its bearer token, or its cookie session's id.
fn session_key(parts: &Parts) -> Option<String> {
    if let Some(token) = bearer_token(parts) {
        return Some(format!("b:{token}"));
    }
    let session = parts.extensions.get::<Session>()?;
    session.id().map(|id| format!("c:{id}"))
}

/// The key of a cookie session (for [`KnownSessions::forget`]).
pub fn cookie_session_key(session: &Session) -> Option<String> {
    session.id().map(|id| format!("c:{id}"))
}

/// The key of a bearer token (for [`KnownSessions::forget`]).
pub fn bearer_session_key(token: &str) -> String {
    format!("b:{token}")
}

/// The extractor: 401 without a session, and the per-account write limit for unsafe
/// methods. The user is read once per request and cached in its extensions, so a page
/// context and a handler asking both cost one query. While the database is unreachable, a
/// request that changes nothing may go on as a session this process verified recently
/// ([`KnownSessions`]).
impl FromRequestParts<AppState> for Actor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(actor) = parts.extensions.get::<Actor>() {
            return Ok(actor.clone());
        }
        let key = session_key(parts);
        let actor = match verified_actor(parts, state).await {
            Ok(actor) => {
                if let Some(key) = &key {
                    state
                        .known_sessions
                        .remember(key, &actor.row, actor.via_bearer);
                }
                actor
            }
            Err(e) if e.is_storage_unavailable() && is_safe(&parts.method) => {
                match key.and_then(|k| state.known_sessions.recall(&k)) {
                    Some((row, via_bearer)) => Actor {
                        roles: row.roles(),
                        row,
                        via_bearer,
                    },
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        // Writes are limited per account too, so one account cannot hog the server from
        // many addresses.
        if !is_safe(&parts.method) {
            if let Err(limited) = state.limits.check_write_account(actor.id()) {
                if crate::limits::is_bid_or_buy(parts.uri.path()) {
                    state.engine.count_rate_limited();
                }
                return Err(limited.into());
            }
        }
        parts.extensions.insert(actor.clone());
        Ok(actor)
    }
}

/// The request's user as the database has it now.
async fn verified_actor(parts: &mut Parts, state: &AppState) -> Result<Actor, AppError> {
    let (id, via_bearer) = session_user(parts, state)
        .await?
        .ok_or_else(AppError::unauthenticated)?;
    let row = users::by_id(&state.db, id)
        .await?
        .ok_or_else(AppError::unauthenticated)?;
    Ok(Actor {
        roles: row.roles(),
        row,
        via_bearer,
    })
}

/// Unauthenticated (no session, or an invalid bearer token: both 401) is a guest, `None`;
/// any other failure (the write limit, a database outage) still refuses the request.
impl OptionalFromRequestParts<AppState> for Actor {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, AppError> {
        match <Actor as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(actor) => Ok(Some(actor)),
            Err(e) if e.status == StatusCode::UNAUTHORIZED => Ok(None),
            Err(e) => Err(e),
        }
    }
}
