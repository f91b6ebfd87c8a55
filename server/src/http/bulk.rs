//! `POST /api/users/bulk` (admin only): verified test bidders in bulk, for rehearsing auction
//! night with the load tester against a staging copy. Every account shares one password hash
//! (hashing thousands with argon2 would take minutes), and the answer carries a session token
//! for each, so the load tester need not run thousands of logins either. Admin-only and
//! audited: it creates nothing an admin could not create one by one with `user add`.

use axum::{extract::State, http::StatusCode, routing::post, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::{
    session::{Id, Record},
    SessionStore,
};

use crate::{
    domain::{validate, Role, UserId},
    error::{AppError, AppResult},
    http::extract::ApiJson,
    passwords,
    session::{Actor, SESSION_CSRF, SESSION_USER},
    state::AppState,
    store::audit,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/users/bulk", post(bulk))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BulkRequest {
    /// How many accounts: 1 to 50,000.
    count: u32,
    /// Emails are `<prefix><n>@<domain>`, n from 1.
    email_prefix: String,
    domain: String,
    password: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    id: UserId,
    email: String,
    paddle_number: i32,
    token: String,
}

async fn bulk(
    State(state): State<AppState>,
    user: Actor,
    ApiJson(req): ApiJson<BulkRequest>,
) -> AppResult<(StatusCode, Json<serde_json::Value>)> {
    user.require(&[Role::Admin])?;
    if !(1..=50_000).contains(&req.count) {
        return Err(AppError {
            field: Some("count"),
            ..AppError::validation("count must be 1 to 50000.")
        });
    }
    let prefix_ok = !req.email_prefix.is_empty()
        && req.email_prefix.len() <= 40
        && req
            .email_prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !prefix_ok {
        return Err(AppError {
            field: Some("emailPrefix"),
            ..AppError::validation("emailPrefix: 1 to 40 of a-z, 0-9, '-', '.'.")
        });
    }
    validate::email(&format!("{}1@{}", req.email_prefix, req.domain))?;
    validate::password(&req.password)?;
    let hash = passwords::hash(req.password)
        .await
        .map_err(|e| AppError::internal("hashing", e))?;
    let domain = req.domain.trim().to_lowercase();
    let mut tx = state.db.begin().await?;
    let rows: Vec<(i64, String, i32)> = sqlx::query_as(
        "INSERT INTO users (email, name, password_hash, roles, email_verified_at)
         SELECT $1 || n || '@' || $2, 'Load test bidder ' || n, $3, '{bidder}', now()
           FROM generate_series(1, $4) AS n
         ON CONFLICT (email) DO NOTHING
         RETURNING id, email, paddle_number",
    )
    .bind(&req.email_prefix)
    .bind(&domain)
    .bind(&hash)
    .bind(req.count as i32)
    .fetch_all(&mut *tx)
    .await?;
    if rows.len() != req.count as usize {
        return Err(AppError::conflict(
            "email_taken",
            "Some of those accounts exist already; use another emailPrefix.",
        ));
    }
    audit::record(
        &mut *tx,
        Some(user.id()),
        "user.bulk_created",
        "user",
        None,
        None,
        Some(json!({ "count": req.count, "emailPrefix": req.email_prefix, "domain": domain })),
    )
    .await?;
    tx.commit().await?;
    let expiry = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let mut created = Vec::with_capacity(rows.len());
    for (id, email, paddle) in rows {
        let mut record = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: expiry,
        };
        record.data.insert(SESSION_USER.into(), json!(id));
        record.data.insert(
            SESSION_CSRF.into(),
            json!(hex::encode(rand::random::<[u8; 16]>())),
        );
        state
            .sessions
            .create(&mut record)
            .await
            .map_err(AppError::from)?;
        created.push(Created {
            id: UserId(id),
            email,
            paddle_number: paddle,
            token: record.id.to_string(),
        });
    }
    Ok((StatusCode::CREATED, Json(json!({ "users": created }))))
}
