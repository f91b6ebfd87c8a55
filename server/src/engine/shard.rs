//! One shard: a task that owns its items' books and applies commands one at a time. Nothing
//! else touches the books, so the hot path takes no lock.
//!
//! A bid is decided here (`domain::bidding`), applied to the book at once so the next
//! command sees it, and handed to the journal. The bidder's answer, the price broadcast and
//! the outbid notice all wait for the journal's commit. Refusals go through the journal
//! too, behind the bids before them: a refusal quoting a minimum must not reveal a price
//! that is not yet durable.
//!
//! Books are loaded beside the shard (a loader task per shard), so a load never stalls the
//! other items' bids. Commands for an item being loaded wait in its slot, in order.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    clock::Clock,
    domain::{
        bidding::{awards, BidRequest, Refusal},
        AuctionId, Cents, ItemId, UserId,
    },
    engine::{
        answer::{
            accepted_reply, buy_shut_reply, not_live_reply, refusal_reply, shut_reply, BidReply,
        },
        command::{BidInput, BuyInput, Command},
        gate::Gates,
        idempotency::Scope,
        journal::{BidRow, Change, JournalHandle, KeyRecord, Queued, Record},
        micros,
        ports::{BookSource, Publisher, StoreError},
        recovery::{self, LoadedBook},
        responder::Responder,
        state::{NotLive, ReadModel},
    },
};

/// After a failed load, storage is not asked again for this long: bids are refused at once
/// instead of each waiting for a connection that will not come.
const DB_BACKOFF: Duration = Duration::from_millis(250);
/// The most books one load reads.
const LOAD_BATCH: usize = 1000;
/// How long a shard remembers that an item is not live (missing, not published, not sold by
/// bidding): asking again within this costs no load. Short, because publishing an item
/// makes it live (the catalog also tells the engine at once, `Engine::item_changed`).
const NOT_LIVE_FOR: Duration = Duration::from_secs(10);
/// The most not-live items one shard remembers. Ids can be made up by anyone, so the memory
/// is bounded; beyond it the oldest are forgotten, which only costs a load each.
const NOT_LIVE_MAX: usize = 10_000;
/// The longest the close timer sleeps before looking at the clock again. Closes are decided
/// by the engine's clock, which need not be the runtime's: a wall clock stepped by NTP, or
/// a test's clock moved forward, is noticed within this (one wake-up a second per shard).
const CLOSE_CHECK_EVERY: Duration = Duration::from_secs(1);
/// Bid commands taken before a waiting touch is: touches (first looks at an item) never
/// starve under a storm, and never hold a bid up by more than one lookup.
const BIDS_PER_TOUCH: u32 = 16;

enum Slot {
    Ready(Box<LoadedBook>),
    /// Its book must be read from storage before its next command (after a failed write,
    /// or a load that failed).
    NeedsReload,
    /// Its book is being read from storage by the loader; the item's commands wait here, in
    /// order, while the shard goes on serving its other items.
    Loading {
        token: u64,
        waiting: Vec<Command>,
    },
    /// Not live (remembered until `until`).
    NotLive {
        why: NotLive,
        until: Instant,
    },
}

/// What the loader sends back. The token tells a load's result from that of an older,
/// superseded load of the same item.
type Loaded = (ItemId, u64, Result<Result<LoadedBook, NotLive>, StoreError>);

/// A shard's queues: bids (and reloads) in one, first looks at an item in another, so that
/// a flood of looks at made-up items never waits in front of a bid.
pub struct Inbox {
    pub commands: mpsc::Receiver<Command>,
    pub touches: mpsc::Receiver<Command>,
}

pub struct Shard {
    index: usize,
    clock: Arc<dyn Clock>,
    read_model: Arc<ReadModel>,
    publisher: Arc<dyn Publisher>,
    journal: JournalHandle,
    items: HashMap<ItemId, Slot>,
    not_live: usize,
    closes: BinaryHeap<Reverse<(DateTime<Utc>, ItemId)>>,
    db_down_until: Option<Instant>,
    /// Books to load: (item, token), to the shard's loader task.
    load_tx: mpsc::UnboundedSender<(ItemId, u64)>,
    next_token: u64,
    loaded_rx: Option<mpsc::UnboundedReceiver<Loaded>>,
}

