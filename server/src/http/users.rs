//! `/api/users/*`: my profile, and the admin's user directory, role changes and audit log.
//! Profile and role changes are `services::users`, shared with the account and admin pages.

use axum::{
    extract::State,
    routing::{get, put},
    Json, Router,
};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use crate::{
    domain::{Role, UserId},
    error::{AppError, AppResult},
    http::extract::{ApiJson, ApiPath, ApiQuery},
    services::users::{change_roles, update_profile, ProfileChange},
    session::Actor,
    state::AppState,
    store::{
        audit,
        users::{self, AccountView, Preferences},
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/me", get(me).put(update_me))
        .route("/users", get(search))
        .route("/users/{id}", get(by_id))
        .route("/users/{id}/roles", put(set_roles))
        .route("/audit", get(audit_log))
}

async fn me(user: Actor) -> Json<AccountView> {
    Json(AccountView::from(&user.row))
}

/// Distinguishes an absent field (keep) from `null` (clear).
fn some_or_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProfilePatch {
    name: Option<String>,
    #[serde(default, deserialize_with = "some_or_null")]
    phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_or_null")]
    address: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_or_null")]
    household: Option<Option<String>>,
    preferences: Option<Preferences>,
    /// `{"outbid": false}`: optional notification types on or off.
    notifications: Option<std::collections::BTreeMap<String, bool>>,
    /// `none`, `phoneCall` or `printedMail`.
    alternate_contact: Option<String>,
}

/// `PUT /api/users/me`: name, phone, address, household, contact preferences, optional
/// notifications (`{"notifications": {"outbid": false}}`).
async fn update_me(
    State(state): State<AppState>,
    user: Actor,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> AppResult<Json<AccountView>> {
    let change = ProfileChange {
        name: patch.name.as_deref(),
        phone: patch.phone.as_ref().map(|p| p.as_deref()),
        address: patch.address.as_ref().map(|a| a.as_deref()),
        household: patch.household.as_ref().map(|h| h.as_deref()),
        preferences: patch.preferences,
        notifications: patch.notifications.map(|n| n.into_iter().collect()),
        alternate_contact: patch.alternate_contact.as_deref(),
    };
    let row = update_profile(&state, &user, change).await?;
    Ok(Json(AccountView::from(&row)))
}

#[derive(Deserialize)]
struct SearchQuery {
    query: Option<String>,
    #[serde(default = "default_limit")]
    limit: i64,
    #[serde(default)]
    offset: i64,
}

fn default_limit() -> i64 {
    50
}

/// `GET /api/users?query=...` (admin): by name, email or paddle number.
async fn search(
    State(state): State<AppState>,
    user: Actor,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> AppResult<Json<serde_json::Value>> {
    user.require(&[Role::Admin])?;
    if !(1..=200).contains(&q.limit) || q.offset < 0 {
        return Err(AppError::bad_request(
            "invalid_query",
            "limit must be 1 to 200 and offset not negative.",
        ));
    }
    if q.query.as_deref().is_some_and(|s| s.chars().count() > 200) {
        return Err(AppError::bad_request(
            "invalid_query",
            "The search text is too long.",
        ));
    }
    let (rows, total) = users::search(&state.db, q.query.as_deref(), q.limit, q.offset).await?;
    let users: Vec<AccountView> = rows.iter().map(AccountView::from).collect();
    Ok(Json(
        json!({ "users": users, "total": total, "limit": q.limit, "offset": q.offset }),
    ))
}

/// `GET /api/users/{id}` (admin).
async fn by_id(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<UserId>,
) -> AppResult<Json<AccountView>> {
    user.require(&[Role::Admin])?;
    let row = users::by_id(&state.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    Ok(Json(AccountView::from(&row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesRequest {
    roles: Vec<String>,
}

/// `PUT /api/users/{id}/roles {"roles": ["bidder", "donor"]}` (admin, audited).
async fn set_roles(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(req): ApiJson<RolesRequest>,
) -> AppResult<Json<AccountView>> {
    let row = change_roles(&state, &user, id, &req.roles).await?;
    Ok(Json(AccountView::from(&row)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditQuery {
    entity_type: Option<String>,
    entity_id: Option<String>,
    #[serde(default = "default_limit")]
    limit: i64,
    #[serde(default)]
    offset: i64,
}

/// `GET /api/audit?entityType=user&entityId=u_12` (admin).
async fn audit_log(
    State(state): State<AppState>,
    user: Actor,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> AppResult<Json<serde_json::Value>> {
    user.require(&[Role::Admin])?;
    if !(1..=500).contains(&q.limit) || q.offset < 0 {
        return Err(AppError::bad_request(
            "invalid_query",
            "limit must be 1 to 500 and offset not negative.",
        ));
    }
    // Entity ids are accepted with any prefix (u_12, a_3, it_7) or bare.
    let entity_id = match q.entity_id.as_deref() {
        None => None,
        Some(raw) => Some(
            raw.rsplit('_')
                .next()
                .and_then(|d| d.parse::<i64>().ok())
                .ok_or_else(|| AppError::bad_request("invalid_query", "entityId is not an id."))?,
        ),
    };
    let entries = audit::list(
        &state.db,
        q.entity_type.as_deref(),
        entity_id,
        q.limit,
        q.offset,
    )
    .await?;
    Ok(Json(json!({ "entries": entries })))
}
