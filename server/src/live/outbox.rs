//! One connection's outbox: what is waiting to be written to its socket.
//!
//! A message is serialised once and shared (a reference-counted `Utf8Bytes`). Price updates
//! are conflated: a slow reader's outbox keeps only the latest price of each item, never a
//! backlog. Everything else queues, and an outbox whose queue passes [`MAX_QUEUED_BYTES`]
//! overflows: its connection is closed, because one stuck phone must not hold memory for
//! everyone.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Mutex,
    },
    time::Instant,
};

use axum::extract::ws::Utf8Bytes;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::Notify;

use crate::{
    domain::{AuctionId, ItemId, UserId},
    engine::{AnswerSink, Answering, BidReply},
    live::protocol,
};

/// What a conflated message is the latest of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latest {
    Price(ItemId),
    Dashboard(AuctionId),
    Display(AuctionId),
}

/// An outbox's queued bytes beyond which its connection is closed as too slow. 256 KiB is
/// hundreds of messages: a healthy reader never gets near it.
pub const MAX_QUEUED_BYTES: usize = 256 * 1024;

#[derive(Default)]
struct Queue {
    messages: VecDeque<Utf8Bytes>,
    /// The latest message per item price (or dashboard): a newer one replaces the older
    /// (conflation).
    prices: Vec<(Latest, Utf8Bytes)>,
    bytes: usize,
}

/// One live connection's outbox, shared by whoever writes to it (its session, the hub's
/// fan-out, the journal answering its bids) and read by its socket.
pub struct Outbox {
    pub id: u64,
    /// The signed-in user, for `outbid` notices.
    pub user: Option<UserId>,
    queue: Mutex<Queue>,
    /// Set once the queue passed its cap; the connection is being closed and nothing more
    /// is queued or worked on for it.
    overflowed: AtomicBool,
    notify: Notify,
    /// Bids sent on this connection and not yet answered.
    bids_in_flight: AtomicU32,
    /// From a bid frame read to its answer queued (`auuction_bid_answer_seconds`).
    answer_seconds: Histogram,
}

/// What the socket takes from its outbox in one go.
pub struct Drained {
    pub messages: Vec<Utf8Bytes>,
    pub overflowed: bool,
}

impl Outbox {
    pub fn new(id: u64, user: Option<UserId>, answer_seconds: Histogram) -> Outbox {
        Outbox {
            id,
            user,
            queue: Mutex::new(Queue::default()),
            overflowed: AtomicBool::new(false),
            notify: Notify::new(),
            bids_in_flight: AtomicU32::new(0),
            answer_seconds,
        }
    }

    /// Counts a bid as sent, unless `limit` are already waiting for their answers.
    pub fn bid_started(&self, limit: u32) -> bool {
        self.bids_in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// A bid's answer was queued (called by its responder).
    pub fn bid_answered(&self) {
        let _ = self
            .bids_in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Whether the outbox overflowed: its connection is being closed.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Queues a message. (A std mutex: it is held for a push, never across an await.)
    pub fn push(&self, message: Utf8Bytes) {
        if self.overflowed() {
            // It is being disconnected; queuing more would only hold memory.
            return;
        }
        {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.bytes += message.len();
            queue.messages.push_back(message);
            if queue.bytes > MAX_QUEUED_BYTES {
                self.overflowed.store(true, Ordering::Release);
            }
        }
        self.notify.notify_one();
    }

    /// Sets the item's latest price, replacing one not yet written.
    pub fn push_price(&self, item: ItemId, message: Utf8Bytes) {
        self.push_latest(Latest::Price(item), message)
    }

    /// Sets the latest of `what`, replacing one not yet written.
    pub fn push_latest(&self, what: Latest, message: Utf8Bytes) {
        if self.overflowed() {
            return;
        }
        {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            let len = message.len();
            if let Some(slot) = queue.prices.iter_mut().find(|(w, _)| *w == what) {
                let old = std::mem::replace(&mut slot.1, message);
                queue.bytes = queue.bytes + len - old.len();
            } else {
                queue.prices.push((what, message));
                queue.bytes += len;
            }
            if queue.bytes > MAX_QUEUED_BYTES {
                self.overflowed.store(true, Ordering::Release);
            }
        }
        self.notify.notify_one();
    }

    /// Waits until something is queued.
    pub async fn ready(&self) {
        self.notify.notified().await
    }

    /// Takes everything queued: ordinary messages first, then the latest prices.
    pub fn drain(&self) -> Drained {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut messages: Vec<Utf8Bytes> = queue.messages.drain(..).collect();
        messages.extend(queue.prices.drain(..).map(|(_, m)| m));
        queue.bytes = 0;
        Drained {
            messages,
            overflowed: self.overflowed(),
        }
    }

    /// Bytes waiting right now.
    pub fn queued_bytes(&self) -> usize {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

impl Outbox {
    /// Answers a bid or purchase that was never counted as in flight (refused before it
    /// started).
    pub fn answer_at_once(
        &self,
        what: Answering,
        reference: Option<&str>,
        received: Instant,
        reply: &BidReply,
    ) {
        self.push(match what {
            Answering::Bid => protocol::bid_result(reference, reply),
            Answering::Buy => protocol::buy_result(reference, reply),
        });
        self.answer_seconds
            .observe(received.elapsed().as_secs_f64());
    }
}

/// An answer goes straight into the outbox as a `bid_result` (or a `buy_result`).
impl AnswerSink for Outbox {
    fn answer(
        &self,
        what: Answering,
        reference: Option<&str>,
        received: Instant,
        reply: &BidReply,
    ) {
        self.answer_at_once(what, reference, received, reply);
        self.bid_answered();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox() -> Outbox {
        Outbox::new(1, None, Histogram::new([1.0]))
    }

    #[test]
    fn prices_conflate_per_item_and_other_messages_queue() {
        let out = outbox();
        out.push_price(ItemId(1), Utf8Bytes::from("p1-old"));
        out.push_price(ItemId(2), Utf8Bytes::from("p2"));
        out.push_price(ItemId(1), Utf8Bytes::from("p1-new"));
        out.push(Utf8Bytes::from("ack"));
        let drained = out.drain();
        let texts: Vec<&str> = drained.messages.iter().map(|m| m.as_str()).collect();
        assert_eq!(texts, ["ack", "p1-new", "p2"]);
        assert!(!drained.overflowed);
        assert!(out.drain().messages.is_empty());
    }

    #[test]
    fn a_reader_that_stays_behind_overflows_and_then_takes_nothing_more() {
        let out = outbox();
        let big = "x".repeat(64 * 1024);
        for _ in 0..5 {
            out.push(Utf8Bytes::from(big.clone()));
        }
        assert!(out.overflowed());
        assert!(out.drain().overflowed);
        out.push(Utf8Bytes::from("more"));
        out.push_price(ItemId(1), Utf8Bytes::from("price"));
        assert_eq!(
            out.queued_bytes(),
            0,
            "nothing is held for a closing connection"
        );
    }
}
