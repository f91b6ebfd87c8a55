//! Web security layers: client address, sessions, CSRF, per-address rate limits, security
//! headers and body size limits. All in one place so the order they run in is visible.
//!
//! They sit in the assembly, not in either edge, because they guard both: a refusal is
//! answered as JSON on `/api` and as a page everywhere else. The session keys, the CSRF
//! token and the limiters they consult are leaves (`crate::session`, `crate::limits`).

use std::net::{IpAddr, SocketAddr};

use axum::{
    body::{to_bytes, Body},
    extract::{ConnectInfo, DefaultBodyLimit, Request, State},
    http::{header, HeaderName, HeaderValue, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Router,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::{
    cookie::{Key, SameSite},
    Expiry, Session, SessionManagerLayer,
};

use crate::{
    error::AppError,
    limits::{ClientIp, RateLimited},
    pages::error::PageError,
    session::{bearer_token, is_safe, SESSION_COOKIE, SESSION_CSRF},
    state::AppState,
};

/// Header that carries the CSRF token on cookie-authenticated API writes.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field that carries the CSRF token on page forms.
pub const CSRF_FIELD: &str = "csrf_token";

/// Largest request body accepted by default. Bids and forms are tiny; image uploads set
/// their own, larger limit on their route.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Wraps the router in the security layers. Requests pass them top to bottom:
/// headers → client address → session → rate limits → CSRF → handler.
pub fn apply_layers(app: Router<AppState>, state: AppState) -> Router<AppState> {
    let config = &state.config;
    // The cookie is signed with a key derived from SECRET_KEY (64 bytes from SHA-512).
    let key = {
        use sha2::{Digest, Sha512};
        Key::from(&Sha512::digest(config.secret_key.as_bytes()))
    };
    let sessions = SessionManagerLayer::new(state.sessions.clone())
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.is_https())
        .with_expiry(Expiry::OnInactivity(time::Duration::days(14)))
        .with_signed(key);

    let mut app = app
        .layer(middleware::from_fn_with_state(state.clone(), csrf))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit_by_ip,
        ))
        .layer(sessions)
        .layer(middleware::from_fn(session_not_saved))
        .layer(middleware::from_fn_with_state(state.clone(), client_ip))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::pages::error::render_error_pages,
        ));

    let headers: [(&str, &str); 6] = [
        (
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
        ("cross-origin-opener-policy", "same-origin"),
    ];
    for (name, value) in headers {
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    if config.is_https() {
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    app
}

/// Finds the client's address once, for rate limits and logs.
async fn client_ip(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let socket_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let ip = if state.config.trust_proxy {
        // The proxy appends the address it saw; the last entry is the one we can trust.
        request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(socket_ip)
    } else {
        socket_ip
    };
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

/// The session layer answers a bare 500 (no body, no content type) when it cannot save a
/// session, which only the database not answering causes: said as the outage it is.
async fn session_not_saved(request: Request, next: Next) -> Response {
    let api = is_api(&request);
    let response = next.run(request).await;
    let bare = response.status() == axum::http::StatusCode::INTERNAL_SERVER_ERROR
        && response.headers().get(header::CONTENT_TYPE).is_none();
    if !bare {
        return response;
    }
    if api {
        AppError::storage_unavailable().into_response()
    } else {
        PageError::storage_unavailable().into_response()
    }
}

fn is_api(request: &Request) -> bool {
    request.uri().path().starts_with("/api/") || request.uri().path() == "/api"
}

/// Paths where passwords and email tokens are tried: tightly limited per address.
fn is_auth_path(path: &str) -> bool {
    path.starts_with("/api/auth/")
        || matches!(
            path,
            "/login"
                | "/register"
                | "/password-reset"
                | "/password-reset/confirm"
                | "/verify/resend"
        )
}

async fn rate_limit_by_ip(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Request,
    next: Next,
) -> Response {
    if !is_safe(request.method()) {
        let path = request.uri().path();
        let mut verdict = state.limits.check_write_ip(ip);
        if verdict.is_ok() && is_auth_path(path) {
            verdict = state.limits.check_auth_ip(ip);
        }
        if let Err(limited) = verdict {
            tracing::info!(%ip, path, "rate limited");
            if crate::limits::is_bid_or_buy(path) {
                state.engine.count_rate_limited();
            }
            return if is_api(&request) {
                AppError::from(limited).into_response()
            } else {
                slow_down_page(limited)
            };
        }
    }
    next.run(request).await
}

/// The "slow down" page for a rate-limited page request, with the same `Retry-After` the
/// API would send.
fn slow_down_page(limited: RateLimited) -> Response {
    let mut response = PageError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Slow down, please",
        RateLimited::MESSAGE,
    )
    .into_response();
    let secs = limited.retry_after_secs.max(1);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn has_session_cookie(request: &Request) -> bool {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|c| c.trim_start().starts_with(&format!("{SESSION_COOKIE}=")))
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Synchronizer-token CSRF protection for unsafe requests that a browser authenticates with
/// the session cookie. Bearer-token requests and requests without the cookie carry no
/// ambient authority, so they pass. The token comes in the `X-CSRF-Token` header, or in
/// the `csrf_token` field of a url-encoded form (or the query string of a multipart form).
async fn csrf(session: Session, request: Request, next: Next) -> Response {
    if is_safe(request.method())
        || *request.method() == Method::TRACE
        || !has_session_cookie(&request)
    {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    if bearer_token(&parts).is_some() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let expected = match session.get::<String>(SESSION_CSRF).await {
        Ok(token) => token,
        // The session cannot be read: the database is not answering. An outage, not a
        // forged form.
        Err(e) => {
            let error = AppError::from(e);
            return if parts.uri.path().starts_with("/api") {
                error.into_response()
            } else {
                PageError::from(error).into_response()
            };
        }
    };
    let mut provided: Option<String> = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut body = body;
    if provided.is_none() && content_type.starts_with("application/x-www-form-urlencoded") {
        match to_bytes(body, BODY_LIMIT).await {
            Ok(bytes) => {
                provided = url::form_urlencoded::parse(&bytes)
                    .find(|(k, _)| k == CSRF_FIELD)
                    .map(|(_, v)| v.into_owned());
                body = Body::from(bytes);
            }
            Err(_) => {
                return AppError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "The form is too large.",
                )
                .into_response()
            }
        }
    }
    if provided.is_none() && content_type.starts_with("multipart/form-data") {
        provided = parts.uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == CSRF_FIELD)
                .map(|(_, v)| v.into_owned())
        });
    }
    let request = Request::from_parts(parts, body);
    match (expected, provided) {
        (Some(expected), Some(provided)) if same_token(&expected, &provided) => {
            next.run(request).await
        }
        _ => {
            tracing::info!(path = %request.uri().path(), "CSRF token missing or wrong");
            let message = "This form has expired or did not come from this site. Please go back, reload the page and try again.";
            if is_api(&request) {
                AppError::new(
                    StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "Missing or invalid CSRF token (send it in the X-CSRF-Token header).",
                )
                .into_response()
            } else {
                PageError::new(StatusCode::FORBIDDEN, "Please try again", message).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
    }

    #[test]
    fn auth_paths() {
        assert!(is_auth_path("/api/auth/login"));
        assert!(is_auth_path("/login"));
        assert!(!is_auth_path("/api/items/1/bids"));
    }
}
