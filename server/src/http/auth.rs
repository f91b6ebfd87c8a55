//! `/api/auth/*`: register, verify, login, logout, password reset, CSRF token.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::{session::Id, Session, SessionStore};

use crate::{
    domain::validate,
    error::{AppError, AppResult},
    http::extract::ApiJson,
    services::accounts::{self, Registration},
    session::{bearer_session_key, bearer_token, cookie_session_key, csrf_token},
    state::AppState,
    store::users::{AccountView, Preferences},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/verify", post(verify))
        .route("/auth/verify/resend", post(resend_verification))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/password/reset", post(password_reset))
        .route("/auth/password/reset/confirm", post(password_reset_confirm))
        .route("/auth/csrf", get(csrf))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    name: String,
    email: String,
    password: String,
    #[serde(default = "default_preferences")]
    preferences: Preferences,
}

fn default_preferences() -> Preferences {
    Preferences {
        email: true,
        sms: false,
    }
}

/// `POST /api/auth/register` → 201 `{"id": "u_123", "email": "jane@example.org"}`.
async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> AppResult<Response> {
    let user = accounts::register(
        &state,
        Registration {
            name: req.name,
            email: req.email,
            password: req.password,
            preferences: req.preferences,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": user.user_id(), "email": user.email })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct TokenRequest {
    token: String,
}

/// `POST /api/auth/verify {"token": ...}`.
async fn verify(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenRequest>,
) -> AppResult<Json<serde_json::Value>> {
    let user = accounts::verify(&state, &req.token).await?;
    Ok(Json(
        json!({ "id": user.user_id(), "email": user.email, "verified": true }),
    ))
}

#[derive(Deserialize)]
struct EmailRequest {
    email: String,
}

/// `POST /api/auth/verify/resend {"email": ...}` → 202 whether or not the account exists.
async fn resend_verification(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EmailRequest>,
) -> AppResult<Response> {
    accounts::resend_verification(&state, &req.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "sent_if_account_exists" })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    password: String,
}

/// `POST /api/auth/login` sets the session cookie and returns a bearer token for API
/// clients (the same session), the CSRF token for cookie clients, and the account.
async fn login(
    State(state): State<AppState>,
    session: Session,
    ApiJson(req): ApiJson<LoginRequest>,
) -> AppResult<Json<serde_json::Value>> {
    let (user, csrf) = accounts::login(&state, &session, &req.email, &req.password).await?;
    let token = session
        .id()
        .map(|id| id.to_string())
        .ok_or_else(|| AppError::internal("login", "session has no id after save"))?;
    Ok(Json(
        json!({ "token": token, "csrfToken": csrf, "user": AccountView::from(&user) }),
    ))
}

/// `POST /api/auth/logout`: ends the session (cookie and bearer token alike). 204.
async fn logout(
    State(state): State<AppState>,
    session: Session,
    request: axum::extract::Request,
) -> AppResult<StatusCode> {
    let (parts, _) = request.into_parts();
    if let Some(key) = cookie_session_key(&session) {
        state.known_sessions.forget(&key);
    }
    if let Some(token) = bearer_token(&parts) {
        state.known_sessions.forget(&bearer_session_key(token));
        if let Ok(id) = token.parse::<Id>() {
            state.sessions.delete(&id).await.map_err(AppError::from)?;
        }
    }
    session.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/auth/password/reset`: with `{"email"}` it sends a reset link (202 whether or
/// not the account exists); with `{"token", "password"}` it sets the new password.
#[derive(Deserialize)]
#[serde(untagged)]
enum ResetRequest {
    Confirm { token: String, password: String },
    Request { email: String },
}

async fn password_reset(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ResetRequest>,
) -> AppResult<Response> {
    match req {
        ResetRequest::Request { email } => {
            validate::email(&email)?;
            accounts::request_reset(&state, &email).await?;
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "status": "sent_if_account_exists" })),
            )
                .into_response())
        }
        ResetRequest::Confirm { token, password } => confirm(state, token, password).await,
    }
}

#[derive(Deserialize)]
struct ConfirmRequest {
    token: String,
    password: String,
}

/// `POST /api/auth/password/reset/confirm {"token", "password"}`.
async fn password_reset_confirm(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ConfirmRequest>,
) -> AppResult<Response> {
    confirm(state, req.token, req.password).await
}

async fn confirm(state: AppState, token: String, password: String) -> AppResult<Response> {
    let user = accounts::confirm_reset(&state, &token, password).await?;
    Ok(
        Json(json!({ "id": user.user_id(), "email": user.email, "passwordChanged": true }))
            .into_response(),
    )
}

/// `GET /api/auth/csrf` → `{"csrfToken": ...}` for cookie-authenticated scripts.
async fn csrf(session: Session) -> AppResult<Json<serde_json::Value>> {
    let token = csrf_token(&session).await?;
    Ok(Json(json!({ "csrfToken": token })))
}
