//! One shard: a task that owns its items' books and applies commands one at a time from a
//! bounded channel. Nothing else touches the books, so the hot path takes no lock.
//!
//! A bid is decided here (`domain::bidding`), applied to the book at once so the next
//! command sees it, and handed to the journal. The bidder's answer, the price broadcast and
//! the outbid notice all wait for the journal's commit. Refusals go through the journal
//! too, behind the bids before them: a refusal quoting a minimum must not reveal a price
//! that is not yet durable.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    clock::Clock,
    domain::{bidding::BidRequest, ItemId},
    engine::{
        gate::{Gates, Shut},
        journal::{BidRow, Change, Entry, JournalHandle, KeyRecord},
        messages::{accepted_reply, refusal_reply},
        micros,
        recovery::{self, LoadedBook, NotBiddable},
        BidInput, BidReply, Command, Responder,
    },
    ws::hub::Hub,
};

/// After a failed load, the database is not asked again for this long: bids are refused at
/// once instead of each waiting for a connection that will not come.
const DB_BACKOFF: Duration = Duration::from_millis(250);
/// The most books one load reads.
const LOAD_BATCH: usize = 1000;

enum Slot {
    Ready(Box<LoadedBook>),
    /// A write touching this item failed: reload it from Postgres before its next command.
    NeedsReload,
    /// Its book is being read from Postgres by a separate task; the item's commands wait
    /// here, in order, while the shard goes on serving its other items.
    Loading {
        token: u64,
        waiting: Vec<Command>,
    },
}

/// What a load task sends back.
/// The token tells a load's result from that of an older, superseded load of the same item.
type Loaded = (ItemId, u64, sqlx::Result<Result<LoadedBook, NotBiddable>>);

pub struct Shard {
    index: usize,
    clock: Arc<dyn Clock>,
    hub: Arc<Hub>,
    journal: JournalHandle,
    items: HashMap<ItemId, Slot>,
    /// The journal generation this shard's entries carry.
    generation: u64,
    /// Items with entries sent in the current generation: the ones to reload if it fails.
    dirty: HashSet<ItemId>,
    closes: BinaryHeap<Reverse<(DateTime<Utc>, ItemId)>>,
    db_down_until: Option<Instant>,
    /// Books to load: (item, token), to the shard's loader task.
    load_tx: mpsc::UnboundedSender<(ItemId, u64)>,
    next_token: u64,
    loaded_rx: Option<mpsc::UnboundedReceiver<Loaded>>,
}

impl Shard {
    pub fn new(
        index: usize,
        db: PgPool,
        clock: Arc<dyn Clock>,
        hub: Arc<Hub>,
        gates: Arc<Gates>,
        journal: JournalHandle,
        books: Vec<LoadedBook>,
    ) -> Shard {
        let (loaded_tx, loaded_rx) = mpsc::unbounded_channel();
        let (load_tx, load_rx) = mpsc::unbounded_channel();
        tokio::spawn(loader(db, gates, load_rx, loaded_tx));
        let mut shard = Shard {
            index,
            clock,
            hub,
            journal,
            items: HashMap::new(),
            generation: 0,
            dirty: HashSet::new(),
            closes: BinaryHeap::new(),
            db_down_until: None,
            load_tx,
            next_token: 0,
            loaded_rx: Some(loaded_rx),
        };
        for book in books {
            shard.install(book);
        }
        shard
    }

