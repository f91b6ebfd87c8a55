//! Account pages: register, verify, log in and out, password reset, my account.

use axum::{
    extract::Query,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use minijinja::{context, Value};
use serde::Deserialize;

use crate::{
    error::AppError,
    pages::{checked, error::PageError, safe_next, PageCtx, PageForm},
    services::{
        accounts::{self, Registration},
        users::{my_commitments, update_profile, ProfileChange},
    },
    session::{cookie_session_key, Actor},
    state::AppState,
    store::users::{AccountView, AlternateContact, Preferences},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/register", get(register_form).post(register_submit))
        .route("/verify", get(verify))
        .route("/verify/resend", post(resend))
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", post(logout))
        .route("/password-reset", get(reset_form).post(reset_submit))
        .route(
            "/password-reset/confirm",
            get(reset_confirm_form).post(reset_confirm_submit),
        )
        .route("/account", get(account).post(account_submit))
}

/// Field errors as a map for the templates, from a workflow's error.
fn field_errors(err: &AppError) -> (Value, Option<String>) {
    match err.field {
        Some(field) => (Value::from_iter([(field, err.message.to_string())]), None),
        None => (Value::from(()), Some(err.message.to_string())),
    }
}

#[derive(Deserialize, Default)]
struct RegisterForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    pref_email: Option<String>,
    pref_sms: Option<String>,
}

async fn register_form(ctx: PageCtx) -> Result<Response, PageError> {
    let form = context! { name => "", email => "", pref_email => true, pref_sms => false };
    ctx.render(
        "register.html",
        "Register",
        context! { form => form, errors => (), error => () },
    )
}

