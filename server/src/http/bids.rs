//! `/api/items/{id}/bids`, `/api/users/me/bids` and `/api/items/{id}/buy`: bidding and
//! reoffer purchases over REST. The WebSocket takes the same bids and buys
//! (`live/session.rs`); both reach the engine and answer with the same bytes.

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderMap, HeaderValue, Response, StatusCode},
    routing::{get, post},
    Router,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{Cents, ItemId, Role},
    engine::{bidder_label, BidInput, BidReply},
    error::{AppError, AppResult, Outage},
    http::extract::{ApiJson, ApiPath},
    session::Actor,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/items/{id}/bids", get(list).post(place))
        .route("/items/{id}/buy", post(buy))
        .route("/users/me/bids", get(mine))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BidRequest {
    amount: Cents,
    #[serde(default)]
    max_proxy_amount: Option<Cents>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BuyRequest {
    #[serde(default = "one")]
    quantity: u32,
    #[serde(default)]
    idempotency_key: Option<String>,
}

fn one() -> u32 {
    1
}

/// The request's idempotency key: the body's or the `Idempotency-Key` header's (they must
/// agree when both are given). Its form is checked by the engine, where every path meets.
fn idempotency_key(headers: &HeaderMap, body: Option<String>) -> AppResult<Option<String>> {
    let header = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match (body, header) {
        (Some(body), Some(head)) if body != head => Err(AppError::validation(
            "The idempotencyKey in the body and the Idempotency-Key header differ.",
        )),
        (Some(k), _) | (None, Some(k)) => Ok(Some(k)),
        (None, None) => Ok(None),
    }
}

fn reply_response(reply: BidReply) -> Response<Body> {
    let mut response = Response::new(Body::from(reply.body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if reply.status == 503 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if reply.is_storage_unavailable() {
        response.extensions_mut().insert(Outage);
    }
    response
}

/// `POST /api/items/{id}/bids {"amount", "maxProxyAmount", "idempotencyKey"}` (or the key
/// in an `Idempotency-Key` header). 201 with the leading or outbid shape once the bid is
/// durable; 409 with the minimum when too low; 503 `storage_unavailable` if it could not be
/// recorded.
async fn place(
    State(state): State<AppState>,
    user: Actor,
    headers: HeaderMap,
    ApiPath(item): ApiPath<ItemId>,
    ApiJson(req): ApiJson<BidRequest>,
) -> AppResult<Response<Body>> {
    user.require_verified()?;
    let key = idempotency_key(&headers, req.idempotency_key)?;
    let reply = state
        .engine
        .place_bid(BidInput {
            item,
            bidder: user.id(),
            paddle: user.row.paddle_number,
            amount: req.amount,
            max_proxy: req.max_proxy_amount,
            idempotency_key: key,
        })
        .await;
    Ok(reply_response(reply))
}

/// `POST /api/items/{id}/buy {"quantity", "idempotencyKey"}` (the spec's reoffer buy):
/// 201 with the spec's `{itemId, quantityPurchased, priceEach, commitmentId,
/// quantityRemaining}` once durable; 409 `sold_out` (or `not_enough_left` with
/// `quantityRemaining`) when the units are gone; 409 `reoffer_not_open`/`reoffer_closed`
/// outside the phase; 503 `storage_unavailable` if it could not be recorded.
async fn buy(
    State(state): State<AppState>,
    user: Actor,
    headers: HeaderMap,
    ApiPath(item): ApiPath<ItemId>,
    ApiJson(req): ApiJson<BuyRequest>,
) -> AppResult<Response<Body>> {
    let key = idempotency_key(&headers, req.idempotency_key)?;
    let reply = crate::services::reoffer::buy(&state, &user, item, req.quantity, key).await?;
    Ok(reply_response(reply))
}

#[derive(Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
struct BidLine {
    seq: i64,
    #[serde(skip)]
    paddle_number: i32,
    #[serde(rename = "bidderId")]
    #[sqlx(skip)]
    bidder: String,
    #[serde(serialize_with = "as_cents")]
    amount: i64,
    created_at: DateTime<Utc>,
}

fn as_cents<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    Cents(*v).serialize(s)
}

/// `GET /api/items/{id}/bids` (the item's donor, managers, admins): every accepted bid in seq
/// order, bidders by paddle number. Nobody sees anyone's maximum.
async fn list(
    State(state): State<AppState>,
    user: Actor,
    ApiPath(item): ApiPath<ItemId>,
) -> AppResult<Response<Body>> {
    let donor: Option<i64> = sqlx::query_scalar("SELECT donor_id FROM items WHERE id = $1")
        .bind(item.0)
        .fetch_optional(&state.db)
        .await?;
    let donor = donor.ok_or_else(|| AppError::not_found("Item"))?;
    if donor != user.id().0 {
        user.require(&[Role::Manager])?;
    }
    let mut bids: Vec<BidLine> = sqlx::query_as(
        "SELECT b.seq, u.paddle_number, b.amount, b.created_at
           FROM bids b JOIN users u ON u.id = b.bidder_id WHERE b.item_id = $1 ORDER BY b.seq",
    )
    .bind(item.0)
    .fetch_all(&state.db)
    .await?;
    for b in &mut bids {
        b.bidder = bidder_label(b.paddle_number);
    }
    // Serialised straight to text: money must not pass through serde_json::Value.
    let body = serde_json::to_string(&json_list(item, &bids))
        .map_err(|e| AppError::internal("serialising bids", e))?;
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BidList<'a> {
    item_id: ItemId,
    bids: &'a [BidLine],
}

fn json_list(item: ItemId, bids: &[BidLine]) -> BidList<'_> {
    BidList {
        item_id: item,
        bids,
    }
}

#[derive(Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
struct MyBid {
    #[serde(rename = "itemId", serialize_with = "as_item")]
    item_id: i64,
    title: String,
    #[serde(rename = "myMaximum", serialize_with = "as_cents")]
    my_max: i64,
    #[serde(rename = "myLastBid", serialize_with = "as_cents")]
    my_last: i64,
    #[serde(serialize_with = "as_opt_cents")]
    current_bid: Option<i64>,
    leading: bool,
    closes_at: Option<DateTime<Utc>>,
}

fn as_item<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    ItemId(*v).serialize(s)
}

