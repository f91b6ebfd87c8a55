//! `/manage/auctions`: the managers' console for the auctions. Everyone on staff (managers,
//! admins) sees each auction's calendar in the auction's time zone and its state; admins
//! create auctions and edit calendars (the spec gives `POST/PUT /auctions` to admins only);
//! managers and admins pin a state, give it back to the calendar, and open or close the
//! reoffer. Every one of those actions asks first (a confirmation page that posts again
//! with `confirm=yes`), is audited by the service, and ends in a redirect with a flash.

use axum::{
    extract::Path,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use minijinja::{context, Value};
use serde::Deserialize;

use crate::{
    domain::{AuctionId, AuctionState, Role},
    error::AppError,
    pages::{
        auction_form::{ordering_message, plain_message, AuctionForm, DATE_FIELDS},
        donor_form::FieldErrors,
        error::PageError,
        PageCtx, PageForm,
    },
    services::auctions::{self as service, calendar_field, pin_state},
    state::AppState,
    store::auctions::{self, AuctionRow},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/manage/auctions", get(list))
        .route("/manage/auctions/new", get(new_form).post(new_submit))
        .route(
            "/manage/auctions/{id}/edit",
            get(edit_form).post(edit_submit),
        )
        .route("/manage/auctions/{id}/state", post(state_action))
        .route("/manage/auctions/{id}/reoffer", post(reoffer_action))
}

/// The signed-in user holding one of the roles, or the login page / a 403 page.
macro_rules! require {
    ($ctx:expr, $roles:expr) => {
        match $ctx.require_role($roles) {
            Ok(user) => user,
            Err(denied) => return Ok(denied.into_response()),
        }
    };
}

fn parse_id(id: &str) -> Result<AuctionId, PageError> {
    id.parse()
        .map_err(|_| PageError::from(AppError::not_found("Auction")))
}

async fn load(ctx: &PageCtx, id: AuctionId) -> Result<AuctionRow, PageError> {
    auctions::by_id(&ctx.state.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("Auction").into())
}

/// One auction as the list shows it.
fn auction_value(row: &AuctionRow, ctx: &PageCtx) -> Value {
    let now = ctx.state.now();
    let state = row.state_at(now);
    let calendar_state = row.calendar().state_at(now);
    let dates: Vec<Value> = row
        .calendar()
        .milestones()
        .iter()
        .map(|m| context! { label => m.label, at => m.at.to_rfc3339(), past => m.at <= now })
        .collect();
    let states: Vec<Value> = AuctionState::ALL
        .iter()
        .map(|s| context! { value => s.as_str(), label => s.label(), current => *s == state })
        .collect();
    context! {
        id => row.auction_id().to_string(), year => row.year, name => &row.name,
        state => state.as_str(), state_label => state.label(),
        pinned => row.override_state().is_some(),
        calendar_state_label => calendar_state.label(),
        dates => dates, states => states,
        soft_close_seconds => row.soft_close_seconds,
        hard_close_at => row.hard_close_at.map(|t| t.to_rfc3339()),
    }
}

async fn list(ctx: PageCtx) -> Result<Response, PageError> {
    require!(ctx, &[Role::Manager]);
    let rows = auctions::all(&ctx.state.db).await?;
    let list: Vec<Value> = rows.iter().map(|r| auction_value(r, &ctx)).collect();
    ctx.render(
        "manage/auctions.html",
        "Auctions",
        context! { auctions => list },
    )
}

// ---- the calendar form (admins) ---------------------------------------------------------

async fn render_form(
    ctx: &PageCtx,
    status: StatusCode,
    form: &AuctionForm,
    errors: &FieldErrors,
    auction: Option<&AuctionRow>,
) -> Result<Response, PageError> {
    let dates: Vec<Value> = DATE_FIELDS
        .iter()
        .map(|(name, label)| context! { name => name, label => label })
        .collect();
    let auction = auction.map(|r| context! { id => r.auction_id().to_string(), name => &r.name });
    let title = if auction.is_some() {
        "Edit the calendar"
    } else {
        "Create an auction"
    };
    ctx.render_status(
        status,
        "manage/auction_form.html",
        title,
        context! {
            form => Value::from_serialize(form), errors => Value::from_serialize(errors),
            dates => dates, auction => auction,
        },
    )
}

/// Reads the form into the service's request, with every typing problem and the
/// calendar's first ordering problem beside its field.
fn read_form(ctx: &PageCtx, form: &AuctionForm) -> Result<service::AuctionRequest, FieldErrors> {
    let mut errors = FieldErrors::new();
    let request = form.request(ctx.state.config.time_zone, &mut errors);
    match request {
        Some(request) if errors.is_empty() => match request.calendar.validate() {
            Ok(()) => Ok(request),
            Err(e) => {
                errors.insert(calendar_field(&e), ordering_message(&e).into());
                Err(errors)
            }
        },
        _ => Err(errors),
    }
}

/// A workflow's refusal, beside its field (or above the form).
fn into_errors(e: AppError) -> Result<(StatusCode, FieldErrors), PageError> {
    if !e.status.is_client_error() || e.status == StatusCode::NOT_FOUND {
        return Err(e.into());
    }
    let mut errors = FieldErrors::new();
    errors.insert(
        e.field.unwrap_or("form"),
        plain_message(e.field, &e.message),
    );
    Ok((e.status, errors))
}

async fn new_form(ctx: PageCtx) -> Result<Response, PageError> {
    require!(ctx, &[Role::Admin]);
    let form = AuctionForm {
        soft_close_seconds: service::default_soft_close().to_string(),
        ..AuctionForm::default()
    };
    render_form(&ctx, StatusCode::OK, &form, &FieldErrors::new(), None).await
}

async fn new_submit(
    ctx: PageCtx,
    PageForm(form): PageForm<AuctionForm>,
) -> Result<Response, PageError> {
    let user = require!(ctx, &[Role::Admin]);
    let request = match read_form(&ctx, &form) {
        Ok(r) => r,
        Err(errors) => {
            return render_form(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &form, &errors, None).await
        }
    };
    match service::create(&ctx.state, user, request).await {
        Ok(row) => {
            ctx.set_flash(&format!("“{}” is created.", row.name)).await;
            Ok(Redirect::to("/manage/auctions").into_response())
        }
        Err(e) => {
            let (status, errors) = into_errors(e)?;
            render_form(&ctx, status, &form, &errors, None).await
        }
    }
}

async fn edit_form(ctx: PageCtx, Path(id): Path<String>) -> Result<Response, PageError> {
    require!(ctx, &[Role::Admin]);
    let row = load(&ctx, parse_id(&id)?).await?;
    let form = AuctionForm::from_row(&row, ctx.state.config.time_zone);
    render_form(&ctx, StatusCode::OK, &form, &FieldErrors::new(), Some(&row)).await
}

async fn edit_submit(
    ctx: PageCtx,
    Path(id): Path<String>,
    PageForm(form): PageForm<AuctionForm>,
) -> Result<Response, PageError> {
    let user = require!(ctx, &[Role::Admin]);
    let row = load(&ctx, parse_id(&id)?).await?;
    let request = match read_form(&ctx, &form) {
        Ok(r) => r,
        Err(errors) => {
            return render_form(
                &ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &errors,
                Some(&row),
            )
            .await
        }
    };
    match service::update(&ctx.state, user, row.auction_id(), request).await {
        Ok(after) => {
            ctx.set_flash(&format!("The calendar of “{}” is saved.", after.name))
                .await;
            Ok(Redirect::to("/manage/auctions").into_response())
        }
        Err(e) => {
            let (status, errors) = into_errors(e)?;
            render_form(&ctx, status, &form, &errors, Some(&row)).await
        }
    }
}

// ---- state and reoffer controls (managers, admins), each confirmed first ----------------

#[derive(Deserialize, Default)]
#[serde(default)]
struct ActionForm {
    /// `/state`: a state's name or `auto`; `/reoffer`: `open` or `close`.
    state: String,
    reason: String,
    /// `yes` once the confirmation page was answered.
    confirm: String,
}

/// What a confirmed action will do: the question, the button, and the flash after.
struct Step {
    pinned: Option<AuctionState>,
    question: String,
    yes: &'static str,
    done: String,
}

/// Asks first; on `confirm=yes` pins (audited by the service) and redirects with a flash.
async fn confirm_then_pin(
    ctx: &PageCtx,
    row: &AuctionRow,
    action: &str,
    form: &ActionForm,
    step: Step,
) -> Result<Response, PageError> {
    let user = ctx
        .user
        .as_ref()
        .ok_or_else(|| PageError::from(AppError::unauthenticated()))?;
    if form.confirm != "yes" {
        return ctx.render(
            "manage/confirm.html",
            "Please confirm",
            context! {
                question => step.question, yes => step.yes,
                action => format!("/manage/auctions/{}/{action}", row.auction_id()),
                state => &form.state, cancel => "/manage/auctions",
            },
        );
    }
    let reason = Some(form.reason.as_str()).filter(|r| !r.trim().is_empty());
    match pin_state(&ctx.state, user, row.auction_id(), step.pinned, reason).await {
        Ok(_) => {
            ctx.set_flash(&step.done).await;
            Ok(Redirect::to("/manage/auctions").into_response())
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            ctx.set_flash(&format!("That did not work: {}", e.message))
                .await;
            Ok(Redirect::to("/manage/auctions").into_response())
        }
        Err(e) => Err(e.into()),
    }
}

fn unknown(what: &str) -> PageError {
    PageError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "That did not work",
        &format!("Please use one of the buttons on the auctions page ({what})."),
    )
}

