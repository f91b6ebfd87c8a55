//! Admin pages: the user directory with role changes, and the audit log.

use axum::{
    body::Bytes,
    extract::{Path, Query},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use minijinja::{context, Value};
use serde::Deserialize;

use crate::{
    domain::{Role, UserId},
    error::AppError,
    pages::{error::PageError, urlencode, PageCtx},
    services::users::change_roles,
    state::AppState,
    store::{audit, users},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(user_list))
        .route("/admin/users/{id}/roles", post(roles_submit))
        .route("/admin/audit", get(audit_page))
}

#[derive(Deserialize)]
struct SearchQuery {
    query: Option<String>,
}

async fn user_list(ctx: PageCtx, Query(q): Query<SearchQuery>) -> Result<Response, PageError> {
    if let Err(denied) = ctx.require_role(&[Role::Admin]) {
        return Ok(denied.into_response());
    }
    let query = q.query.unwrap_or_default();
    let query: String = query.chars().take(200).collect();
    let (rows, total) = users::search(&ctx.state.db, Some(&query), 200, 0).await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|u| context! { id => u.user_id().to_string(), name => &u.name, email => &u.email, roles => u.roles().as_strings(), verified => u.verified(), paddle_number => u.paddle_number })
        .collect();
    let all_roles: Vec<Value> = Role::ALL
        .iter()
        .map(|r| context! { value => r.as_str(), label => r.label() })
        .collect();
    ctx.render(
        "admin/users.html",
        "Users",
        context! { query => query, users => list, all_roles => all_roles, total => total },
    )
}

/// The roles form posts one `roles` field per checked box, which serde_urlencoded cannot
/// collect into a list, so the body is read by hand.
async fn roles_submit(
    ctx: PageCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    if let Err(denied) = ctx.require_role(&[Role::Admin]) {
        return Ok(denied.into_response());
    }
    let id: UserId = id
        .parse()
        .map_err(|_| PageError::from(AppError::not_found("User")))?;
    let roles: Vec<String> = url::form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "roles")
        .map(|(_, v)| v.into_owned())
        .collect();
    let actor = ctx
        .user
        .as_ref()
        .ok_or_else(|| PageError::from(AppError::unauthenticated()))?;
    let query: Option<String> = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "query")
        .map(|(_, v)| v.into_owned());
    match change_roles(&ctx.state, actor, id, &roles).await {
        Ok(row) => {
            ctx.set_flash(&format!(
                "Roles of {} saved: {}.",
                row.name,
                row.roles()
                    .iter()
                    .map(|r| r.label())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .await
        }
        Err(err) if err.status.is_client_error() => ctx.set_flash(&err.message).await,
        Err(err) => return Err(err.into()),
    }
    Ok(Redirect::to(&format!(
        "/admin/users?query={}",
        urlencode(query.as_deref().unwrap_or(""))
    ))
    .into_response())
}

async fn audit_page(ctx: PageCtx) -> Result<Response, PageError> {
    if let Err(denied) = ctx.require_role(&[Role::Admin]) {
        return Ok(denied.into_response());
    }
    let entries = audit::list(&ctx.state.db, None, None, 200, 0).await?;
    let pretty = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .and_then(|v| serde_json::to_string_pretty(v).ok())
    };
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            context! {
                id => e.id, created_at => e.created_at.to_rfc3339(), actor_name => &e.actor_name,
                action => &e.action, entity_type => &e.entity_type, entity_id => e.entity_id,
                before => pretty(&e.before), after => pretty(&e.after),
            }
        })
        .collect();
    ctx.render(
        "admin/audit.html",
        "Audit log",
        context! { entries => list },
    )
}
