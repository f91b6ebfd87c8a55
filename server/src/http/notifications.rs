//! `/api/notifications`: one's own notifications (staff: anyone's, with `?userId=`), newest
//! first, with their delivery status. `services::notifications`.

use axum::{extract::State, routing::get, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    domain::UserId, error::AppResult, http::extract::ApiQuery, services::notifications::list,
    session::Actor, state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/notifications", get(mine))
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
    let notifications = list(&state, &user, q.user_id, q.limit).await?;
    Ok(Json(json!({ "notifications": notifications })))
}
