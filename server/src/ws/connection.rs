//! One WebSocket connection: `/ws`, authenticated by the session cookie or a bearer token,
//! Origin checked against `BASE_URL`.
//!
//! One task reads frames and writes the connection's outbox. A bid is handed to its shard
//! from this task without waiting (`Engine::submit`), with a responder that puts the
//! durable answer straight into the outbox: no task waits per bid, so a bid waiting for
//! its commit never stalls pings or price updates. The rare bid that must wait (its
//! idempotency key needs a Postgres lookup, its shard's queue is full, the account must be
//! re-read) goes to a second, per-connection task; while that task holds bids, later bids
//! follow them through it, so a bidder's bids reach the engine in the order they were sent.

use std::time::{Duration, Instant};

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
use std::sync::{
    atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering},
    Arc,
};

use futures_util::SinkExt;
use tokio::sync::mpsc;

use crate::{
    domain::UserId,
    engine::{BidInput, BidReply, PendingBid, Responder, Submitted},
    error::AppError,
    session::Actor,
    state::AppState,
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
const MAX_PENDING_BIDS: u32 = 64;
/// Bytes gathered before a write is forced; the flush after each drain writes the rest.
const WRITE_BATCH: usize = 16 * 1024;
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
    user: Option<Actor>,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&state, &headers) {
        return AppError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            "WebSocket connections must come from this site.",
        )
        .into_response();
    }
    // Small buffers: an idle connection should cost a few KB, not the 128 KiB defaults. The
    // write buffer collects the messages of one outbox drain into one write (it grows only
    // as far as a drain needs).
    ws.read_buffer_size(1024)
        .write_buffer_size(WRITE_BATCH)
        .max_write_buffer_size(crate::ws::hub::MAX_QUEUED_BYTES * 2)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| run(state, socket, user))
}