/// What a shard is made of.
pub struct ShardParts<B> {
    pub index: usize,
    pub clock: Arc<dyn Clock>,
    pub read_model: Arc<ReadModel>,
    pub publisher: Arc<dyn Publisher>,
    pub books: Arc<B>,
    pub gates: Arc<Gates>,
    pub journal: JournalHandle,
}

impl Shard {
    pub fn new<B: BookSource>(parts: ShardParts<B>, loaded: Vec<LoadedBook>) -> Shard {
        let (loaded_tx, loaded_rx) = mpsc::unbounded_channel();
        let (load_tx, load_rx) = mpsc::unbounded_channel();
        tokio::spawn(loader(parts.books, parts.gates, load_rx, loaded_tx).in_current_span());
        let mut shard = Shard {
            index: parts.index,
            clock: parts.clock,
            read_model: parts.read_model,
            publisher: parts.publisher,
            journal: parts.journal,
            items: HashMap::new(),
            not_live: 0,
            closes: BinaryHeap::new(),
            db_down_until: None,
            load_tx,
            next_token: 0,
            loaded_rx: Some(loaded_rx),
        };
        for book in loaded {
            shard.install(book);
        }
        shard
    }

    /// Takes a freshly loaded (committed) book into service and records its state.
    fn install(&mut self, book: LoadedBook) {
        let state = book.state();
        if book.bidding.is_some() && !book.closed {
            self.closes.push(Reverse((state.closes_at, state.item)));
        }
        self.read_model.loaded(state, self.publisher.as_ref());
        self.insert(book.item, Slot::Ready(Box::new(book)));
    }

    /// Puts a slot in place, keeping the count of not-live slots.
    fn insert(&mut self, item: ItemId, slot: Slot) {
        if matches!(slot, Slot::NotLive { .. }) {
            self.not_live += 1;
        }
        if let Some(Slot::NotLive { .. }) = self.items.insert(item, slot) {
            self.not_live -= 1;
        }
    }

    fn take(&mut self, item: ItemId) -> Option<Slot> {
        let slot = self.items.remove(&item);
        if let Some(Slot::NotLive { .. }) = slot {
            self.not_live -= 1;
        }
        slot
    }

    pub async fn run(mut self, mut inbox: Inbox, shutdown: CancellationToken) {
        let Some(mut loaded_rx) = self.loaded_rx.take() else {
            return;
        };
        tracing::debug!(
            shard = self.index,
            items = self.items.len(),
            "shard started"
        );
        let mut bids_since_touch = 0u32;
        loop {
            let next_close = self.closes.peek().map(|Reverse((at, _))| *at);
            let sleep = next_close.map(|at| {
                (at - self.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(CLOSE_CHECK_EVERY)
            });
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(item) = self.journal.broken.recv() => self.on_broken(item).await,
                Some((item, token, result)) = loaded_rx.recv() => self.on_loaded(item, token, result).await,
                command = inbox.commands.recv() => match command {
                    Some(command) => {
                        self.handle(command).await;
                        bids_since_touch += 1;
                        if bids_since_touch >= BIDS_PER_TOUCH {
                            bids_since_touch = 0;
                            if let Ok(touch) = inbox.touches.try_recv() {
                                self.handle(touch).await;
                            }
                        }
                    }
                    None => break,
                },
                Some(touch) = inbox.touches.recv() => {
                    bids_since_touch = 0;
                    self.handle(touch).await;
                }
                _ = tokio::time::sleep(sleep.unwrap_or(Duration::from_secs(3600))), if sleep.is_some() => self.close_due().await,
            }
        }
        tracing::debug!(shard = self.index, "shard stopped");
    }

