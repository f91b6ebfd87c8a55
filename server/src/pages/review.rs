//! `/manage/review`: the auction managers' queue. Items waiting for review (approve, or
//! return with a note), approved items (publish), published items (feature on the home
//! page). Each button is one small form posting to `/manage/review/{id}`; the step itself
//! is the API's (`services::items::apply_step`, `review_decision`, `feature_item`).

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
    domain::{catalog::Transition, ItemId, Role},
    error::AppError,
    pages::{catalog::type_label, error::PageError, PageCtx, PageForm},
    services::{
        catalog::{catalog_page, ListQuery, PER_PAGE_MAX},
        items::{apply_step, feature_item, review_decision},
    },
    session::Actor,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/manage/review", get(queue))
        .route("/manage/review/{id}", post(act))
}

/// One status's items as table rows.
async fn rows(state: &AppState, user: &Actor, status: &str) -> Result<Vec<Value>, AppError> {
    let query = ListQuery {
        status: Some(status.into()),
        per_page: Some(PER_PAGE_MAX),
        sort: Some("newest".into()),
        ..ListQuery::default()
    };
    let page = catalog_page(state, Some(user), query).await?;
    Ok(page
        .items
        .iter()
        .map(|v| {
            context! {
                id => v.id.to_string(), title => &v.title, donor => &v.donor_name,
                kind_label => type_label(v.item_type), category => &v.category.name,
                price => v.opening_bid.to_string(), review_note => &v.review_note,
                images => v.images.len(), featured => v.featured,
                has_event => v.event.is_some(),
            }
        })
        .collect())
}

async fn render(
    ctx: &PageCtx,
    status: StatusCode,
    error: Option<(String, String)>,
) -> Result<Response, PageError> {
    let user = ctx
        .user
        .as_ref()
        .ok_or_else(|| PageError::from(AppError::unauthenticated()))?;
    let submitted = rows(&ctx.state, user, "submitted").await?;
    let approved = rows(&ctx.state, user, "approved").await?;
    let published = rows(&ctx.state, user, "published").await?;
    ctx.render_status(
        status,
        "manage/review.html",
        "Review queue",
        context! {
            submitted => submitted, approved => approved, published => published,
            error => error.map(|(id, message)| context! { id => id, message => message }),
        },
    )
}

async fn queue(ctx: PageCtx) -> Result<Response, PageError> {
    if let Err(denied) = ctx.require_role(&[Role::Manager]) {
        return Ok(denied.into_response());
    }
    render(&ctx, StatusCode::OK, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ActionForm {
    action: String,
    note: String,
}

async fn act(
    ctx: PageCtx,
    Path(id): Path<String>,
    PageForm(form): PageForm<ActionForm>,
) -> Result<Response, PageError> {
    let user = match ctx.require_role(&[Role::Manager]) {
        Ok(u) => u,
        Err(denied) => return Ok(denied.into_response()),
    };
    let id: ItemId = id
        .parse()
        .map_err(|_| PageError::from(AppError::not_found("Item")))?;
    let note = Some(form.note.as_str()).filter(|n| !n.trim().is_empty());
    let result = match form.action.as_str() {
        "approve" | "return" => match review_decision(&form.action, note) {
            Ok((step, note)) => apply_step(&ctx.state, user, id, step, note).await,
            Err(e) => Err(e),
        },
        "publish" => apply_step(&ctx.state, user, id, Transition::Publish, None).await,
        "feature" => feature_item(&ctx.state, user, id, true).await,
        "unfeature" => feature_item(&ctx.state, user, id, false).await,
        _ => Err(AppError::validation("Please use one of the buttons.")),
    };
    match result {
        Ok(row) => {
            let done = match form.action.as_str() {
                "approve" => "approved",
                "return" => "returned to the donor",
                "publish" => "published in the catalog",
                "feature" => "featured on the home page",
                _ => "no longer featured",
            };
            ctx.set_flash(&format!("“{}” is {done}.", row.title)).await;
            Ok(Redirect::to("/manage/review").into_response())
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            render(
                &ctx,
                e.status,
                Some((id.to_string(), e.message.to_string())),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