    /// Takes a freshly loaded (committed) book into service and tells the hub its state.
    fn install(&mut self, book: LoadedBook) {
        let state = book.state();
        self.closes.push(Reverse((state.closes_at, state.item)));
        match self.hub.item_state(state.item) {
            Some(published) if published == state => {}
            Some(_) => self.hub.publish_reloaded(state),
            None => self.hub.set_item_state(state),
        }
        self.items.insert(book.item, Slot::Ready(Box::new(book)));
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        let Some(mut loaded_rx) = self.loaded_rx.take() else {
            return;
        };
        tracing::debug!(
            shard = self.index,
            items = self.items.len(),
            "shard started"
        );
        loop {
            let next_close = self.closes.peek().map(|Reverse((at, _))| *at);
            let sleep =
                next_close.map(|at| (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some((item, token, result)) = loaded_rx.recv() => self.on_loaded(item, token, result).await,
                command = rx.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                _ = tokio::time::sleep(sleep.unwrap_or(Duration::from_secs(3600))), if sleep.is_some() => self.close_due(),
            }
        }
        tracing::debug!(shard = self.index, "shard stopped");
    }

    /// After a failed write, every item touched in that generation is reloaded before its
    /// next command (see journal.rs).
    fn check_generation(&mut self) {
        let current = self
            .journal
            .generation
            .load(std::sync::atomic::Ordering::Acquire);
        if current != self.generation {
            tracing::warn!(
                shard = self.index,
                items = self.dirty.len(),
                "journal write failed; reloading the items it touched"
            );
            // Only a ready book can hold entries of the failed generation; a book being
            // loaded has none, and must keep the commands waiting for it.
            for item in self.dirty.drain() {
                if let Some(slot @ Slot::Ready(_)) = self.items.get_mut(&item) {
                    *slot = Slot::NeedsReload;
                }
            }
            self.generation = current;
        }
    }

    async fn handle(&mut self, command: Command) {
        self.check_generation();
        if let Command::Reload { item } = command {
            // Let what is in flight commit first, or the reload would drop it from the book.
            self.barrier().await;
            self.check_generation();
            match self.items.remove(&item) {
                Some(Slot::Ready(_)) => {
                    self.items.insert(item, Slot::NeedsReload);
                    // Reload now, so subscribers see the new closing time without waiting
                    // for the next bid.
                    let (tx, _) = oneshot::channel();
                    self.route(Command::Touch { item, reply: tx }).await;
                }
                // The load in flight may have read the item before the change: load it
                // again, keeping the commands that wait. The older load's result no longer
                // matches the item's token and is dropped when it comes.
                Some(Slot::Loading { waiting, .. }) => self.start_load(item, waiting),
                // Not loaded yet: its next command loads the current state anyway.
                Some(Slot::NeedsReload) => {
                    self.items.insert(item, Slot::NeedsReload);
                }
                None => {}
            }
            return;
        }
        self.route(command).await;
    }

    /// Sends a command to its item's book, starting a load when the book is not ready.
    async fn route(&mut self, command: Command) {
        let item = match &command {
            Command::Bid { input, .. } => input.item,
            Command::Touch { item, .. } => *item,
            Command::Reload { item } => *item,
        };
        match self.items.get_mut(&item) {
            Some(Slot::Ready(_)) => self.apply(command).await,
            Some(Slot::Loading { waiting, .. }) => waiting.push(command),
            None | Some(Slot::NeedsReload) => {
                if self.db_down_until.is_some_and(|t| Instant::now() < t) {
                    return answer(command, BidReply::storage_unavailable());
                }
                self.start_load(item, vec![command]);
            }
        }
    }

    /// Asks the loader for the item's book under a new token; `waiting` runs once it is in.
    fn start_load(&mut self, item: ItemId, waiting: Vec<Command>) {
        self.next_token += 1;
        let token = self.next_token;
        if self.load_tx.send((item, token)).is_err() {
            // The loader is gone (shutting down): nothing will load it.
            for command in waiting {
                answer(command, BidReply::storage_unavailable());
            }
            return;
        }
        self.items.insert(item, Slot::Loading { token, waiting });
    }

    /// A book finished loading: install it, then run the commands that waited for it.
    async fn on_loaded(
        &mut self,
        item: ItemId,
        token: u64,
        result: sqlx::Result<Result<LoadedBook, NotBiddable>>,
    ) {
        // A result for anything but the item's current load is stale: drop it, never let it
        // replace a book that has moved on.
        if !matches!(self.items.get(&item), Some(Slot::Loading { token: t, .. }) if *t == token) {
            return;
        }
        let waiting = match self.items.remove(&item) {
            Some(Slot::Loading { waiting, .. }) => waiting,
            _ => Vec::new(),
        };
        self.check_generation();
        let refusal = match result {
            Ok(Ok(book)) => {
                self.db_down_until = None;
                self.install(book);
                for command in waiting {
                    self.apply(command).await;
                }
                return;
            }
            Ok(Err(NotBiddable::Inconsistent)) => BidReply::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "item_unavailable",
                "Bidding on this item is paused while the auction team checks it. Please ask at the desk.",
            ),
            Ok(Err(NotBiddable::Missing)) => {
                BidReply::error(StatusCode::NOT_FOUND, "not_found", "Item was not found.")
            }
            Ok(Err(NotBiddable::NotCompetitive)) => BidReply::error(
                StatusCode::CONFLICT,
                "not_biddable",
                "This item is not sold by bidding.",
            ),
            Ok(Err(NotBiddable::NotPublished)) => BidReply::error(
                StatusCode::CONFLICT,
                "not_biddable",
                "This item is not open for bidding.",
            ),
            Err(e) => {
                tracing::warn!(shard = self.index, item = item.0, error = %e, "loading a book failed");
                self.db_down_until = Some(Instant::now() + DB_BACKOFF);
                self.items.insert(item, Slot::NeedsReload);
                BidReply::storage_unavailable()
            }
        };
        for command in waiting {
            answer(command, refusal.clone());
        }
    }

