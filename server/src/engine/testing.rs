//! In-memory storage and live ports for the engine's unit tests: no database, and knobs a
//! database does not have (fail the next commits, refuse one bid's data, hold loads or
//! commits where they are).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Instant,
};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::{
    domain::{bidding::BookParams, AuctionId, AuctionState, Cents, ItemId, UserId},
    engine::{
        answer::BidReply,
        idempotency::Scope,
        journal::{Change, Record},
        ports::{
            AnswerSink, Answering, BookSource, Committed, JournalStore, KeyStore, Publisher,
            StockParams, Storage, StoreError, StoredAnswer, StoredBid, StoredBook, StoredItem,
        },
        state::{ItemState, NotLive},
    },
};

/// One item as the memory store keeps it.
#[derive(Clone, Debug)]
pub struct MemItem {
    pub stored: StoredItem,
    pub competitive: bool,
    pub published: bool,
}

#[derive(Default)]
pub struct Db {
    pub items: BTreeMap<ItemId, MemItem>,
    /// Recorded bids by item, with their seq.
    pub bids: BTreeMap<ItemId, Vec<(u64, StoredBid)>>,
    pub paddles: HashMap<UserId, i32>,
    pub keys: HashMap<(UserId, Scope, String), StoredAnswer>,
    /// Winners recorded at closes: (item, bidder) → amount.
    pub winners: BTreeMap<(ItemId, UserId), Cents>,
    /// Commitments: (id, item, user, source, quantity, price each).
    pub commitments: Vec<(i64, ItemId, UserId, &'static str, u32, Cents)>,
    pub outbid_notices: Vec<(UserId, ItemId)>,
    /// The next this many commits fail as if the database were down.
    pub fail_commits: usize,
    /// A batch holding an accepted bid of this (item, amount) is refused for its data.
    pub poisoned: HashSet<(ItemId, Cents)>,
    /// Sizes (entries to write) of every commit attempted, in order.
    pub attempts: Vec<usize>,
    /// Item loads started (each item of each `load_items` call).
    pub loads: usize,
}

struct Inner {
    db: Mutex<Db>,
    /// While true, loads wait after reading (so what they read may grow stale).
    hold_loads: watch::Sender<bool>,
    /// While true, commits wait before writing.
    hold_commits: watch::Sender<bool>,
    loads_waiting: AtomicUsize,
}

/// Storage in memory: implements every storage port; clones share one database.
#[derive(Clone)]
pub struct MemoryStorage {
    inner: Arc<Inner>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        MemoryStorage {
            inner: Arc::new(Inner {
                db: Mutex::new(Db::default()),
                hold_loads: watch::channel(false).0,
                hold_commits: watch::channel(false).0,
                loads_waiting: AtomicUsize::new(0),
            }),
        }
    }
}

async fn wait_while(held: &watch::Sender<bool>) {
    let mut rx = held.subscribe();
    let _ = rx.wait_for(|held| !*held).await;
}

impl MemoryStorage {
    pub fn db(&self) -> MutexGuard<'_, Db> {
        self.inner.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A published competitive item of `auction` (in its bidding window) with `params`.
    pub fn add_item(&self, item: ItemId, auction: AuctionId, params: BookParams) {
        self.db().items.insert(
            item,
            MemItem {
                stored: StoredItem {
                    item,
                    auction,
                    competitive: true,
                    params,
                    auction_state: AuctionState::Bidding,
                    overridden: false,
                    units: 1,
                    closed: false,
                    winners: Vec::new(),
                    stock: StockParams {
                        left: 1,
                        price: params.opening,
                    },
                    events: 0,
                    reoffer_sold: 0,
                },
                competitive: true,
                published: true,
            },
        );
    }

    pub fn add_bidder(&self, user: UserId, paddle: i32) {
        self.db().paddles.insert(user, paddle);
    }

