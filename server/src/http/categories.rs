//! `/api/categories`: everyone lists the active ones; admins manage them (audited). A
//! category that items use is deactivated rather than deleted, so those items keep it.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, put},
    Json, Router,
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    domain::{validate, CategoryId, Role},
    error::{AppError, AppResult},
    http::extract::{ApiJson, ApiPath, ApiQuery},
    session::Actor,
    state::AppState,
    store::{
        audit,
        categories::{self, CategoryFields, CategoryRow},
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/categories", get(list).post(create))
        .route("/categories/{id}", put(update).delete(remove))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    all: bool,
}

/// `GET /api/categories` (everyone): active categories in order; `?all=true` (admin)
/// includes inactive ones.
async fn list(
    State(state): State<AppState>,
    user: Option<Actor>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<serde_json::Value>> {
    if q.all {
        user.as_ref()
            .ok_or_else(AppError::unauthenticated)?
            .require(&[Role::Admin])?;
    }
    let rows = categories::list(&state.db, q.all).await?;
    Ok(Json(json!({ "categories": rows })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CategoryRequest {
    name: String,
    /// Derived from the name when absent.
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    sort_order: Option<i32>,
}

/// `"Hosted Events!"` → `"hosted-events"`.
fn slugify(name: &str) -> String {
    name.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

impl CategoryRequest {
    fn validate(self, current: Option<&CategoryRow>) -> AppResult<CategoryFields> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(AppError {
                field: Some("name"),
                ..AppError::validation("Please give the category a name.")
            });
        }
        let name = validate::text("name", name, 100)?.to_string();
        let slug = match self.slug {
            Some(s) => s.trim().to_string(),
            None => slugify(&name),
        };
        let slug_ok = !slug.is_empty()
            && slug.len() <= 100
            && slug.split('-').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !slug_ok {
            return Err(AppError {
                field: Some("slug"),
                ..AppError::validation(
                    "The slug is lowercase letters and digits in words joined by hyphens.",
                )
            });
        }
        Ok(CategoryFields {
            name,
            slug,
            active: self
                .active
                .unwrap_or_else(|| current.is_none_or(|c| c.active)),
            sort_order: self
                .sort_order
                .unwrap_or_else(|| current.map_or(0, |c| c.sort_order)),
        })
    }
}

/// `POST /api/categories` (admin) → 201.
async fn create(
    State(state): State<AppState>,
    user: Actor,
    ApiJson(req): ApiJson<CategoryRequest>,
) -> AppResult<Response> {
    user.require(&[Role::Admin])?;
    let fields = req.validate(None)?;
    let mut tx = state.db.begin().await?;
    // A name or slug in use is a 409 `category_exists` naming the field (crate::error).
    let row = categories::insert(&mut *tx, &fields).await?;
    audit::record(
        &mut *tx,
        Some(user.id()),
        "category.created",
        "category",
        Some(row.id),
        None,
        Some(json!(row)),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row)).into_response())
}

/// `PUT /api/categories/{id}` (admin): rename, reorder, (de)activate.
async fn update(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<CategoryId>,
    ApiJson(req): ApiJson<CategoryRequest>,
) -> AppResult<Json<CategoryRow>> {
    user.require(&[Role::Admin])?;
    let mut tx = state.db.begin().await?;
    let before = categories::by_id_for_update(&mut *tx, id)
        .await?
        .ok_or_else(|| AppError::not_found("Category"))?;
    let fields = req.validate(Some(&before))?;
    let after = categories::update(&mut *tx, id, &fields).await?;
    audit::record(
        &mut *tx,
        Some(user.id()),
        "category.updated",
        "category",
        Some(id.0),
        Some(json!(before)),
        Some(json!(after)),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// `DELETE /api/categories/{id}` (admin): 204 when unused; when items use it, it is
/// deactivated instead (200 with `active: false`), as the spec requires.
async fn remove(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<CategoryId>,
) -> AppResult<Response> {
    user.require(&[Role::Admin])?;
    let mut tx = state.db.begin().await?;
    let before = categories::by_id_for_update(&mut *tx, id)
        .await?
        .ok_or_else(|| AppError::not_found("Category"))?;
    let response = if categories::in_use(&mut *tx, id).await? {
        let after = categories::deactivate(&mut *tx, id).await?;
        audit::record(
            &mut *tx,
            Some(user.id()),
            "category.deactivated",
            "category",
            Some(id.0),
            Some(json!(before)),
            Some(json!(after)),
        )
        .await?;
        Json(after).into_response()
    } else {
        categories::delete(&mut *tx, id).await?;
        audit::record(
            &mut *tx,
            Some(user.id()),
            "category.deleted",
            "category",
            Some(id.0),
            Some(json!(before)),
            None,
        )
        .await?;
        StatusCode::NO_CONTENT.into_response()
    };
    tx.commit().await?;
    Ok(response)
}