    /// The journal could not write an entry of `item`: the book holds what storage does
    /// not. Drop it, fence the journal, and read the item again.
    async fn on_broken(&mut self, item: ItemId) {
        tracing::warn!(
            shard = self.index,
            item = item.0,
            "journal write failed; reloading the item"
        );
        let waiting = match self.take(item) {
            // A load in flight started after the failure (a reload waits for the journal
            // first), so it reads what storage has: keep it.
            Some(loading @ Slot::Loading { .. }) => {
                self.insert(item, loading);
                None
            }
            Some(Slot::Ready(_)) | Some(Slot::NeedsReload) => Some(Vec::new()),
            Some(slot @ Slot::NotLive { .. }) => {
                self.insert(item, slot);
                None
            }
            None => None,
        };
        if self.journal.tx.send(Queued::Fence(item)).await.is_err() {
            return;
        }
        if let Some(waiting) = waiting {
            if self.db_is_down() {
                self.insert(item, Slot::NeedsReload);
            } else {
                self.start_load(item, waiting);
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        if let Command::AuctionChanged { auction } = command {
            return self.auction_changed(auction).await;
        }
        if let Command::Reload { item } = command {
            // Let what is in flight commit first, or the reload would drop it from the book.
            self.barrier().await;
            match self.take(item) {
                // Reload now, so subscribers see the new closing time without waiting for
                // the next bid.
                Some(Slot::Ready(_)) | Some(Slot::NeedsReload) => self.start_load(item, Vec::new()),
                // The load in flight may have read the item before the change: load it
                // again, keeping the commands that wait. The older load's result no longer
                // matches the item's token and is dropped when it comes.
                Some(Slot::Loading { waiting, .. }) => self.start_load(item, waiting),
                // It may be live now (published): load it, so that its first look finds it
                // in the read model.
                Some(Slot::NotLive { .. }) | None => {
                    if !self.db_is_down() {
                        self.start_load(item, Vec::new());
                    }
                }
            }
            return;
        }
        self.route(command).await;
    }

    /// The auction's calendar changed: every book of it is read again. Loads in flight may
    /// have read the old calendar, and their auction is not known before they finish: they
    /// all start again (a calendar change is rare, loads are batched).
    async fn auction_changed(&mut self, auction: AuctionId) {
        // Let what is in flight commit first, or the reload would drop it from the books.
        self.barrier().await;
        let affected: Vec<ItemId> = self
            .items
            .iter()
            .filter(|(_, slot)| match slot {
                Slot::Ready(book) => book.auction == auction,
                Slot::Loading { .. } => true,
                Slot::NeedsReload | Slot::NotLive { .. } => false,
            })
            .map(|(item, _)| *item)
            .collect();
        for item in affected {
            let waiting = match self.take(item) {
                Some(Slot::Loading { waiting, .. }) => waiting,
                _ => Vec::new(),
            };
            self.start_load(item, waiting);
        }
    }

    fn db_is_down(&self) -> bool {
        self.db_down_until.is_some_and(|t| Instant::now() < t)
    }

    /// Sends a command to its item's book, starting a load when the book is not ready.
    async fn route(&mut self, command: Command) {
        let Some(item) = command.item() else { return };
        match self.items.get_mut(&item) {
            Some(Slot::Ready(_)) => self.apply(command).await,
            Some(Slot::Loading { waiting, .. }) => waiting.push(command),
            Some(Slot::NotLive { why, until }) if Instant::now() < *until => {
                let why = *why;
                command.refuse(not_live_reply(why));
            }
            _ => {
                if self.db_is_down() {
                    return command.refuse(BidReply::storage_unavailable());
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
                command.refuse(BidReply::storage_unavailable());
            }
            return;
        }
        self.insert(item, Slot::Loading { token, waiting });
    }

    /// A book finished loading: install it, then run the commands that waited for it.
    async fn on_loaded(
        &mut self,
        item: ItemId,
        token: u64,
        result: Result<Result<LoadedBook, NotLive>, StoreError>,
    ) {
        // A result for anything but the item's current load is stale: drop it, never let it
        // replace a book that has moved on.
        if !matches!(self.items.get(&item), Some(Slot::Loading { token: t, .. }) if *t == token) {
            return;
        }
        let waiting = match self.take(item) {
            Some(Slot::Loading { waiting, .. }) => waiting,
            _ => Vec::new(),
        };
        let refusal = match result {
            Ok(Ok(book)) => {
                self.db_down_until = None;
                self.install(book);
                for command in waiting {
                    self.apply(command).await;
                }
                return;
            }
            Ok(Err(why)) => {
                self.db_down_until = None;
                self.remember_not_live(item, why);
                not_live_reply(why)
            }
            Err(e) => {
                tracing::warn!(shard = self.index, item = item.0, error = %e, "loading a book failed");
                self.db_down_until = Some(Instant::now() + DB_BACKOFF);
                self.insert(item, Slot::NeedsReload);
                BidReply::storage_unavailable()
            }
        };
        for command in waiting {
            command.refuse(refusal.clone());
        }
    }

    fn remember_not_live(&mut self, item: ItemId, why: NotLive) {
        if self.not_live >= NOT_LIVE_MAX {
            let now = Instant::now();
            self.items
                .retain(|_, slot| !matches!(slot, Slot::NotLive { until, .. } if *until <= now));
            self.not_live = self
                .items
                .values()
                .filter(|s| matches!(s, Slot::NotLive { .. }))
                .count();
            if self.not_live >= NOT_LIVE_MAX {
                // All recent: forget them all rather than keep a list in order.
                self.items
                    .retain(|_, slot| !matches!(slot, Slot::NotLive { .. }));
                self.not_live = 0;
            }
        }
        self.insert(
            item,
            Slot::NotLive {
                why,
                until: Instant::now() + NOT_LIVE_FOR,
            },
        );
    }

    /// Runs a command on an item whose book is ready.
    async fn apply(&mut self, command: Command) {
        match command {
            Command::Bid {
                input,
                request_hash,
                reply,
            } => self.bid(input, request_hash, reply).await,
            Command::Buy {
                input,
                request_hash,
                reply,
            } => self.buy(input, request_hash, reply).await,
            Command::Touch { item, reply } => {
                // The committed state, never the book's (which may hold bids in flight).
                let _ = reply.send(self.read_model.get(item));
            }
            Command::Reload { .. } | Command::AuctionChanged { .. } => {}
        }
    }

    /// Waits until every entry sent so far is resolved (committed or refused).
    async fn barrier(&mut self) {
        let (done, rx) = oneshot::channel();
        if self.journal.tx.send(Queued::Barrier(done)).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn bid(&mut self, input: BidInput, request_hash: Option<[u8; 32]>, reply: Responder) {
        let item = input.item;
        let now = micros(self.clock.now());
        let Some(Slot::Ready(book)) = self.items.get_mut(&item) else {
            // `apply` is only called for ready items; anything else is a bug, answered safely.
            reply.send(BidReply::storage_unavailable());
            return;
        };
        let key = match (&input.idempotency_key, request_hash) {
            (Some(key), Some(hash)) => Some(KeyRecord {
                user: input.bidder,
                scope: Scope::Bid,
                key: key.clone(),
                hash,
            }),
            _ => None,
        };
        let (change, answer) = if book.bidding.is_none() {
            (Change::Refused, not_live_reply(NotLive::NotCompetitive))
        } else if book.closed {
            // Recorded closed: whatever the calendar says now, the winners are decided.
            let closes_at = book.close_time();
            (
                Change::Refused,
                refusal_reply(&Refusal::Closed { closes_at }),
            )
        } else {
            match book.gate.admits_bids() {
                Err(shut) => (Change::Refused, shut_reply(shut)),
                Ok(()) => Self::place(book, &input, now, &mut self.closes),
            }
        };
        self.send(
            Record {
                item,
                change,
                key,
                answer,
            },
            reply,
        )
        .await;
    }

    /// Applies an admitted bid to the item's book.
    fn place(
        book: &mut LoadedBook,
        input: &BidInput,
        now: DateTime<Utc>,
        closes: &mut BinaryHeap<Reverse<(DateTime<Utc>, ItemId)>>,
    ) -> (Change, BidReply) {
        let item = input.item;
        let Some(bidding) = book.bidding.as_mut() else {
            return (Change::Refused, not_live_reply(NotLive::NotCompetitive));
        };
        let request = BidRequest {
            bidder: input.bidder.0,
            amount: input.amount,
            max_proxy: input.max_proxy,
        };
        let accepted = match bidding.book.place(request, now) {
            Err(refusal) => return (Change::Refused, refusal_reply(&refusal)),
            Ok(accepted) => accepted,
        };
        bidding
            .standings
            .record(input.bidder.0, input.amount, input.max_proxy, accepted.seq);
        bidding.paddles.insert(input.bidder.0, input.paddle);
        bidding.leader_paddle = bidding.paddles.get(&accepted.leader).copied();
        let leader_paddle = bidding.leader_paddle.unwrap_or(input.paddle);
        let state = book.state();
        let answer = accepted_reply(item, &accepted, state.bid_count, leader_paddle);
        if accepted.extended {
            closes.push(Reverse((accepted.closes_at, item)));
        }
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
                leader: UserId(accepted.leader),
                outbid: accepted.previous_leader.map(UserId),
                extended: accepted.extended,
            },
            answer,
        )
    }

    /// A reoffer purchase: decided here, from the item's stock in memory (one writer, so a
    /// unit can only be sold once), then written through like a bid.
    async fn buy(&mut self, input: BuyInput, request_hash: Option<[u8; 32]>, reply: Responder) {
        let item = input.item;
        let Some(Slot::Ready(book)) = self.items.get_mut(&item) else {
            reply.send(BidReply::storage_unavailable());
            return;
        };
        let key = match (&input.idempotency_key, request_hash) {
            (Some(key), Some(hash)) => Some(KeyRecord {
                user: input.buyer,
                scope: Scope::Purchase,
                key: key.clone(),
                hash,
            }),
            _ => None,
        };
        let (change, answer) = match book.gate.admits_buys() {
            Err(shut) => (Change::Refused, buy_shut_reply(shut)),
            Ok(()) if book.stock.left == 0 => (Change::Refused, BidReply::sold_out()),
            Ok(()) if input.quantity > book.stock.left => {
                (Change::Refused, BidReply::not_enough_left(book.stock.left))
            }
            Ok(()) => {
                book.stock.left -= input.quantity;
                book.reoffer_sold += input.quantity;
                book.events += 1;
                let price_each = book.stock.price;
                let left = book.stock.left;
                let answer = BidReply::purchased(item, input.quantity, price_each, left);
                (
                    Change::Purchased {
                        state: book.state(),
                        buyer: input.buyer,
                        quantity: input.quantity,
                        price_each,
                        sold_out: left == 0,
                    },
                    answer,
                )
            }
        };
        self.send(
            Record {
                item,
                change,
                key,
                answer,
            },
            reply,
        )
        .await;
    }

    /// Hands an entry to the journal; its responder answers once it is resolved.
    async fn send(&mut self, record: Record, reply: Responder) {
        if let Err(mpsc::error::SendError(Queued::Entry(_, reply))) =
            self.journal.tx.send(Queued::Entry(record, reply)).await
        {
            reply.send(BidReply::storage_unavailable());
        }
    }

    /// Closes items whose close has come: decides the winners (`domain::bidding::awards`)
    /// and hands the close to the journal, which records it exactly once and then tells
    /// everyone. An item extended since the timer was set has a later entry in the heap;
    /// its old one is skipped. Bids after this are refused (`closed`), whatever the clock.
    async fn close_due(&mut self) {
        let now = self.clock.now();
        let mut closing = Vec::new();
        while let Some(Reverse((at, item))) = self.closes.peek().copied() {
            if at > now {
                break;
            }
            self.closes.pop();
            let Some(Slot::Ready(book)) = self.items.get_mut(&item) else {
                continue;
            };
            if book.closed || book.close_time() != at {
                continue;
            }
            let Some(bidding) = book.bidding.as_ref() else {
                continue;
            };
            let winners: Vec<(UserId, Cents)> =
                awards(&bidding.book, &bidding.standings, book.units)
                    .into_iter()
                    .map(|a| (UserId(a.bidder), a.amount))
                    .collect();
            book.closed = true;
            book.events += 1;
            if !winners.is_empty() {
                // Items with successful bids are not offered again (reoffer sells what
                // nobody bid on).
                book.stock.left = 0;
            }
            let sold_out = winners.len() as u32 >= book.units;
            closing.push(Record {
                item,
                change: Change::Closed {
                    state: book.state(),
                    at: micros(now),
                    winners,
                    sold_out,
                },
                key: None,
                answer: BidReply::storage_unavailable(),
            });
        }
        for record in closing {
            self.send(record, Responder::nobody()).await;
        }
    }
}

/// Loads one shard's books beside it: every request waiting is loaded with one set of
/// queries (`BookSource::load_items`), so a burst of loads (the first bids on new items, a
/// calendar change, the reload after a failed write) costs a few round trips, not a few
/// per item queued on the pool behind the storm.
async fn loader<B: BookSource>(
    source: Arc<B>,
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
            let (source, gates) = (source.clone(), gates.clone());
            tokio::spawn(async move {
                let rows = source.load_items(&items).await?;
                Ok::<_, StoreError>(
                    rows.into_iter()
                        .map(|(item, row)| {
                            let book = row
                                .and_then(|(stored, bids)| recovery::build(&stored, &bids, &gates));
                            (item, book)
                        })
                        .collect::<Vec<_>>(),
                )
            })
        };
        let result = match load.await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Internal(format!("loading books failed: {e}"))),
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
                for (item, token) in batch.drain(..) {
                    let _ = loaded.send((item, token, Err(e.clone())));
                }
            }
        }
    }
}
