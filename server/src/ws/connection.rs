//! One WebSocket connection: `/ws`, authenticated by the session cookie or a bearer token,
//! Origin checked against `BASE_URL`.
//!
//! One task reads frames and writes the connection's outbox; bids go to a second, per-
//! connection task so a bid waiting for its commit never stalls pings or price updates,
//! while a bidder's own bids still reach the engine in the order they were sent.

use std::time::Duration;

use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        State,
    },
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tokio::sync::mpsc;

use crate::{
    app::AppState,
    domain::UserId,
    engine::{BidInput, BidReply},
    http::{error::ApiError, extract::CurrentUser},
    store::users,
    ws::{
        hub::{Conn, Topic},
        protocol::{self, BidFrame, ClientMessage},
    },
};

/// Frames larger than this are refused: every client message is a few hundred bytes.
const MAX_FRAME: usize = 16 * 1024;
/// Topics one connection may follow: a catalog page of items plus its auction.
const MAX_TOPICS: usize = 500;
/// Bids one connection may have waiting; beyond it the sender is told to slow down.
const MAX_PENDING_BIDS: usize = 64;
/// A write that takes longer than this means the reader is gone or stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Protocol pings keep proxies from closing idle connections and find dead peers.
const PING_EVERY: Duration = Duration::from_secs(30);

pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

/// Browsers send `Origin`; it must be our own, or any site could open a socket with the
/// visitor's cookie. Clients that send none (tools, the load tester) are not browsers.
fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let ours = state.config.base_url.origin().ascii_serialization();
            origin.trim_end_matches('/') == ours
        }
    }
}

async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: Option<CurrentUser>,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&state, &headers) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            "WebSocket connections must come from this site.",
        )
        .into_response();
    }
    // Small buffers: an idle connection should cost a few KB, not the 128 KiB defaults.
    ws.read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(crate::ws::hub::MAX_QUEUED_BYTES * 2)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| run(state, socket, user))
}

async fn run(state: AppState, mut socket: WebSocket, user: Option<CurrentUser>) {
    let hub = state.engine.hub.clone();
    let conn = hub.connect(user.as_ref().map(|u| u.id().0));
    let mut topics: Vec<Topic> = Vec::new();
    // The bid task starts with the connection's first bid: most connections only watch, and
    // an idle one should cost a few KB (a channel allocates its first block up front).
    let mut bidder = Bidder::Idle(user.map(Box::new));
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let close = loop {
        tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => {
                    handle(&state, &conn, &mut topics, &mut bidder, text.as_str()).await;
                }
                Some(Ok(Message::Binary(_))) => conn.push(protocol::error("bad_frame", "Send JSON text frames.")),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => {} // pings are answered by the library
            },
            _ = conn.ready() => {
                let drained = conn.drain();
                if drained.overflowed {
                    break Some((1013, "too slow: reconnect to resync"));
                }
                let mut failed = false;
                for message in drained.messages {
                    match tokio::time::timeout(WRITE_TIMEOUT, socket.send(Message::Text(message))).await {
                        Ok(Ok(())) => {}
                        _ => { failed = true; break; }
                    }
                }
                if failed {
                    break None;
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            _ = state.shutdown.cancelled() => break Some((1001, "server restarting")),
        }
    };
    if let Some((code, reason)) = close {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }
    hub.disconnect(&conn, &topics);
    if let Bidder::Running(bids, task) = bidder {
        drop(bids);
        let _ = task.await;
    }
}

