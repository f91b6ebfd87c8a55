//! Flooders: guest sockets that hammer the server with subscribe frames while another
//! scenario runs (`storm --flooders N`), the way a broken or hostile client would: every
//! frame names hundreds of made-up items, the auction and every item of the run. They read
//! what comes back (so their outbox does not overflow and get them cut off at once) and
//! reconnect when the server closes them. The bidders' latency beside a quiet run's says
//! what the flood costs them.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::Ctx;
use crate::setup::World;

/// Made-up item ids per frame (far above any real id), and real items at most: together
/// with the auction they stay under the server's 16 KiB frame limit (a larger frame only
/// gets the socket closed, which measures reconnects, not the subscribe path).
const MADE_UP_PER_FRAME: u64 = 300;
const REAL_PER_FRAME: usize = 300;

/// What the flooders did.
#[derive(Default)]
pub struct FloodStats {
    pub frames_sent: AtomicU64,
    pub slow_downs: AtomicU64,
    pub reconnects: AtomicU64,
}

/// Starts `flooders` sockets sending `rate` subscribe frames a second in all until
/// `until`. Join the handles to wait for them.
pub fn start(
    ctx: &Ctx,
    world: &World,
    flooders: usize,
    rate: f64,
    until: Instant,
) -> (Arc<FloodStats>, Vec<tokio::task::JoinHandle<()>>) {
    let stats = Arc::new(FloodStats::default());
    // Made-up ids first (each one the server has not seen may cost it a storage read),
    // then the auction and the real items (snapshots).
    let mut topics: Vec<String> = (0..MADE_UP_PER_FRAME)
        .map(|n| format!("item:it_{}", 900_000_000 + n))
        .collect();
    topics.push(format!("auction:{}", world.auction.id));
    topics.extend(
        world
            .items
            .iter()
            .take(REAL_PER_FRAME)
            .map(|i| format!("item:{}", i.id)),
    );
    let frame = serde_json::json!({ "type": "subscribe", "topics": topics }).to_string();
    let every = Duration::from_secs_f64(flooders.max(1) as f64 / rate.max(0.001));
    let tasks = (0..flooders)
        .map(|_| {
            let (ctx_target, sources) = (ctx.target.clone(), ctx.sources.clone());
            let (frame, stats) = (frame.clone(), stats.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    let Ok(socket) = crate::ws::connect(&ctx_target, &sources, None).await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let (mut write, mut read) = socket.split();
                    let mut tick = tokio::time::interval(every);
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {
                                if Instant::now() >= until {
                                    return;
                                }
                                if write.send(Message::Text(frame.clone().into())).await.is_err() {
                                    break;
                                }
                                stats.frames_sent.fetch_add(1, Ordering::Relaxed);
                            }
                            message = read.next() => match message {
                                Some(Ok(Message::Text(text))) => {
                                    if text.contains("\"slow_down\"") {
                                        stats.slow_downs.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                                Some(Ok(_)) => {}
                                _ => break,
                            },
                        }
                    }
                    stats.reconnects.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    (stats, tasks)
}
