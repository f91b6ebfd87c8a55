//! `/api/notifications`: one's own notifications (staff: anyone's, with `?userId=`), newest
//! first, with their delivery status; and the admin's test message. `services::notifications`.

use axum::{
    extract::State,
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    domain::UserId,
    error::AppResult,
    http::extract::{ApiJson, ApiPath, ApiQuery},
    services::notifications::{list, mark_read, retry_now, send_test},
    session::Actor,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(mine))
        .route("/notifications/test", post(test))
        .route("/notifications/read", post(read))
        .route("/notifications/{id}/retry", post(retry))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListQuery {
    user_id: Option<UserId>,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

/// `GET /api/notifications[?userId=u_12][&limit=50]`.
async fn mine(
    State(state): State<AppState>,
    user: Actor,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<Value>> {
    let inbox = list(&state, &user, q.user_id, q.limit).await?;
    Ok(Json(json!(inbox)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TestRequest {
    user_id: Option<UserId>,
    /// `email` (the default) or `sms`.
    channel: Option<String>,
}

/// `POST /api/notifications/test {"userId": "u_12", "channel": "sms"}` (admin; no
/// `userId`: to oneself; no `channel`: email): queues a test message; 202 with its id,
/// whose status `GET /api/notifications` shows.
async fn test(
    State(state): State<AppState>,
    user: Actor,
    ApiJson(req): ApiJson<TestRequest>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let channel = req.channel.as_deref().unwrap_or("email");
    let id = send_test(&state, &user, req.user_id, channel).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "status": "scheduled" })),
    ))
}

/// `POST /api/notifications/{id}/retry` (manager, admin): a failed, skipped or waiting
/// notification goes out again now (audited); 409 when it is being sent or was sent.
async fn retry(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(id): ApiPath<i64>,
) -> AppResult<Json<Value>> {
    retry_now(&state, &user, id).await?;
    Ok(Json(json!({ "id": id, "status": "scheduled" })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReadRequest {
    ids: Option<Vec<i64>>,
}

/// `POST /api/notifications/read {"ids": [12, 13]}` (no `ids`: all of mine): marks my
/// notifications read; answers how many stay unread.
async fn read(
    State(state): State<AppState>,
    user: Actor,
    ApiJson(req): ApiJson<ReadRequest>,
) -> AppResult<Json<Value>> {
    let unread = mark_read(&state, &user, req.ids.as_deref()).await?;
    Ok(Json(json!({ "unread": unread })))
}