    /// Runs a command on an item whose book is ready.
    async fn apply(&mut self, command: Command) {
        match command {
            Command::Bid {
                input,
                request_hash,
                reply,
            } => self.bid(input, request_hash, reply).await,
            Command::Touch { reply, .. } => {
                let _ = reply.send(());
            }
            Command::Reload { .. } => {}
        }
    }

    /// Waits until every entry sent so far is committed (or failed).
    async fn barrier(&mut self) {
        let (reply, rx) = Responder::caller();
        let entry = Entry {
            generation: self.generation,
            change: Change::Refused,
            key: None,
            response: BidReply::storage_unavailable(),
            reply,
        };
        if self.journal.tx.send(entry).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn bid(&mut self, input: BidInput, request_hash: Option<[u8; 32]>, reply: Responder) {
        let item = input.item;
        let now = micros(self.clock.now());
        let generation = self.generation;
        let Some(Slot::Ready(book)) = self.items.get_mut(&item) else {
            // `apply` is only called for ready items; anything else is a bug, answered safely.
            reply.send(BidReply::storage_unavailable());
            return;
        };
        let key = match (&input.idempotency_key, request_hash) {
            (Some(key), Some(hash)) => Some(KeyRecord {
                user: input.bidder,
                key: key.clone(),
                hash,
            }),
            _ => None,
        };
        let (change, response) = match book.gate.admits_bids() {
            Err(shut) => (Change::Refused, shut_reply(shut)),
            Ok(()) => {
                let request = BidRequest {
                    bidder: input.bidder.0,
                    amount: input.amount,
                    max_proxy: input.max_proxy,
                };
                match book.book.place(request, now) {
                    Err(refusal) => (Change::Refused, refusal_reply(&refusal)),
                    Ok(accepted) => {
                        book.paddles.insert(input.bidder.0, input.paddle);
                        book.leader_paddle = book.paddles.get(&accepted.leader).copied();
                        let state = book.state();
                        let leader_paddle = book.leader_paddle.unwrap_or(input.paddle);
                        let response =
                            accepted_reply(item, &accepted, state.bid_count, leader_paddle);
                        if accepted.extended {
                            self.closes.push(Reverse((accepted.closes_at, item)));
                        }
                        self.dirty.insert(item);
                        let bid = BidRow {
                            item,
                            bidder: input.bidder,
                            amount: input.amount,
                            max_proxy: input.max_proxy,
                            seq: accepted.seq,
                            at: now,
                        };
                        (
                            Change::Accepted {
                                bid,
                                state,
                                leader: accepted.leader,
                                outbid: accepted.previous_leader,
                                extended: accepted.extended,
                            },
                            response,
                        )
                    }
                }
            }
        };
        let entry = Entry {
            generation,
            change,
            key,
            response,
            reply,
        };
        if let Err(mpsc::error::SendError(entry)) = self.journal.tx.send(entry).await {
            entry.reply.send(BidReply::storage_unavailable());
        }
    }

    /// Announces items whose close has come. An item extended since the timer was set has a
    /// later entry in the heap; its old one is skipped.
    fn close_due(&mut self) {
        let now = self.clock.now();
        while let Some(Reverse((at, item))) = self.closes.peek().copied() {
            if at > now {
                break;
            }
            self.closes.pop();
            if let Some(Slot::Ready(book)) = self.items.get(&item) {
                if book.book.closes_at() == at {
                    self.hub.publish_closed(item, at);
                }
            }
        }
    }
}

/// Loads one shard's books beside it: every request waiting is loaded with one set of
/// queries (recovery::load_items), so a burst of loads (the first bids on new items, a
/// calendar change, the reload after a failed write) costs a few round trips, not a few
/// per item queued on the pool behind the storm.
async fn loader(
    db: PgPool,
    gates: Arc<Gates>,
    mut requests: mpsc::UnboundedReceiver<(ItemId, u64)>,
    loaded: mpsc::UnboundedSender<Loaded>,
) {
    let mut batch: Vec<(ItemId, u64)> = Vec::new();
    while let Some(first) = requests.recv().await {
        batch.push(first);
        while batch.len() < LOAD_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let items: Vec<ItemId> = batch.iter().map(|(item, _)| *item).collect();
        // In a task of its own, so even a panic while building a book answers the batch
        // (as a failed load) instead of leaving its items' commands waiting for ever.
        let load = {
            let (db, gates) = (db.clone(), gates.clone());
            tokio::spawn(async move { recovery::load_items(&db, &gates, &items).await })
        };
        let result = match load.await {
            Ok(result) => result,
            Err(e) => Err(sqlx::Error::Protocol(format!("loading books failed: {e}"))),
        };
        match result {
            Ok(books) => {
                // An item asked for twice: only its latest load counts (the shard drops
                // results of superseded tokens anyway).
                let tokens: HashMap<ItemId, u64> = batch.drain(..).collect();
                for (item, book) in books {
                    if let Some(&token) = tokens.get(&item) {
                        let _ = loaded.send((item, token, Ok(book)));
                    }
                }
            }
            Err(e) => {
                let why = e.to_string();
                for (item, token) in batch.drain(..) {
                    let _ = loaded.send((item, token, Err(sqlx::Error::Protocol(why.clone()))));
                }
            }
        }
    }
}

/// Answers a command that cannot run (its item could not be loaded).
fn answer(command: Command, reply: BidReply) {
    match command {
        Command::Bid { reply: tx, .. } => tx.send(reply),
        Command::Touch { reply: tx, .. } => {
            let _ = tx.send(());
        }
        Command::Reload { .. } => {}
    }
}

fn shut_reply(shut: Shut) -> BidReply {
    match shut {
        Shut::NotYetOpen => BidReply::error(
            StatusCode::CONFLICT,
            "bidding_not_open",
            "Bidding has not opened yet.",
        ),
        Shut::Over => BidReply::error(
            StatusCode::CONFLICT,
            "bidding_closed",
            "Bidding has closed.",
        ),
        Shut::PausedByManager => BidReply::error(
            StatusCode::CONFLICT,
            "bidding_paused",
            "Bidding is paused by the auction managers. Please wait a moment.",
        ),
    }
}