async fn register_submit(
    ctx: PageCtx,
    PageForm(form): PageForm<RegisterForm>,
) -> Result<Response, PageError> {
    let preferences = Preferences {
        email: checked(&form.pref_email),
        sms: checked(&form.pref_sms),
    };
    let registration = Registration {
        name: form.name.clone(),
        email: form.email.clone(),
        password: form.password,
        preferences,
    };
    match accounts::register(&ctx.state, registration).await {
        Ok(user) => ctx.render(
            "register_done.html",
            "Check your email",
            context! { email => user.email },
        ),
        Err(err) if err.status.is_client_error() && err.status != StatusCode::TOO_MANY_REQUESTS => {
            let (errors, error) = match (err.field, err.code.as_ref()) {
                (None, "email_taken") => {
                    (Value::from_iter([("email", err.message.to_string())]), None)
                }
                _ => field_errors(&err),
            };
            let form = context! { name => form.name, email => form.email, pref_email => preferences.email, pref_sms => preferences.sms };
            ctx.render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "register.html",
                "Register",
                context! { form => form, errors => errors, error => error },
            )
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The emailed link lands here and verifies at once: one click for the reader.
async fn verify(ctx: PageCtx, Query(q): Query<TokenQuery>) -> Result<Response, PageError> {
    let token = q.token.unwrap_or_default();
    match accounts::verify(&ctx.state, &token).await {
        Ok(_) => ctx.render("verify.html", "Email confirmed", context! { ok => true, expired => false, message => "Thank you: your email address is confirmed. You can now bid and buy." }),
        Err(err) if err.status == StatusCode::BAD_REQUEST => ctx.render_status(
            StatusCode::BAD_REQUEST,
            "verify.html",
            "Link not valid",
            context! { ok => false, expired => err.code == "token_expired", message => err.message.to_string() },
        ),
        Err(err) => Err(err.into()),
    }
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    email: String,
}

async fn resend(ctx: PageCtx, PageForm(form): PageForm<EmailForm>) -> Result<Response, PageError> {
    accounts::resend_verification(&ctx.state, &form.email).await?;
    ctx.message(
        "Check your email",
        "If that address has an account that is not yet confirmed, we have sent a new link. It is valid for two days.",
        Some(("/login", "Go to log in")),
    )
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_form(ctx: PageCtx, Query(q): Query<NextQuery>) -> Result<Response, PageError> {
    let next = safe_next(q.next.as_deref(), "/account");
    ctx.render(
        "login.html",
        "Log in",
        context! { form => context! { email => "" }, error => (), next => next },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

async fn login_submit(
    ctx: PageCtx,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref(), "/account");
    match accounts::login(&ctx.state, &ctx.session, &form.email, &form.password).await {
        Ok((user, _)) => {
            ctx.set_flash(&format!("Welcome, {}. You are logged in.", user.name)).await;
            Ok(Redirect::to(&next).into_response())
        }
        Err(err) if err.status == StatusCode::UNAUTHORIZED => ctx.render_status(
            StatusCode::UNAUTHORIZED,
            "login.html",
            "Log in",
            context! { form => context! { email => form.email }, error => err.message.to_string(), next => next },
        ),
        Err(err) => Err(err.into()),
    }
}

async fn logout(ctx: PageCtx) -> Result<Response, PageError> {
    if let Some(key) = cookie_session_key(&ctx.session) {
        ctx.state.known_sessions.forget(&key);
    }
    ctx.session.flush().await.map_err(AppError::from)?;
    Ok(Redirect::to("/").into_response())
}

async fn reset_form(ctx: PageCtx) -> Result<Response, PageError> {
    ctx.render(
        "password_reset.html",
        "Reset your password",
        context! { error => () },
    )
}

async fn reset_submit(
    ctx: PageCtx,
    PageForm(form): PageForm<EmailForm>,
) -> Result<Response, PageError> {
    if let Err(err) = crate::domain::validate::email(&form.email) {
        return ctx.render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "password_reset.html",
            "Reset your password",
            context! { error => err.message },
        );
    }
    accounts::request_reset(&ctx.state, &form.email).await?;
    ctx.message(
        "Check your email",
        "If there is an account for that address, we have sent a link to choose a new password. The link is valid for one hour.",
        None,
    )
}

async fn reset_confirm_form(
    ctx: PageCtx,
    Query(q): Query<TokenQuery>,
) -> Result<Response, PageError> {
    ctx.render(
        "password_reset_confirm.html",
        "Choose a new password",
        context! { token => q.token.unwrap_or_default(), errors => (), error => () },
    )
}

#[derive(Deserialize)]
struct ResetConfirmForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

async fn reset_confirm_submit(
    ctx: PageCtx,
    PageForm(form): PageForm<ResetConfirmForm>,
) -> Result<Response, PageError> {
    let again = |errors: Value, error: Option<String>| {
        ctx.render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "password_reset_confirm.html",
            "Choose a new password",
            context! { token => &form.token, errors => errors, error => error },
        )
    };
    if form.password != form.password_confirm {
        return again(
            Value::from_iter([("password", "The two passwords are not the same.")]),
            None,
        );
    }
    match accounts::confirm_reset(&ctx.state, &form.token, form.password.clone()).await {
        Ok(_) => ctx.message(
            "Password changed",
            "Your new password is saved. Please log in with it.",
            Some(("/login", "Log in")),
        ),
        Err(err) if err.status.is_client_error() && err.status != StatusCode::TOO_MANY_REQUESTS => {
            let (errors, error) = field_errors(&err);
            again(errors, error)
        }
        Err(err) => Err(err.into()),
    }
}

/// The account for templates, with the snake_case names templates use throughout.
fn account_value(view: &AccountView) -> Value {
    context! {
        id => view.id.to_string(), email => &view.email, name => &view.name, phone => &view.phone,
        address => &view.address, household => &view.household,
        preferences => context! { email => view.preferences.email, sms => view.preferences.sms },
        notifications => &view.notifications,
        alternate_contact => AlternateContact::parse(view.alternate_contact)
            .unwrap_or(AlternateContact::None)
            .stored(),
        roles => &view.roles, verified => view.verified, paddle_number => view.paddle_number,
    }
}

async fn account(ctx: PageCtx) -> Result<Response, PageError> {
    let user = match ctx.require_user() {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let view = AccountView::from(&user.row);
    let commitments = commitments_context(&ctx, user).await?;
    ctx.render(
        "account.html",
        "My account",
        context! { account => account_value(&view), errors => (), saved => false, commitments => commitments },
    )
}

/// "Your wins and purchases": each line in words, and the total owed (cents).
async fn commitments_context(ctx: &PageCtx, user: &Actor) -> Result<Value, PageError> {
    let lines = my_commitments(&ctx.state, user).await?;
    let total: i64 = lines.iter().map(|l| l.amount()).sum();
    let lines: Vec<Value> = lines
        .iter()
        .map(|l| {
            let source = match l.source.as_str() {
                "win" => "Won at auction",
                "reoffer" => "Bought in the reoffer",
                _ => "Signed up at a fixed price",
            };
            context! {
                item_id => crate::domain::ItemId(l.item_id).to_string(), title => &l.title, source => source,
                quantity => l.quantity, price_each => l.price_each, amount => l.amount(),
                at => l.created_at.to_rfc3339(),
            }
        })
        .collect();
    Ok(context! { lines => lines, total => total })
}

#[derive(Deserialize)]
struct AccountForm {
    #[serde(default)]
    name: String,
    phone: Option<String>,
    address: Option<String>,
    household: Option<String>,
    pref_email: Option<String>,
    pref_sms: Option<String>,
    notice_outbid: Option<String>,
    notice_reoffer_announcement: Option<String>,
    alternate_contact: Option<String>,
}

async fn account_submit(
    ctx: PageCtx,
    PageForm(form): PageForm<AccountForm>,
) -> Result<Response, PageError> {
    let user = match ctx.require_user() {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let preferences = Preferences {
        email: checked(&form.pref_email),
        sms: checked(&form.pref_sms),
    };
    let change = ProfileChange {
        name: Some(&form.name),
        phone: Some(form.phone.as_deref()),
        address: Some(form.address.as_deref()),
        household: Some(form.household.as_deref()),
        preferences: Some(preferences),
        notifications: Some(vec![
            ("outbid".into(), checked(&form.notice_outbid)),
            (
                "reoffer_announcement".into(),
                checked(&form.notice_reoffer_announcement),
            ),
        ]),
        // Absent (an older form): keep what is stored.
        alternate_contact: form.alternate_contact.as_deref(),
    };
    match update_profile(&ctx.state, user, change).await {
        Ok(row) => {
            let view = AccountView::from(&row);
            let commitments = commitments_context(&ctx, user).await?;
            ctx.render(
                "account.html",
                "My account",
                context! { account => account_value(&view), errors => (), saved => true, commitments => commitments },
            )
        }
        // A field to fix: the form again, with what was typed. Anything else (the database
        // not answering) is an error page.
        Err(err) if err.field.is_some() => {
            let (errors, _) = field_errors(&err);
            // Show what they typed, so nothing is lost.
            let mut view = AccountView::from(&user.row);
            view.name = form.name;
            view.phone = form.phone;
            view.address = form.address;
            view.household = form.household;
            view.preferences = preferences;
            if let Some(choice) = form
                .alternate_contact
                .as_deref()
                .and_then(AlternateContact::parse)
            {
                view.alternate_contact = choice.api_name();
            }
            view.notifications
                .insert("outbid".into(), checked(&form.notice_outbid));
            view.notifications.insert(
                "reoffer_announcement".into(),
                checked(&form.notice_reoffer_announcement),
            );
            let commitments = commitments_context(&ctx, user).await?;
            ctx.render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "account.html",
                "My account",
                context! { account => account_value(&view), errors => errors, saved => false, commitments => commitments },
            )
        }
        Err(err) => Err(err.into()),
    }
}