fn as_opt_cents<S: serde::Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    v.map(Cents).serialize(s)
}

/// `GET /api/users/me/bids`: per item I bid on, my maximum, my last bid, the current price,
/// whether I lead, and when it closes. From committed rows only.
async fn mine(State(state): State<AppState>, user: Actor) -> AppResult<Response<Body>> {
    let rows: Vec<MyBid> = sqlx::query_as(
        "SELECT i.id AS item_id, i.title,
                max(COALESCE(b.max_proxy_amount, b.amount)) AS my_max,
                (array_agg(b.amount ORDER BY b.seq DESC))[1] AS my_last,
                lb.current_price AS current_bid,
                COALESCE(lb.leader_id = $1, false) AS leading,
                COALESCE(lb.closes_at, a.bidding_close_at) AS closes_at
           FROM bids b JOIN items i ON i.id = b.item_id JOIN auctions a ON a.id = i.auction_id
           LEFT JOIN item_bidding lb ON lb.item_id = i.id
          WHERE b.bidder_id = $1
          GROUP BY i.id, a.bidding_close_at, lb.item_id
          ORDER BY COALESCE(lb.closes_at, a.bidding_close_at), i.id",
    )
    .bind(user.id().0)
    .fetch_all(&state.db)
    .await?;
    #[derive(Serialize)]
    struct Mine<'a> {
        bids: &'a [MyBid],
    }
    let body = serde_json::to_string(&Mine { bids: &rows })
        .map_err(|e| AppError::internal("serialising my bids", e))?;
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