async fn run(state: AppState, mut socket: WebSocket, user: Option<Actor>) {
    let hub = state.hub.clone();
    let conn = hub.connect(user.as_ref().map(|u| u.id()));
    let mut topics: Vec<Topic> = Vec::new();
    let mut bidder = Bidder {
        who: user.map(|u| {
            Arc::new(Who {
                id: u.id(),
                paddle: AtomicI32::new(u.row.paddle_number),
                verified: AtomicBool::new(u.row.verified()),
            })
        }),
        worker: None,
    };
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
    if let Some(worker) = bidder.worker {
        drop(worker.jobs);
        let _ = worker.task.await;
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
    let hub = &state.hub;
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
                    if state.engine.live_state(item).await.is_none() {
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
        ClientMessage::Bid(frame) => bid(state, conn, bidder, frame),
    }
}

/// An edge refusal (unauthenticated, rate limited, not verified) as a bid's answer.
fn refusal(e: &AppError) -> BidReply {
    BidReply::error(e.status.as_u16(), &e.code, &e.message)
}

/// Takes one bid frame: answered at once when it cannot run, handed to its shard when it
/// can, given to the connection's bid task when it must wait.
fn bid(state: &AppState, conn: &Arc<Conn>, bidder: &mut Bidder, frame: BidFrame) {
    let received = Instant::now();
    let reference = frame.reference.as_deref().map(Box::from);
    if !conn.bid_started(MAX_PENDING_BIDS) {
        conn.push(protocol::bid_result(
            reference.as_deref(),
            &BidReply::too_many_bids(),
        ));
        state
            .metrics
            .bid_answer_seconds
            .observe(received.elapsed().as_secs_f64());
        return;
    }
    let responder = Responder::sink(conn.clone(), reference, received);
    let Some(who) = bidder.who.clone() else {
        return responder.send(refusal(&AppError::unauthenticated()));
    };
    // Later bids follow earlier ones that are still waiting in the bid task.
    let job = if bidder.worker_busy() || !who.verified.load(Ordering::Acquire) {
        Job::Check(frame, responder)
    } else {
        match checked_input(state, &who, frame) {
            Err(reply) => return responder.send(reply),
            Ok(input) => match state.engine.submit(input, responder) {
                Submitted::Done => return,
                Submitted::MustWait(pending) => Job::Place(pending),
            },
        }
    };
    bidder.hand_to_worker(state, who, job);
}

/// The bid, once the bidder may bid (within the write rate limit). Its idempotency key is
/// checked by the engine, where every bid path meets.
fn checked_input(state: &AppState, who: &Who, frame: BidFrame) -> Result<BidInput, BidReply> {
    if let Err(limited) = state.limits.check_write_account(who.id) {
        return Err(refusal(&AppError::from(limited)));
    }
    Ok(BidInput {
        item: frame.item_id,
        bidder: who.id,
        paddle: who.paddle.load(Ordering::Relaxed),
        amount: frame.amount,
        max_proxy: frame.max_proxy_amount,
        idempotency_key: frame.idempotency_key,
    })
}

fn send_snapshot(state: &AppState, conn: &Conn, topic: Topic) {
    let now = state.now();
    match topic {
        Topic::Item(item) => {
            if let Some(s) = state.engine.committed_state(item) {
                conn.push(protocol::item_snapshot(&s, now));
            }
        }
        Topic::Auction(auction) => {
            conn.push(protocol::auction_snapshot(
                auction,
                state.engine.auction_state(auction),
                &state.engine.auction_items(auction),
                now,
            ));
        }
    }
}

/// The signed-in bidder of a connection. `verified` flips when the bid task re-reads the
/// account and finds the email confirmed since the connection opened.
struct Who {
    id: UserId,
    paddle: AtomicI32,
    verified: AtomicBool,
}

/// A connection's bidder and its bid task, started on the first bid that must wait: most
/// connections never need one, and an idle connection should cost a few KB.
struct Bidder {
    who: Option<Arc<Who>>,
    worker: Option<Worker>,
}

struct Worker {
    jobs: mpsc::Sender<Job>,
    /// Jobs handed to the task and not yet passed on to the engine.
    busy: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// Work for the bid task.
enum Job {
    /// A frame to check in full (re-reading an unverified account) and place.
    Check(BidFrame, Responder),
    /// A bid the engine could not take without waiting.
    Place(Box<PendingBid>),
}

impl Bidder {
    /// Whether a live bid task still holds bids that later ones must follow. A task that
    /// ended holds none (see `drop_dead_worker`).
    fn worker_busy(&self) -> bool {
        self.worker
            .as_ref()
            .is_some_and(|w| !w.task.is_finished() && w.busy.load(Ordering::Acquire) > 0)
    }

    /// Forgets a bid task that ended, which only a panic does while the connection is open.
    /// Its jobs' responders were dropped with it and so answered `storage_unavailable`; its
    /// `busy` count is stale, and left in place it would send every later bid to a closed
    /// queue, to be answered "too many bids" until the bidder reconnects.
    fn drop_dead_worker(&mut self) {
        if self.worker.as_ref().is_some_and(|w| w.task.is_finished()) {
            self.worker = None;
        }
    }

    fn hand_to_worker(&mut self, state: &AppState, who: Arc<Who>, job: Job) {
        self.drop_dead_worker();
        let worker = self.worker.get_or_insert_with(|| {
            // As many jobs as bids may be in flight, so sending never finds it full.
            let (jobs, queue) = mpsc::channel::<Job>(MAX_PENDING_BIDS as usize);
            let busy = Arc::new(AtomicUsize::new(0));
            let task = tokio::spawn(bid_worker(state.clone(), who, queue, busy.clone()));
            Worker { jobs, busy, task }
        });
        worker.busy.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = worker.jobs.try_send(job) {
            // Cannot happen (see the capacity), but a bid must never vanish unanswered.
            worker.busy.fetch_sub(1, Ordering::AcqRel);
            let reply = BidReply::too_many_bids();
            match e.into_inner() {
                Job::Check(_, responder) => responder.send(reply),
                Job::Place(pending) => drop(pending),
            }
        }
    }
}

/// Runs the connection's bids that must wait, in order. Each is answered by its responder.
async fn bid_worker(
    state: AppState,
    who: Arc<Who>,
    mut queue: mpsc::Receiver<Job>,
    busy: Arc<AtomicUsize>,
) {
    while let Some(job) = queue.recv().await {
        match job {
            Job::Place(pending) => state.engine.finish_placing(pending).await,
            Job::Check(frame, responder) => {
                recheck_verified(&state, &who).await;
                if !who.verified.load(Ordering::Acquire) {
                    responder.send(refusal(&AppError::email_not_verified()));
                } else {
                    match checked_input(&state, &who, frame) {
                        Err(reply) => responder.send(reply),
                        Ok(input) => state.engine.place_bid_with(input, responder).await,
                    }
                }
            }
        }
        busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Re-reads an account that was unverified at connect time: the person may have just
/// clicked the link.
async fn recheck_verified(state: &AppState, who: &Who) {
    if who.verified.load(Ordering::Acquire) {
        return;
    }
    if let Ok(Some(row)) = users::by_id(&state.db, who.id).await {
        who.paddle.store(row.paddle_number, Ordering::Relaxed);
        who.verified.store(row.verified(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signed-out bidder whose bid task is `task`, holding one job.
    fn bidder_with_task(jobs: mpsc::Sender<Job>, task: tokio::task::JoinHandle<()>) -> Bidder {
        Bidder {
            who: None,
            worker: Some(Worker {
                jobs,
                busy: Arc::new(AtomicUsize::new(1)),
                task,
            }),
        }
    }

    #[tokio::test]
    async fn a_bid_task_that_panicked_is_replaced_not_left_busy() {
        let (jobs, _queue) = mpsc::channel::<Job>(1);
        let task = tokio::spawn(async { panic!("a bug in the bid task") });
        while !task.is_finished() {
            tokio::task::yield_now().await;
        }
        // It held a job when it died.
        let mut bidder = bidder_with_task(jobs, task);
        assert!(
            !bidder.worker_busy(),
            "later bids go straight to the engine again"
        );
        // What the next bid that must wait does first (hand_to_worker).
        bidder.drop_dead_worker();
        assert!(
            bidder.worker.is_none(),
            "the next bid that must wait starts a new task"
        );
    }

    #[tokio::test]
    async fn a_live_bid_task_with_jobs_is_busy() {
        let (jobs, mut queue) = mpsc::channel::<Job>(1);
        let task = tokio::spawn(async move { while queue.recv().await.is_some() {} });
        let bidder = bidder_with_task(jobs, task);
        assert!(
            bidder.worker_busy(),
            "later bids must follow the waiting one"
        );
        bidder
            .worker
            .as_ref()
            .unwrap()
            .busy
            .store(0, Ordering::Release);
        assert!(!bidder.worker_busy());
        assert!(bidder.worker.is_some(), "a live task is kept");
    }
}
