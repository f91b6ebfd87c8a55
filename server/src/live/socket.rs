//! One WebSocket: `/ws`, authenticated by the session cookie or a bearer token, Origin
//! checked against `BASE_URL`, at most `WS_MAX_SOCKETS_PER_ADDRESS` per client address.
//!
//! One task per connection reads frames (handed to its [`Session`]) and writes the
//! session's outbox; nothing else happens here.

use std::{
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, AtomicI32},
        Arc,
    },
    time::Duration,
};

use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        FromRequestParts, OptionalFromRequestParts, Request, State,
    },
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use dashmap::DashMap;
use futures_util::{future::BoxFuture, SinkExt};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    domain::{Role, UserId},
    error::AppError,
    limits::ClientIp,
    live::{
        dashboard,
        hub::Hub,
        outbox::MAX_QUEUED_BYTES,
        session::{Accounts, Live, Session, Who},
    },
    session::Actor,
    state::AppState,
    store::users,
};

/// Frames larger than this are refused: every client message is a few hundred bytes.
const MAX_FRAME: usize = 16 * 1024;
/// Bytes gathered before a write is forced; the flush after each drain writes the rest.
const WRITE_BATCH: usize = 16 * 1024;
/// A write that takes longer than this means the reader is gone or stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Protocol pings keep proxies from closing idle connections and find dead peers.
const PING_EVERY: Duration = Duration::from_secs(30);

/// The live edge's state: the app's, plus the hub and the sockets held per address.
#[derive(Clone)]
struct Edge {
    app: AppState,
    live: Live,
    sockets: Arc<DashMap<IpAddr, usize>>,
}

/// `/ws`, with its own state: the hub is the live edge's, not the app's.
pub fn router(app: AppState, hub: Arc<Hub>) -> Router<AppState> {
    let live = Live {
        engine: app.engine.clone(),
        hub,
        clock: app.clock.clone(),
        limits: app.limits.clone(),
        accounts: Arc::new(PgAccounts(app.db.clone())),
    };
    tokio::spawn(dashboard::run(
        live.engine.clone(),
        live.hub.clone(),
        live.clock.clone(),
        app.shutdown.clone(),
    ));
    let edge = Edge {
        app,
        live,
        sockets: Arc::new(DashMap::new()),
    };
    Router::new().route("/ws", get(upgrade)).with_state(edge)
}

/// Accounts re-read from Postgres.
struct PgAccounts(PgPool);

impl Accounts for PgAccounts {
    fn status(&self, user: UserId) -> BoxFuture<'_, Option<(i32, bool)>> {
        Box::pin(async move {
            let row = users::by_id(&self.0, user).await.ok().flatten()?;
            Some((row.paddle_number, row.verified()))
        })
    }
}

/// Browsers send `Origin`; it must be our own, or any site could open a socket with the
/// visitor's cookie. Clients that send none (tools, the load tester) are not browsers.
fn origin_allowed(app: &AppState, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let ours = app.config.base_url.origin().ascii_serialization();
            origin.trim_end_matches('/') == ours
        }
    }
}

/// A socket counted against its address; uncounted when dropped (the connection ended).
struct Slot {
    sockets: Arc<DashMap<IpAddr, usize>>,
    ip: IpAddr,
}

impl Slot {
    fn take(sockets: &Arc<DashMap<IpAddr, usize>>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut held = sockets.entry(ip).or_insert(0);
        if *held >= max {
            return None;
        }
        *held += 1;
        Some(Slot {
            sockets: sockets.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Forget the address once it holds none, so the map holds only addresses with sockets.
        if let dashmap::mapref::entry::Entry::Occupied(mut held) = self.sockets.entry(self.ip) {
            *held.get_mut() -= 1;
            if *held.get() == 0 {
                held.remove();
            }
        }
    }
}

async fn upgrade(State(edge): State<Edge>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    if !origin_allowed(&edge.app, &parts.headers) {
        return AppError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            "WebSocket connections must come from this site.",
        )
        .into_response();
    }
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &edge).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let user = match <Actor as OptionalFromRequestParts<AppState>>::from_request_parts(
        &mut parts, &edge.app,
    )
    .await
    {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    let Ok(ClientIp(ip)) = ClientIp::from_request_parts(&mut parts, &edge).await;
    let max = edge.app.config.ws_max_sockets_per_address;
    let Some(slot) = Slot::take(&edge.sockets, ip, max) else {
        edge.live.hub.metrics().sockets_refused.inc();
        tracing::info!(%ip, max, "too many sockets from one address");
        return AppError {
            retry_after: Some(10),
            ..AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                "Too many live connections from your network. Close a few tabs, or wait a moment.",
            )
        }
        .into_response();
    };
    let span = tracing::debug_span!("ws", %ip, user = user.as_ref().map(|u| u.id().0));
    let who = user.map(|u| Who {
        id: u.id(),
        paddle: AtomicI32::new(u.row.paddle_number),
        verified: AtomicBool::new(u.row.verified()),
        staff: u.roles.has_any(&[Role::Manager]),
    });
    // Small buffers: an idle connection should cost a few KB, not the 128 KiB defaults. The
    // write buffer collects the messages of one outbox drain into one write (it grows only
    // as far as a drain needs).
    ws.read_buffer_size(1024)
        .write_buffer_size(WRITE_BATCH)
        .max_write_buffer_size(MAX_QUEUED_BYTES * 2)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| {
            let (live, shutdown) = (edge.live, edge.app.shutdown);
            run(live, shutdown, socket, who, slot).instrument(span)
        })
}

/// One connection, until it closes. It holds only what it needs (an idle connection should
/// cost a few KB): the session's handles and the shutdown token.
async fn run(
    live: Live,
    shutdown: CancellationToken,
    mut socket: WebSocket,
    who: Option<Who>,
    slot: Slot,
) {
    let mut session = Session::new(live, who);
    let outbox = session.outbox().clone();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let close = loop {
        tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => session.text(text.as_str()).await,
                Some(Ok(Message::Binary(_))) => session.binary(),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => {} // pings are answered by the library
            },
            _ = outbox.ready() => {
                let drained = outbox.drain();
                if drained.overflowed {
                    break Some((1013, "too slow: reconnect to resync"));
                }
                // Every message queued goes out in one write (feed, then one flush).
                let write = async {
                    for message in drained.messages {
                        socket.feed(Message::Text(message)).await?;
                    }
                    socket.flush().await
                };
                match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                    Ok(Ok(())) => {}
                    _ => break None,
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            _ = shutdown.cancelled() => break Some((1001, "server restarting")),
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
    session.close().await;
    drop(slot);
}
