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
        journal::{Change, Record},
        ports::{
            AnswerSink, BookSource, JournalStore, KeyStore, Publisher, Storage, StoreError,
            StoredAnswer, StoredBid, StoredBook, StoredItem,
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
    pub keys: HashMap<(UserId, String), StoredAnswer>,
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
                    params,
                    auction_state: AuctionState::Bidding,
                    overridden: false,
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
    async fn commit(&mut self, batch: &[Record]) -> Result<(), StoreError> {
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
            if let Some(key) = &record.key {
                let id = (key.user, key.key.clone());
                if db.keys.contains_key(&id) || !new_keys.insert(id) {
                    return Err(StoreError::Rejected(format!("duplicate key {key:?}")));
                }
            }
        }
        for record in batch {
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
                    (key.user, key.key.clone()),
                    StoredAnswer {
                        request_hash: key.hash,
                        reply: record.answer.clone(),
                    },
                );
            }
        }
        Ok(())
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
        F: FnMut(UserId, &str) + Send,
    {
        let keys: Vec<(UserId, String)> = self.db().keys.keys().cloned().collect();
        for (user, key) in &keys {
            each(*user, key);
        }
        Ok(keys.len())
    }

    async fn lookup(
        &self,
        keys: &[(UserId, String)],
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
    Closed(ItemId),
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
    fn closed(&self, item: ItemId, _closes_at: DateTime<Utc>) {
        self.push(Heard::Closed(item));
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
    fn answer(&self, reference: Option<&str>, _received: Instant, reply: &BidReply) {
        self.got
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((reference.map(str::to_string), reply.clone()));
    }
}
