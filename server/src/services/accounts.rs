//! Account workflows shared by the API and the pages: register, verify, log in, reset.
//! Each returns domain results or [`AppError`]s; the callers only choose JSON or HTML.

use ::http::StatusCode;
use minijinja::context;
use tower_sessions::Session;

use crate::{
    domain::{validate, Role, Roles},
    error::AppError,
    mail::Email,
    passwords,
    session::{csrf_token, SESSION_USER},
    state::AppState,
    store::{
        tokens::{self, Purpose, Redeemed},
        users::{self, NewUser, Preferences, UserRow},
    },
};

pub struct Registration {
    pub name: String,
    pub email: String,
    pub password: String,
    pub preferences: Preferences,
}

/// Creates an unverified bidder account and emails the verification link.
pub async fn register(state: &AppState, input: Registration) -> Result<UserRow, AppError> {
    let name = validate::name(&input.name)?;
    let email = validate::email(&input.email)?;
    validate::password(&input.password)?;
    let hash = passwords::hash(input.password)
        .await
        .map_err(|e| AppError::internal("hashing", e))?;
    let roles = Roles::new(vec![Role::Bidder]);
    let mut tx = state.db.begin().await?;
    let user = users::insert(
        &mut *tx,
        NewUser {
            email: &email,
            name: &name,
            password_hash: &hash,
            roles: &roles,
            preferences: input.preferences,
            verified: false,
        },
    )
    .await?
    .ok_or_else(|| {
        AppError::conflict(
            "email_taken",
            "An account with this email already exists. Try logging in or resetting your password.",
        )
    })?;
    let token = tokens::issue(&mut *tx, user.user_id(), Purpose::Verify, state.now()).await?;
    tx.commit().await?;
    send_token_email(state, &user, Purpose::Verify, &token).await;
    Ok(user)
}

/// Sends a fresh verification link, when the account exists and is not yet verified. The
/// caller answers the same either way, so this cannot be used to find accounts.
pub async fn resend_verification(state: &AppState, email: &str) -> Result<(), AppError> {
    let Ok(email) = validate::email(email) else {
        return Ok(());
    };
    if let Some(user) = users::by_email(&state.db, &email).await? {
        if !user.verified() {
            let token =
                tokens::issue(&state.db, user.user_id(), Purpose::Verify, state.now()).await?;
            send_token_email(state, &user, Purpose::Verify, &token).await;
        }
    }
    Ok(())
}

fn token_error(outcome: &Redeemed) -> AppError {
    match outcome {
        Redeemed::Expired => AppError::bad_request(
            "token_expired",
            "This link has expired. Please ask for a new one.",
        ),
        Redeemed::AlreadyUsed => {
            AppError::bad_request("token_used", "This link has already been used.")
        }
        _ => AppError::bad_request(
            "invalid_token",
            "This link is not valid. Please check it or ask for a new one.",
        ),
    }
}

/// Redeems a verification token and marks the account verified.
pub async fn verify(state: &AppState, token: &str) -> Result<UserRow, AppError> {
    let mut tx = state.db.begin().await?;
    let outcome = tokens::redeem(&mut *tx, token.trim(), Purpose::Verify, state.now()).await?;
    let Redeemed::Ok(user_id) = outcome else {
        return Err(token_error(&outcome));
    };
    users::mark_verified(&mut *tx, user_id).await?;
    // The welcome, with the paddle number, goes through the outbox with the rest.
    crate::store::notifications::queue_welcome(&mut *tx, user_id.0).await?;
    let user = users::by_id(&mut *tx, user_id)
        .await?
        .ok_or_else(|| AppError::not_found("Account"))?;
    tx.commit().await?;
    Ok(user)
}

/// Checks the password and signs the session in. Unknown email and wrong password get the
/// same answer (and take the same time).
pub async fn login(
    state: &AppState,
    session: &Session,
    email: &str,
    password: &str,
) -> Result<(UserRow, String), AppError> {
    let email = email.trim().to_lowercase();
    state.limits.check_auth_account(&email)?;
    let user = users::by_email(&state.db, &email).await?;
    let ok = passwords::verify(
        password.to_string(),
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await;
    let user = match (ok, user) {
        (true, Some(user)) => user,
        _ => {
            return Err(AppError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "That email and password do not match an account.",
            ))
        }
    };
    // A new session id on login, so an id planted before login is worthless after it.
    session.cycle_id().await?;
    session.insert(SESSION_USER, user.id).await?;
    let csrf = csrf_token(session).await?;
    session.save().await?;
    Ok((user, csrf))
}

/// Sends a reset link when the account exists; always answers the same.
pub async fn request_reset(state: &AppState, email: &str) -> Result<(), AppError> {
    let Ok(email) = validate::email(email) else {
        return Ok(());
    };
    state.limits.check_auth_account(&email)?;
    if let Some(user) = users::by_email(&state.db, &email).await? {
        let token = tokens::issue(&state.db, user.user_id(), Purpose::Reset, state.now()).await?;
        send_token_email(state, &user, Purpose::Reset, &token).await;
    }
    Ok(())
}

/// Sets a new password with a reset token. Following the emailed link also proves the
/// address, so the account becomes verified.
pub async fn confirm_reset(
    state: &AppState,
    token: &str,
    password: String,
) -> Result<UserRow, AppError> {
    validate::password(&password)?;
    let hash = passwords::hash(password)
        .await
        .map_err(|e| AppError::internal("hashing", e))?;
    let mut tx = state.db.begin().await?;
    let outcome = tokens::redeem(&mut *tx, token.trim(), Purpose::Reset, state.now()).await?;
    let Redeemed::Ok(user_id) = outcome else {
        return Err(token_error(&outcome));
    };
    users::set_password(&mut *tx, user_id, &hash).await?;
    users::mark_verified(&mut *tx, user_id).await?;
    let user = users::by_id(&mut *tx, user_id)
        .await?
        .ok_or_else(|| AppError::not_found("Account"))?;
    tx.commit().await?;
    Ok(user)
}

/// Renders and sends a verification or reset email. A mail failure is logged, not returned:
/// the account change is committed and the person can ask for another link.
async fn send_token_email(state: &AppState, user: &UserRow, purpose: Purpose, token: &str) {
    let (template, subject, link) = match purpose {
        Purpose::Verify => (
            "email/verify.txt",
            "Please confirm your email for the auction",
            state.config.url(&format!("/verify?token={token}")),
        ),
        Purpose::Reset => (
            "email/reset.txt",
            "Reset your auction password",
            state
                .config
                .url(&format!("/password-reset/confirm?token={token}")),
        ),
    };
    let text = match state
        .templates
        .render(template, context! { name => &user.name, link => &link })
    {
        Ok(text) => text,
        Err(e) => {
            tracing::error!(error = %e, template, "rendering email");
            return;
        }
    };
    let email = Email {
        to: user.email.clone(),
        to_name: Some(user.name.clone()),
        subject: subject.into(),
        text,
        html: None,
        ..Email::default()
    };
    match state.mailer.send(email).await {
        Ok(()) => {
            state.metrics.emails_sent.inc();
        }
        Err(e) => tracing::error!(error = %e, user = user.id, "sending email failed"),
    };
}