    /// The recorded bids of an item: (seq, bidder, amount).
    pub fn bids(&self, item: ItemId) -> Vec<(u64, UserId, Cents)> {
        self.db()
            .bids
            .get(&item)
            .map(|b| {
                b.iter()
                    .map(|(seq, b)| (*seq, b.bidder, b.amount))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn hold_loads(&self, held: bool) {
        self.inner.hold_loads.send_replace(held);
    }

    pub fn hold_commits(&self, held: bool) {
        self.inner.hold_commits.send_replace(held);
    }

    /// Loads waiting at the hold right now.
    pub fn loads_waiting(&self) -> usize {
        self.inner.loads_waiting.load(Ordering::SeqCst)
    }

    fn book(&self, db: &Db, item: ItemId) -> Result<StoredBook, NotLive> {
        let it = db.items.get(&item).ok_or(NotLive::Missing)?;
        if !it.competitive {
            return Err(NotLive::NotCompetitive);
        }
        if !it.published {
            return Err(NotLive::NotPublished);
        }
        let bids = db
            .bids
            .get(&item)
            .map(|b| {
                b.iter()
                    .map(|(_, bid)| StoredBid {
                        paddle: db.paddles.get(&bid.bidder).copied(),
                        ..bid.clone()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((it.stored.clone(), bids))
    }
}

impl JournalStore for MemoryStorage {
    async fn commit(&mut self, batch: &[Record]) -> Result<Committed, StoreError> {
        wait_while(&self.inner.hold_commits).await;
        let mut db = self.db();
        db.attempts
            .push(batch.iter().filter(|r| r.needs_write()).count());
        if db.fail_commits > 0 {
            db.fail_commits -= 1;
            return Err(StoreError::Unavailable("the test said so".into()));
        }
        // All or nothing: check everything before writing anything.
        let mut new_keys = HashSet::new();
        let mut new_seqs = HashSet::new();
        for record in batch {
            if let Change::Accepted { bid, .. } = &record.change {
                if db.poisoned.contains(&(bid.item, bid.amount)) {
                    return Err(StoreError::Rejected(format!("poisoned bid {bid:?}")));
                }
                let taken = db
                    .bids
                    .get(&bid.item)
                    .is_some_and(|b| b.iter().any(|(seq, _)| *seq == bid.seq));
                if taken || !new_seqs.insert((bid.item, bid.seq)) {
                    return Err(StoreError::Rejected(format!("duplicate seq {bid:?}")));
                }
            }
            if let Change::Closed { state, winners, .. } = &record.change {
                for (user, _) in winners {
                    if db.winners.contains_key(&(state.item, *user)) {
                        return Err(StoreError::Rejected(format!("second close of {state:?}")));
                    }
                }
            }
            if let Some(key) = &record.key {
                let id = (key.user, key.scope, key.key.clone());
                if db.keys.contains_key(&id) || !new_keys.insert(id) {
                    return Err(StoreError::Rejected(format!("duplicate key {key:?}")));
                }
            }
        }
        let mut committed = Committed::default();
        for (position, record) in batch.iter().enumerate() {
            let mut answer = record.answer.clone();
            match &record.change {
                Change::Closed {
                    state,
                    winners,
                    sold_out,
                    ..
                } => {
                    for (user, amount) in winners {
                        db.winners.insert((state.item, *user), *amount);
                        let id = db.commitments.len() as i64 + 1;
                        db.commitments
                            .push((id, state.item, *user, "win", 1, *amount));
                    }
                    if let Some(item) = db.items.get_mut(&state.item) {
                        item.stored.closed = true;
                        item.stored.events += 1;
                        item.stored.winners = winners.clone();
                        if !winners.is_empty() {
                            item.stored.stock.left = 0;
                        }
                        let _ = sold_out;
                    }
                }
                Change::Purchased {
                    state,
                    buyer,
                    quantity,
                    price_each,
                    ..
                } => {
                    let id = db.commitments.len() as i64 + 1;
                    db.commitments.push((
                        id,
                        state.item,
                        *buyer,
                        "reoffer",
                        *quantity,
                        *price_each,
                    ));
                    committed.commitments.push((position, id));
                    answer = answer.with_commitment(id);
                    if let Some(item) = db.items.get_mut(&state.item) {
                        item.stored.stock.left = item.stored.stock.left.saturating_sub(*quantity);
                        item.stored.reoffer_sold += *quantity;
                        item.stored.events += 1;
                    }
                }
                _ => {}
            }
            if let Change::Accepted { bid, outbid, .. } = &record.change {
                db.bids.entry(bid.item).or_default().push((
                    bid.seq,
                    StoredBid {
                        bidder: bid.bidder,
                        amount: bid.amount,
                        max_proxy: bid.max_proxy,
                        at: bid.at,
                        paddle: None,
                    },
                ));
                if let Some(user) = outbid {
                    db.outbid_notices.push((*user, bid.item));
                }
            }
            if let Some(key) = &record.key {
                db.keys.insert(
                    (key.user, key.scope, key.key.clone()),
                    StoredAnswer {
                        request_hash: key.hash,
                        reply: answer,
                    },
                );
            }
        }
        Ok(committed)
    }
}

impl BookSource for MemoryStorage {
    async fn load_all<F>(&self, mut each: F) -> Result<(), StoreError>
    where
        F: FnMut(StoredItem, Vec<StoredBid>) + Send,
    {
        let books: Vec<StoredBook> = {
            let db = self.db();
            db.items
                .keys()
                .filter_map(|item| self.book(&db, *item).ok())
                .collect()
        };
        for (item, bids) in books {
            each(item, bids);
        }
        Ok(())
    }

    async fn load_items(
        &self,
        items: &[ItemId],
    ) -> Result<Vec<(ItemId, Result<StoredBook, NotLive>)>, StoreError> {
        let read: Vec<(ItemId, Result<StoredBook, NotLive>)> = {
            let mut db = self.db();
            db.loads += items.len();
            items.iter().map(|i| (*i, self.book(&db, *i))).collect()
        };
        self.inner.loads_waiting.fetch_add(1, Ordering::SeqCst);
        wait_while(&self.inner.hold_loads).await;
        self.inner.loads_waiting.fetch_sub(1, Ordering::SeqCst);
        Ok(read)
    }

    async fn auction_items(&self, auction: AuctionId) -> Result<Vec<ItemId>, StoreError> {
        Ok(self
            .db()
            .items
            .values()
            .filter(|i| i.stored.auction == auction)
            .map(|i| i.stored.item)
            .collect())
    }
}

impl KeyStore for MemoryStorage {
    async fn each_key<F>(&self, mut each: F) -> Result<usize, StoreError>
    where
        F: FnMut(UserId, Scope, &str) + Send,
    {
        let keys: Vec<(UserId, Scope, String)> = self.db().keys.keys().cloned().collect();
        for (user, scope, key) in &keys {
            each(*user, *scope, key);
        }
        Ok(keys.len())
    }

    async fn lookup(
        &self,
        keys: &[(UserId, Scope, String)],
    ) -> Result<Vec<Option<StoredAnswer>>, StoreError> {
        let db = self.db();
        Ok(keys.iter().map(|k| db.keys.get(k).cloned()).collect())
    }
}

impl Storage for MemoryStorage {
    type Journal = MemoryStorage;
    type Books = MemoryStorage;
    type Keys = MemoryStorage;

    fn journal(&self) -> MemoryStorage {
        self.clone()
    }

    fn books(&self) -> Arc<MemoryStorage> {
        Arc::new(self.clone())
    }

    fn keys(&self) -> Arc<MemoryStorage> {
        Arc::new(self.clone())
    }
}

/// Everything published, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heard {
    Changed(ItemState),
    Extended(ItemId, DateTime<Utc>),
    Outbid(UserId, ItemId),
    Closed(ItemId, Vec<(UserId, Cents)>),
    Stock(ItemId, u32),
    Auction(AuctionId, AuctionState),
}

/// A publisher that remembers what it was told.
#[derive(Default)]
pub struct Recorder {
    pub heard: Mutex<Vec<Heard>>,
}

impl Recorder {
    pub fn take(&self) -> Vec<Heard> {
        std::mem::take(&mut *self.heard.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn push(&self, heard: Heard) {
        self.heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(heard);
    }
}

impl Publisher for Recorder {
    fn item_changed(&self, state: &ItemState) {
        self.push(Heard::Changed(state.clone()));
    }
    fn extended(&self, state: &ItemState) {
        self.push(Heard::Extended(state.item, state.closes_at));
    }
    fn outbid(&self, user: UserId, state: &ItemState) {
        self.push(Heard::Outbid(user, state.item));
    }
    fn item_closed(&self, state: &ItemState, winners: &[(UserId, Cents)]) {
        self.push(Heard::Closed(state.item, winners.to_vec()));
    }
    fn stock_changed(&self, state: &ItemState) {
        self.push(Heard::Stock(state.item, state.stock_left));
    }
    fn auction_state(&self, auction: AuctionId, state: AuctionState) {
        self.push(Heard::Auction(auction, state));
    }
}

/// An answer sink that remembers answers, in the order delivered.
#[derive(Default)]
pub struct Answers {
    pub got: Mutex<Vec<(Option<String>, BidReply)>>,
}

impl Answers {
    pub fn references(&self) -> Vec<Option<String>> {
        self.got
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }
}

impl AnswerSink for Answers {
    fn answer(&self, _: Answering, reference: Option<&str>, _: Instant, reply: &BidReply) {
        self.got
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((reference.map(str::to_string), reply.clone()));
    }
}
