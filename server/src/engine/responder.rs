//! The one thing that answers a bid.

use std::{sync::Arc, time::Instant};

use tokio::sync::oneshot;

use crate::{
    domain::UserId,
    engine::{
        answer::BidReply,
        idempotency::{Idempotency, Scope},
        ports::{AnswerSink, Answering},
    },
};

/// Where a bid's answer goes once it is known (for an accepted bid: once it is durable).
pub enum ReplyTo {
    /// A caller waiting for it (a REST handler, the no-JavaScript form, the demo bot).
    Caller(oneshot::Sender<BidReply>),
    /// Straight into a connection's sink (a WebSocket's outbox, as a `bid_result` echoing
    /// the client's `ref`). No task waits for the answer: the journal delivers it, one
    /// wake-up less per bid.
    Sink {
        sink: Arc<dyn AnswerSink>,
        what: Answering,
        reference: Option<Box<str>>,
        /// When the frame was read: the sink counts the server's share of the wait.
        received: Instant,
    },
}

/// Answers a bid: delivers the answer where it is wanted and, for a bid with an idempotency
/// key, records it under the key first (so a retry that arrives the moment the bidder hears
/// the answer finds it). Travels with the bid through shard and journal; if it is dropped
/// unanswered (shutdown, a task gone), it answers `storage_unavailable`, which also releases
/// the key, so no key can be left claimed for ever and no caller waits for ever.
pub struct Responder {
    to: Option<ReplyTo>,
    key: Option<ClaimedKey>,
}

/// An idempotency key this bid claimed, to be finished with the bid's answer.
pub(crate) struct ClaimedKey {
    pub registry: Arc<Idempotency>,
    pub user: UserId,
    pub scope: Scope,
    pub key: String,
}

impl Responder {
    pub fn new(to: ReplyTo) -> Responder {
        Responder {
            to: Some(to),
            key: None,
        }
    }

    /// A responder that tells nobody: for the shard's own entries (a close), which only
    /// need to be written.
    pub fn nobody() -> Responder {
        Responder {
            to: None,
            key: None,
        }
    }

    /// A responder for a caller that awaits the answer.
    pub fn caller() -> (Responder, oneshot::Receiver<BidReply>) {
        let (tx, rx) = oneshot::channel();
        (Responder::new(ReplyTo::Caller(tx)), rx)
    }

    /// A responder that answers into `sink`.
    pub fn sink(
        sink: Arc<dyn AnswerSink>,
        what: Answering,
        reference: Option<Box<str>>,
        received: Instant,
    ) -> Responder {
        Responder::new(ReplyTo::Sink {
            sink,
            what,
            reference,
            received,
        })
    }

    pub(crate) fn holding(mut self, key: ClaimedKey) -> Responder {
        self.key = Some(key);
        self
    }

    pub fn send(mut self, reply: BidReply) {
        self.deliver(reply);
    }

    fn deliver(&mut self, reply: BidReply) {
        if let Some(claimed) = self.key.take() {
            claimed
                .registry
                .finish(claimed.user, claimed.scope, &claimed.key, &reply);
        }
        match self.to.take() {
            Some(ReplyTo::Caller(tx)) => {
                let _ = tx.send(reply);
            }
            Some(ReplyTo::Sink {
                sink,
                what,
                reference,
                received,
            }) => sink.answer(what, reference.as_deref(), received, &reply),
            None => {}
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.to.is_some() || self.key.is_some() {
            self.deliver(BidReply::storage_unavailable());
        }
    }
}
