//! `/api/users/*`: my profile, and the admin's user directory, role changes and audit log.

use axum::{
    extract::State,
    routing::{get, put},
    Json, Router,
};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use crate::{
    app::AppState,
    domain::{validate, Role, Roles, UserId},
    http::{
        error::{ApiError, ApiResult},
        extract::{ApiJson, ApiPath, ApiQuery, CurrentUser},
    },
    store::{
        audit,
        users::{self, AccountView, Preferences, ProfileUpdate, UserRow},
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

async fn me(user: CurrentUser) -> Json<AccountView> {
    Json(AccountView::from(&user.row))
}

/// Distinguishes an absent field (keep) from `null` (clear).
fn some_or_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilePatch {
    name: Option<String>,
    #[serde(default, deserialize_with = "some_or_null")]
    phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_or_null")]
    address: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_or_null")]
    household: Option<Option<String>>,
    preferences: Option<Preferences>,
}

/// Applies a patch to the stored profile, validating every field that is given.
pub fn apply_patch(
    current: &UserRow,
    name: Option<&str>,
    phone: Option<Option<&str>>,
    address: Option<Option<&str>>,
    household: Option<Option<&str>>,
    preferences: Option<Preferences>,
) -> Result<ProfileUpdate, ApiError> {
    Ok(ProfileUpdate {
        name: match name {
            Some(n) => validate::name(n)?,
            None => current.name.clone(),
        },
        phone: match phone {
            Some(p) => validate::phone(p)?,
            None => current.phone.clone(),
        },
        address: match address {
            Some(a) => validate::optional_text("address", a, 500)?,
            None => current.address.clone(),
        },
        household: match household {
            Some(h) => validate::optional_text("household", h, 200)?,
            None => current.household.clone(),
        },
        preferences: preferences.unwrap_or(Preferences {
            email: current.pref_email,
            sms: current.pref_sms,
        }),
    })
}

/// `PUT /api/users/me`: name, phone, address, household, contact preferences.
async fn update_me(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> ApiResult<Json<AccountView>> {
    let update = apply_patch(
        &user.row,
        patch.name.as_deref(),
        patch.phone.as_ref().map(|p| p.as_deref()),
        patch.address.as_ref().map(|a| a.as_deref()),
        patch.household.as_ref().map(|h| h.as_deref()),
        patch.preferences,
    )?;
    if update.preferences.sms && update.phone.is_none() {
        return Err(ApiError {
            field: Some("phone"),
            ..ApiError::validation("Text messages need a phone number.")
        });
    }
    let row = users::update_profile(&state.db, user.id(), &update).await?;
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
    user: CurrentUser,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    user.require(&[Role::Admin])?;
    if !(1..=200).contains(&q.limit) || q.offset < 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 200 and offset not negative.",
        ));
    }
    if q.query.as_deref().is_some_and(|s| s.chars().count() > 200) {
        return Err(ApiError::bad_request(
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
    user: CurrentUser,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<Json<AccountView>> {
    user.require(&[Role::Admin])?;
    let row = users::by_id(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    Ok(Json(AccountView::from(&row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesRequest {
    roles: Vec<String>,
}

/// Changes a user's roles and writes the audit entry in the same transaction.
pub async fn change_roles(
    state: &AppState,
    actor: &CurrentUser,
    target: UserId,
    names: &[String],
) -> ApiResult<UserRow> {
    actor.require(&[Role::Admin])?;
    let mut roles = Vec::new();
    for name in names {
        roles.push(Role::parse(name).ok_or_else(|| ApiError {
            field: Some("roles"),
            ..ApiError::validation(format!(
                "Unknown role {name:?}; roles are bidder, donor, manager, admin, finance."
            ))
        })?);
    }
    let roles = Roles::new(roles);
    if target == actor.id() && !roles.has(Role::Admin) {
        // Otherwise the last admin could lock everyone out of the admin pages.
        return Err(ApiError::conflict(
            "cannot_demote_self",
            "You cannot remove your own admin role; ask another admin.",
        ));
    }
    let mut tx = state.db.begin().await?;
    let before = users::by_id_for_update(&mut *tx, target)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    let after = users::set_roles(&mut *tx, target, &roles).await?;
    audit::record(
        &mut *tx,
        Some(actor.id()),
        "user.roles_changed",
        "user",
        Some(target.0),
        Some(json!({ "roles": before.roles().as_strings() })),
        Some(json!({ "roles": after.roles().as_strings() })),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(actor = actor.id().0, target = target.0, roles = ?after.roles, "roles changed");
    Ok(after)
}

/// `PUT /api/users/{id}/roles {"roles": ["bidder", "donor"]}` (admin, audited).
async fn set_roles(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(req): ApiJson<RolesRequest>,
) -> ApiResult<Json<AccountView>> {
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
    user: CurrentUser,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    user.require(&[Role::Admin])?;
    if !(1..=500).contains(&q.limit) || q.offset < 0 {
        return Err(ApiError::bad_request(
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
                .ok_or_else(|| ApiError::bad_request("invalid_query", "entityId is not an id."))?,
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
