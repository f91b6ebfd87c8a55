//! The HTML edge: server-rendered pages. Every page works without JavaScript; scripts
//! only enhance. Workflows are the same services the API calls (`crate::services`); the
//! pages never import the API's handlers, nor the API the pages.

pub mod account;
pub mod admin;
pub mod auction_form;
pub mod bidding;
pub mod buy_now;
pub mod catalog;
pub mod donor;
pub mod donor_form;
pub mod error;
pub mod item;
pub mod live_close;
pub mod manage_auctions;
pub mod outbox;
pub mod reoffer;
pub mod review;
pub mod unsubscribe;

use axum::{
    extract::{rejection::FormRejection, FromRequest, FromRequestParts},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
    Router,
};
use minijinja::{context, Value};
use serde::Deserialize;
use tower_sessions::Session;

use crate::{
    session::{csrf_token, Actor},
    state::AppState,
    store::auctions,
};

use self::error::PageError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/display", get(live_close::display_page).post(display))
        .merge(account::router())
        .merge(admin::router())
        .merge(manage_auctions::router())
        .merge(live_close::router())
        .merge(item::router())
        .merge(bidding::router())
        .merge(buy_now::router())
        .merge(catalog::router())
        .merge(donor::router())
        .merge(review::router())
        .merge(outbox::router())
        .merge(unsubscribe::router())
}

/// Cookie holding the display preferences (large text, high contrast) for a year, so they
/// stick on this device whether or not the person logs in.
pub const DISPLAY_COOKIE: &str = "auuction_display";
const FLASH_KEY: &str = "flash";

#[derive(Clone, Copy, Debug, Default)]
pub struct Display {
    pub large_text: bool,
    pub high_contrast: bool,
}

impl Display {
    fn from_headers(headers: &HeaderMap) -> Display {
        let value = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| {
                c.trim()
                    .strip_prefix(&format!("{DISPLAY_COOKIE}="))
                    .map(str::to_string)
            })
            .unwrap_or_default();
        Display {
            large_text: value.split('.').any(|p| p == "large"),
            high_contrast: value.split('.').any(|p| p == "contrast"),
        }
    }

    fn cookie_value(self) -> String {
        let mut parts = vec!["v1"];
        if self.large_text {
            parts.push("large");
        }
        if self.high_contrast {
            parts.push("contrast");
        }
        parts.join(".")
    }
}

/// What every page needs: who is looking, the CSRF token for its forms, display settings,
/// and a one-time flash message.
pub struct PageCtx {
    pub state: AppState,
    pub user: Option<Actor>,
    pub session: Session,
    pub csrf: String,
    pub display: Display,
    pub path: String,
    pub flash: Option<String>,
}

impl FromRequestParts<AppState> for PageCtx {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                PageError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sorry, something went wrong",
                    "Sessions are not available.",
                )
            })?;
        let user =
            <Actor as axum::extract::OptionalFromRequestParts<AppState>>::from_request_parts(
                parts, state,
            )
            .await?;
        let csrf = csrf_token(&session).await?;
        let flash: Option<String> = session.remove(FLASH_KEY).await.ok().flatten();
        Ok(PageCtx {
            state: state.clone(),
            user,
            session,
            csrf,
            display: Display::from_headers(&parts.headers),
            path: parts.uri.path().to_string(),
            flash,
        })
    }
}

impl PageCtx {
    fn user_value(&self) -> Value {
        match &self.user {
            None => Value::from(()),
            Some(u) => {
                let roles = &u.roles;
                Value::from_serialize(serde_json::json!({
                    "id": u.id(), "name": u.row.name, "email": u.row.email,
                    "roles": roles.as_strings(),
                    "is_admin": roles.has(crate::domain::Role::Admin),
                    "is_manager": roles.has_any(&[crate::domain::Role::Manager]),
                    "is_donor": roles.has_any(&[crate::domain::Role::Donor]),
                    "is_finance": roles.has_any(&[crate::domain::Role::Finance]),
                    "verified": u.row.verified(),
                    "paddle_number": u.row.paddle_number,
                }))
            }
        }
    }

    /// Renders `template` with the common context plus `extra`.
    pub fn render(&self, template: &str, title: &str, extra: Value) -> Result<Response, PageError> {
        self.render_status(StatusCode::OK, template, title, extra)
    }

    pub fn render_status(
        &self,
        status: StatusCode,
        template: &str,
        title: &str,
        extra: Value,
    ) -> Result<Response, PageError> {
        let ctx = context! {
            title => title,
            user => self.user_value(),
            csrf_token => &self.csrf,
            display => context! { large_text => self.display.large_text, high_contrast => self.display.high_contrast },
            path => &self.path,
            flash => &self.flash,
            site_name => "auuction",
            ..extra
        };
        let html = self.state.templates.render(template, ctx).map_err(|e| {
            tracing::error!(error = %e, template, "rendering page");
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sorry, something went wrong",
                "This page could not be shown.",
            )
        })?;
        let mut response = (status, Html(html)).into_response();
        // Pages carry personal data and CSRF tokens: never store them in shared caches.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }

