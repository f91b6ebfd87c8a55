//! The notification queue for staff (`/manage/notifications`, managers and admins): how
//! many notifications wait, are being sent, were sent, failed or were skipped; what waits
//! next; what failed and why, each with "Send again now". `services::notifications`.

use axum::{
    extract::Path,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use minijinja::{context, Value};

use crate::{
    domain::Role,
    pages::{error::PageError, PageCtx},
    services::notifications::{alternate_contacts, queue, retry_now},
    state::AppState,
    store::notifications::QueueRow,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/manage/notifications", get(queue_page))
        .route("/manage/notifications/{id}/retry", post(retry))
        .route("/manage/contacts", get(contacts_page))
}

/// "People to phone or write to": everyone for whom email is hard, where to reach them,
/// and what the system told them by email lately (spec 3.2, accessibility).
async fn contacts_page(ctx: PageCtx) -> Result<Response, PageError> {
    let actor = match ctx.require_role(&[Role::Manager, Role::Admin]) {
        Ok(actor) => actor,
        Err(denied) => return Ok(denied.into_response()),
    };
    let people: Vec<Value> = alternate_contacts(&ctx.state, actor)
        .await?
        .iter()
        .map(|view| {
            let p = &view.person;
            let phone_call = p.alternate_contact == "phone_call";
            context! {
                name => &p.name, paddle_number => p.paddle_number,
                how => if phone_call { "Phone call" } else { "Printed letter" },
                reach => if phone_call { &p.phone } else { &p.address },
                recent => view.recent.iter().map(|(kind, at)| context! {
                    kind => kind_label(kind), at => at.to_rfc3339(),
                }).collect::<Vec<_>>(),
            }
        })
        .collect();
    ctx.render(
        "manage/contacts.html",
        "People to phone or write to",
        context! { people => people },
    )
}

/// A notification type in words.
fn kind_label(kind: &str) -> &str {
    match kind {
        "outbid" => "Outbid",
        "win" => "You won",
        "reoffer_announcement" => "Leftover items on sale",
        "registration" => "Welcome",
        "custom" => "Message",
        "settlement" => "Settlement",
        "event_reminder" => "Event reminder",
        other => other,
    }
}

fn row_value(r: &QueueRow) -> Value {
    context! {
        id => r.id, kind => kind_label(&r.kind), name => &r.name, paddle_number => r.paddle_number,
        scheduled_for => r.scheduled_for.to_rfc3339(), attempts => r.attempts,
        last_error => &r.last_error,
    }
}

async fn queue_page(ctx: PageCtx) -> Result<Response, PageError> {
    let actor = match ctx.require_role(&[Role::Manager, Role::Admin]) {
        Ok(actor) => actor,
        Err(denied) => return Ok(denied.into_response()),
    };
    let view = queue(&ctx.state, actor).await?;
    let count = |status: &str| {
        view.counts
            .iter()
            .find(|(s, _)| s == status)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let counts = context! {
        due => count("due"), later => count("scheduled"), sending => count("sending"),
        sent => count("sent"), failed => count("failed"), skipped => count("skipped"),
    };
    let waiting: Vec<Value> = view.waiting.iter().map(row_value).collect();
    let failed: Vec<Value> = view.failed.iter().map(row_value).collect();
    ctx.render(
        "manage/notifications.html",
        "Email queue",
        context! { counts => counts, waiting => waiting, failed => failed },
    )
}

async fn retry(ctx: PageCtx, Path(id): Path<i64>) -> Result<Response, PageError> {
    let actor = match ctx.require_role(&[Role::Manager, Role::Admin]) {
        Ok(actor) => actor,
        Err(denied) => return Ok(denied.into_response()),
    };
    match retry_now(&ctx.state, actor, id).await {
        Ok(()) => {
            ctx.set_flash(&format!("Notification {id} will be sent again now."))
                .await
        }
        Err(err) if err.status.is_client_error() => ctx.set_flash(&err.message).await,
        Err(err) => return Err(err.into()),
    }
    Ok(Redirect::to("/manage/notifications").into_response())
}