async fn state_action(
    ctx: PageCtx,
    Path(id): Path<String>,
    PageForm(form): PageForm<ActionForm>,
) -> Result<Response, PageError> {
    require!(ctx, &[Role::Manager]);
    let row = load(&ctx, parse_id(&id)?).await?;
    let now = ctx.state.now();
    let step = match form.state.as_str() {
        "auto" => {
            let by_calendar = row.calendar().state_at(now);
            Step {
                pinned: None,
                question: format!(
                    "Give “{}” back to its calendar? Its state will follow the dates again: now “{}”.",
                    row.name,
                    by_calendar.label()
                ),
                yes: "Yes, follow the calendar",
                done: format!(
                    "“{}” follows its calendar again: {}.",
                    row.name,
                    by_calendar.label()
                ),
            }
        }
        name => {
            let state = AuctionState::parse(name).ok_or_else(|| unknown("unknown state"))?;
            Step {
                pinned: Some(state),
                question: format!(
                    "Set “{}” to “{}” now? The calendar will not change it until you give it back.",
                    row.name,
                    state.label()
                ),
                yes: "Yes, set it",
                done: format!("“{}” is set to “{}”.", row.name, state.label()),
            }
        }
    };
    confirm_then_pin(&ctx, &row, "state", &form, step).await
}

async fn reoffer_action(
    ctx: PageCtx,
    Path(id): Path<String>,
    PageForm(form): PageForm<ActionForm>,
) -> Result<Response, PageError> {
    require!(ctx, &[Role::Manager]);
    let row = load(&ctx, parse_id(&id)?).await?;
    let step = match form.state.as_str() {
        "open" => Step {
            pinned: Some(AuctionState::Reoffer),
            question: "Open the reoffer now? Every registered bidder will be told.".into(),
            yes: "Yes, open it",
            done: format!("The reoffer of “{}” is open.", row.name),
        },
        "close" => Step {
            pinned: Some(AuctionState::Closed),
            question: "Close the reoffer now? Nobody will be able to buy after this.".into(),
            yes: "Yes, close it",
            done: format!("The reoffer of “{}” is closed.", row.name),
        },
        _ => return Err(unknown("open or close")),
    };
    confirm_then_pin(&ctx, &row, "reoffer", &form, step).await
}