    /// A simple message page.
    pub fn message(
        &self,
        heading: &str,
        message: &str,
        link: Option<(&str, &str)>,
    ) -> Result<Response, PageError> {
        let link = link.map(|(href, label)| context! { href => href, label => label });
        self.render(
            "message.html",
            heading,
            context! { heading => heading, message => message, link => link },
        )
    }

    pub async fn set_flash(&self, message: &str) {
        let _ = self.session.insert(FLASH_KEY, message).await;
    }

    /// The signed-in user, or a redirect to the login page that comes back here.
    pub fn require_user(&self) -> Result<&Actor, Redirect> {
        self.user
            .as_ref()
            .ok_or_else(|| Redirect::to(&format!("/login?next={}", urlencode(&self.path))))
    }

    /// The signed-in user holding one of `roles`: else the login page, or a 403 page.
    pub fn require_role(&self, roles: &[crate::domain::Role]) -> Result<&Actor, Denied> {
        let user = self.require_user().map_err(Denied::Login)?;
        user.require(roles)
            .map_err(|e| Denied::Forbidden(e.into()))?;
        Ok(user)
    }
}

/// Why a page was not shown: not logged in, or not allowed.
pub enum Denied {
    Login(Redirect),
    Forbidden(PageError),
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::Login(redirect) => redirect.into_response(),
            Denied::Forbidden(err) => err.into_response(),
        }
    }
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Only same-site relative paths are followed after login, never `//evil.example`.
pub fn safe_next(next: Option<&str>, default: &str) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() < 500 =>
        {
            n.to_string()
        }
        _ => default.to_string(),
    }
}

/// `Form<T>` whose rejection is a friendly page.
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(PageError))]
pub struct PageForm<T>(pub T);

impl From<FormRejection> for PageError {
    fn from(_: FormRejection) -> PageError {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "That did not work",
            "The form could not be read. Please go back and try again.",
        )
    }
}

pub fn checked(value: &Option<String>) -> bool {
    matches!(value.as_deref(), Some("on" | "true" | "1" | "yes"))
}

async fn home(ctx: PageCtx) -> Result<Response, PageError> {
    let now = ctx.state.now();
    let auction = auctions::current(&ctx.state.db, now).await?;
    let auction = auction.map(|row| {
        let state = row.state_at(now);
        let calendar = row.calendar();
        let milestones: Vec<Value> = calendar
            .milestones()
            .iter()
            .map(|m| context! { label => m.label, at => m.at.to_rfc3339(), past => m.at <= now })
            .collect();
        context! {
            id => row.auction_id().to_string(), name => &row.name, year => row.year,
            state => state.as_str(), state_label => state.label(),
            next => calendar.next_milestone(now).map(|m| context! { label => m.label, at => m.at.to_rfc3339() }),
            milestones => milestones,
        }
    });
    let title = auction.as_ref().map(|_| "Welcome").unwrap_or("Welcome");
    // Six cards: one or two rows on most screens, a short scroll on a phone.
    let featured = catalog::featured_cards(&ctx.state, ctx.user.as_ref(), 6).await;
    ctx.render(
        "home.html",
        title,
        context! { auction => auction, server_time => now.to_rfc3339(), featured => featured },
    )
}

#[derive(Deserialize)]
struct DisplayForm {
    toggle: Option<String>,
    large_text: Option<String>,
    high_contrast: Option<String>,
    next: Option<String>,
}

/// `POST /display`: toggles large text or high contrast (a button per setting), or sets
/// both from checkboxes. Scripts post here too and get 204.
async fn display(headers: HeaderMap, PageForm(form): PageForm<DisplayForm>) -> Response {
    let mut display = Display::from_headers(&headers);
    match form.toggle.as_deref() {
        Some("large_text") => display.large_text = !display.large_text,
        Some("high_contrast") => display.high_contrast = !display.high_contrast,
        _ => {
            display.large_text = checked(&form.large_text);
            display.high_contrast = checked(&form.high_contrast);
        }
    }
    let cookie = format!(
        "{DISPLAY_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        display.cookie_value()
    );
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let mut response = if wants_json {
        axum::Json(serde_json::json!({ "large_text": display.large_text, "high_contrast": display.high_contrast })).into_response()
    } else {
        Redirect::to(&safe_next(form.next.as_deref(), "/")).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_stay_on_site() {
        assert_eq!(safe_next(Some("/account"), "/"), "/account");
        assert_eq!(safe_next(Some("//evil.example"), "/"), "/");
        assert_eq!(safe_next(Some("https://evil.example"), "/"), "/");
        assert_eq!(safe_next(Some("/\\evil"), "/"), "/");
        assert_eq!(safe_next(None, "/x"), "/x");
    }

    #[test]
    fn display_cookie_round_trip() {
        let mut headers = HeaderMap::new();
        let d = Display {
            large_text: true,
            high_contrast: false,
        };
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {DISPLAY_COOKIE}={}", d.cookie_value())).unwrap(),
        );
        let back = Display::from_headers(&headers);
        assert!(back.large_text && !back.high_contrast);
    }
}