async fn handle(
    state: &AppState,
    conn: &std::sync::Arc<Conn>,
    topics: &mut Vec<Topic>,
    bidder: &mut Bidder,
    text: &str,
) {
    let message = match ClientMessage::parse(text) {
        Ok(m) => m,
        Err(why) => return conn.push(protocol::error("bad_message", &why)),
    };
    let hub = &state.engine.hub;
    match message {
        ClientMessage::Ping { client_time } => conn.push(protocol::pong(client_time, state.now())),
        ClientMessage::Subscribe { topics: names } => {
            for name in names.iter().take(MAX_TOPICS) {
                let Some(topic) = Topic::parse(name) else {
                    conn.push(protocol::error(
                        "bad_topic",
                        &format!(
                            "Unknown topic {:?}; use item:<id> or auction:<id>.",
                            name.chars().take(60).collect::<String>()
                        ),
                    ));
                    continue;
                };
                if !topics.contains(&topic) && topics.len() >= MAX_TOPICS {
                    conn.push(protocol::error(
                        "too_many_topics",
                        "This connection follows too many topics.",
                    ));
                    break;
                }
                // An item topic is followed only when the item has live bidding (its book is
                // loaded): naming random ids must not grow the hub.
                if let Topic::Item(item) = topic {
                    if hub.item_state(item).is_none() {
                        state.engine.touch(item).await;
                    }
                    if hub.item_state(item).is_none() {
                        conn.push(protocol::error(
                            "not_live",
                            &format!("Item {item} has no live bidding."),
                        ));
                        continue;
                    }
                }
                if !topics.contains(&topic) {
                    topics.push(topic);
                    hub.subscribe(conn, topic);
                }
                // A snapshot on every subscribe, also a repeated one: that is how a client
                // resyncs after a reconnect. It is read after subscribing, so no committed
                // change can fall between the two.
                send_snapshot(state, conn, topic);
            }
        }
        ClientMessage::Unsubscribe { topics: names } => {
            for topic in names.iter().filter_map(|n| Topic::parse(n)) {
                hub.unsubscribe(conn, topic);
                topics.retain(|t| *t != topic);
            }
        }
        ClientMessage::Bid(frame) => {
            if let Bidder::Idle(user) = bidder {
                let (bids, queue) = mpsc::channel::<BidFrame>(MAX_PENDING_BIDS);
                let task = tokio::spawn(bid_worker(
                    state.clone(),
                    conn.clone(),
                    user.take().map(|u| *u),
                    queue,
                ));
                *bidder = Bidder::Running(bids, task);
            }
            let Bidder::Running(bids, _) = bidder else {
                return;
            };
            if let Err(mpsc::error::TrySendError::Full(frame)) = bids.try_send(frame) {
                let reply = BidReply::error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Too many bids at once; wait for the answers.",
                );
                conn.push(protocol::bid_result(
                    frame.reference.as_deref(),
                    reply.status.as_u16(),
                    &reply.body,
                ));
            }
        }
    }
}

fn send_snapshot(state: &AppState, conn: &Conn, topic: Topic) {
    let hub = &state.engine.hub;
    let now = state.now();
    match topic {
        Topic::Item(item) => {
            if let Some(s) = hub.item_state(item) {
                conn.push(s.snapshot_message(now));
            }
        }
        Topic::Auction(auction) => {
            let current = state
                .engine
                .gates
                .state(auction)
                .or_else(|| hub.auction_state(auction));
            conn.push(protocol::auction_snapshot(
                auction,
                current,
                &hub.auction_items(auction),
                now,
            ));
        }
    }
}

/// A connection's bid task: not yet started (holding the user for it), or running.
enum Bidder {
    Idle(Option<Box<CurrentUser>>),
    Running(mpsc::Sender<BidFrame>, tokio::task::JoinHandle<()>),
}

/// Runs one connection's bids in order and queues each answer as a `bid_result`.
async fn bid_worker(
    state: AppState,
    conn: std::sync::Arc<Conn>,
    mut user: Option<CurrentUser>,
    mut queue: mpsc::Receiver<BidFrame>,
) {
    while let Some(frame) = queue.recv().await {
        let reply = match check_bidder(&state, &mut user).await {
            Err(e) => BidReply::error(e.status, &e.code, &e.message),
            Ok(user) => match frame.idempotency_key.as_deref() {
                Some(k) if k.is_empty() || k.len() > 200 => BidReply::error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    "idempotencyKey must be 1 to 200 characters.",
                ),
                _ => {
                    state
                        .engine
                        .place_bid(BidInput {
                            item: frame.item_id,
                            bidder: user.0,
                            paddle: user.1,
                            amount: frame.amount,
                            max_proxy: frame.max_proxy_amount,
                            idempotency_key: frame.idempotency_key.clone(),
                        })
                        .await
                }
            },
        };
        conn.push(protocol::bid_result(
            frame.reference.as_deref(),
            reply.status.as_u16(),
            &reply.body,
        ));
    }
}

/// Who may bid: a signed-in, verified account within its write rate limit. The account is
/// re-read when it was unverified at connect time (the person may have just clicked the
/// link).
async fn check_bidder(
    state: &AppState,
    user: &mut Option<CurrentUser>,
) -> Result<(UserId, i32), ApiError> {
    let current = user.as_mut().ok_or_else(ApiError::unauthenticated)?;
    if !current.row.verified() {
        if let Ok(Some(row)) = users::by_id(&state.db, current.id()).await {
            current.row = row;
        }
    }
    current.require_verified()?;
    state.limits.check_write_account(current.id())?;
    Ok((current.id(), current.row.paddle_number))
}
