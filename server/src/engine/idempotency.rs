//! Idempotency keys of bids, scoped per user.
//!
//! A key is claimed here, in memory, before the bid reaches its shard, so concurrent
//! duplicates make one effect: the first claims the key, the others wait for its answer. The
//! answer is stored durably by the journal in the same statement as the bid, so after a
//! restart a retry finds it in Postgres. Same key with another payload → 422.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use dashmap::{mapref::entry::Entry, DashMap, DashSet};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};

use crate::{
    domain::{Cents, ItemId, UserId},
    engine::{
        answer::BidReply,
        ports::{KeyStore, StoreError, StoredAnswer},
    },
};

/// The longest idempotency key, in bytes. Our clients send 26 (`b-` and 24 hex digits);
/// 200 leaves room for a UUID with a prefix or anything another client invents.
pub const MAX_KEY_LEN: usize = 200;

/// Checks a key once, where every bid path meets (`Engine::submit`, `Engine::place_bid_with`),
/// before it is claimed, hashed or stored: 1 to [`MAX_KEY_LEN`] visible ASCII characters
/// (`!` to `~`: letters, digits, punctuation; no spaces, no control characters, nothing
/// else). A key is an identifier, not text: this set survives every layer unchanged (JSON,
/// forms, headers, Postgres `text`), so no key can fail the journal's statement and with it
/// the other bids of its batch (a NUL byte did).
pub fn validate_key(key: &str) -> Result<(), BidReply> {
    let ok =
        !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(BidReply::invalid_idempotency_key())
    }
}

/// Keys stay in memory this long after their answer; older ones are looked up in Postgres.
const KEEP_IN_MEMORY: Duration = Duration::from_secs(15 * 60);

/// What a key was used for: bids and reoffer purchases have a key space each, as the
/// `idempotency_keys.scope` column has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Bid,
    Purchase,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Bid => "bid",
            Scope::Purchase => "purchase",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "bid" => Some(Scope::Bid),
            "purchase" => Some(Scope::Purchase),
            _ => None,
        }
    }
}

/// The hash of what a bid's key stands for: the item and the amounts, not the key itself.
pub fn request_hash(item: ItemId, amount: Cents, max_proxy: Option<Cents>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(item.0.to_le_bytes());
    h.update(amount.0.to_le_bytes());
    h.update(max_proxy.map(|m| m.0).unwrap_or(-1).to_le_bytes());
    h.finalize().into()
}

/// The hash of what a purchase's key stands for: the item and the quantity.
pub fn purchase_hash(item: ItemId, quantity: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"purchase");
    h.update(item.0.to_le_bytes());
    h.update(quantity.to_le_bytes());
    h.finalize().into()
}

/// A random key for a form that offers a bid: the same form submitted twice is one bid.
pub fn new_key() -> String {
    format!("f-{}", hex::encode(rand::random::<[u8; 12]>()))
}

enum Slot {
    /// Claimed; the answer is on its way. Duplicates that wait for it make the channel
    /// (most keys never have one, so none is allocated up front).
    Pending {
        hash: [u8; 32],
        waiters: Option<Arc<watch::Sender<Option<BidReply>>>>,
    },
    Done {
        hash: [u8; 32],
        reply: BidReply,
        at: Instant,
    },
}

pub enum Claim {
    /// This caller owns the key: run the bid, then call [`Idempotency::finish`].
    Mine,
    /// Someone else ran (or is running) it, or the payload differs: here is the answer.
    Answered(BidReply),
}

/// [`Idempotency::try_claim`]'s answer: like [`Claim`], or "ask again with
/// [`Idempotency::claim`]", which may wait.
pub enum TryClaim {
    Mine,
    Answered(BidReply),
    /// The key may have an answer in Postgres, or a duplicate is running right now.
    MustWait,
}

pub struct Idempotency {
    lookups: mpsc::Sender<Lookup>,
    slots: DashMap<SlotKey, Slot>,
    /// A fingerprint of every key that was ever claimed: stored in Postgres before this
    /// process started (read at start) or claimed since. A key whose fingerprint is not
    /// here was never used, so claiming it needs no Postgres lookup: the common case, a
    /// fresh key per bid, is decided in memory without waiting. A fingerprint collision only
    /// costs a needless lookup. Grows by 16 bytes and change per key (one auction's bids).
    /// It assumes one engine process writes this database's bids, as everywhere else.
    seen: DashSet<(i64, Scope, u64)>,
}

/// A claimed key: (user, scope, key).
type SlotKey = (i64, Scope, String);

/// A key's fingerprint for [`Idempotency::seen`]: stable within the process.
fn fingerprint(key: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(key)
}

/// A question for storage: was this key answered before this process started?
struct Lookup {
    user: UserId,
    scope: Scope,
    key: String,
    reply: oneshot::Sender<Result<Option<StoredAnswer>, StoreError>>,
}

/// How many key lookups one query answers. In a storm every keyed bid whose key may be
/// stored needs one, so they are batched like the journal's writes: one round trip for all
/// that are waiting.
const LOOKUP_BATCH: usize = 1024;

async fn lookup_loop<K: KeyStore>(store: Arc<K>, mut rx: mpsc::Receiver<Lookup>) {
    let mut batch: Vec<Lookup> = Vec::with_capacity(LOOKUP_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < LOOKUP_BATCH {
            match rx.try_recv() {
                Ok(l) => batch.push(l),
                Err(_) => break,
            }
        }
        let keys: Vec<(UserId, Scope, String)> = batch
            .iter_mut()
            .map(|l| (l.user, l.scope, std::mem::take(&mut l.key)))
            .collect();
        match store.lookup(&keys).await {
            Ok(found) => {
                // (A store that answered fewer than asked leaves the rest's senders dropped
                // with the drain: they fail as lookups that could not be made.)
                for (l, answer) in batch.drain(..).zip(found) {
                    let _ = l.reply.send(Ok(answer));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, lookups = batch.len(), "idempotency lookup failed");
                for l in batch.drain(..) {
                    let _ = l.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

fn reused() -> BidReply {
    BidReply::idempotency_key_reused()
}

impl Idempotency {
    /// Starts the lookup task over `store` (call within the runtime).
    pub fn new<K: KeyStore>(store: Arc<K>) -> Idempotency {
        // Lookups waiting for their batch. A full queue makes the bid's own task wait (it
        // is on the slow path already), never the shard.
        let (lookups, rx) = mpsc::channel(8192);
        tokio::spawn(lookup_loop(store, rx));
        Idempotency {
            lookups,
            slots: DashMap::new(),
            seen: DashSet::new(),
        }
    }

    /// Reads the fingerprints of every stored bid key (at start, before the first bid).
    /// Returns how many.
    pub async fn load_seen<K: KeyStore>(&self, store: &K) -> Result<usize, StoreError> {
        store
            .each_key(|user, scope, key| {
                self.seen.insert((user.0, scope, fingerprint(key)));
            })
            .await
    }

    async fn stored(
        &self,
        user: UserId,
        scope: Scope,
        key: &str,
    ) -> Result<Option<StoredAnswer>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable("the key lookup task has stopped".into());
        self.lookups
            .send(Lookup {
                user,
                scope,
                key: key.to_string(),
                reply,
            })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Claims a key without waiting when that can be decided in memory: a key never seen is
    /// claimed, a key answered in memory gets its answer. Anything else is
    /// [`TryClaim::MustWait`]: use [`Idempotency::claim`].
    pub fn try_claim(&self, user: UserId, scope: Scope, key: &str, hash: [u8; 32]) -> TryClaim {
        match self.slots.entry((user.0, scope, key.to_string())) {
            Entry::Occupied(slot) => match slot.get() {
                Slot::Done { hash: h, reply, .. } => {
                    TryClaim::Answered(if *h == hash { reply.clone() } else { reused() })
                }
                Slot::Pending { hash: h, .. } if *h != hash => TryClaim::Answered(reused()),
                Slot::Pending { .. } => TryClaim::MustWait,
            },
            Entry::Vacant(slot) => {
                // `seen` is only touched under a slot's lock, so no two claims of one key
                // can both find it unseen.
                if !self.seen.insert((user.0, scope, fingerprint(key))) {
                    return TryClaim::MustWait;
                }
                slot.insert(Slot::Pending {
                    hash,
                    waiters: None,
                });
                TryClaim::Mine
            }
        }
    }

    pub async fn claim(&self, user: UserId, scope: Scope, key: &str, hash: [u8; 32]) -> Claim {
        match self.try_claim(user, scope, key, hash) {
            TryClaim::Mine => return Claim::Mine,
            TryClaim::Answered(reply) => return Claim::Answered(reply),
            TryClaim::MustWait => {}
        }
        let slot_key = (user.0, scope, key.to_string());
        // A duplicate is running: wait for its answer.
        if let Some(answer) = self.known(&slot_key, hash).await {
            return Claim::Answered(answer);
        }
        // Not in memory: it may have been answered before a restart.
        match self.stored(user, scope, key).await {
            Ok(Some(stored)) => {
                if stored.request_hash != hash {
                    return Claim::Answered(reused());
                }
                return Claim::Answered(stored.reply);
            }
            Ok(None) => {}
            Err(_) => return Claim::Answered(BidReply::storage_unavailable()),
        }
        // Claim it, unless a concurrent duplicate did so while we looked.
        // (The entry's shard lock ends with this statement, before `known` takes it again.)
        let claimed = match self.slots.entry(slot_key.clone()) {
            Entry::Vacant(v) => {
                v.insert(Slot::Pending {
                    hash,
                    waiters: None,
                });
                true
            }
            Entry::Occupied(_) => false,
        };
        if claimed {
            return Claim::Mine;
        }
        match self.known(&slot_key, hash).await {
            Some(answer) => Claim::Answered(answer),
            // Released between our look and now (a storage failure): the caller may retry.
            None => Claim::Answered(BidReply::storage_unavailable()),
        }
    }

    /// The answer for a key held in memory, waiting for it when the bid is still running.
    async fn known(&self, slot_key: &SlotKey, hash: [u8; 32]) -> Option<BidReply> {
        let mut rx = {
            let mut slot = self.slots.get_mut(slot_key)?;
            match &mut *slot {
                Slot::Done { hash: h, reply, .. } => {
                    return Some(if *h == hash { reply.clone() } else { reused() })
                }
                Slot::Pending { hash: h, .. } if *h != hash => return Some(reused()),
                Slot::Pending { waiters, .. } => waiters
                    .get_or_insert_with(|| Arc::new(watch::channel(None).0))
                    .subscribe(),
            }
        };
        // The map's guard is dropped before waiting: never hold a shard lock across an await.
        let answer = match rx.wait_for(|a| a.is_some()).await {
            Ok(answer) => answer.clone(),
            Err(_) => Some(BidReply::storage_unavailable()),
        };
        answer
    }

    /// Records the answer of a claimed key and wakes the duplicates waiting for it. An
    /// answer that is not final (a 5xx: nothing was recorded) releases the key, so a retry
    /// runs the bid again.
    pub fn finish(&self, user: UserId, scope: Scope, key: &str, reply: &BidReply) {
        let slot_key = (user.0, scope, key.to_string());
        let Some(mut slot) = self.slots.get_mut(&slot_key) else {
            return;
        };
        let (hash, waiters) = match &mut *slot {
            Slot::Pending { hash, waiters } => (*hash, waiters.take()),
            Slot::Done { .. } => return,
        };
        if !reply.is_final() {
            drop(slot);
            self.slots.remove(&slot_key);
        } else {
            *slot = Slot::Done {
                hash,
                reply: reply.clone(),
                at: Instant::now(),
            };
            drop(slot);
        }
        if let Some(tx) = waiters {
            let _ = tx.send(Some(reply.clone()));
        }
    }

    /// Drops answered keys older than [`KEEP_IN_MEMORY`] (they remain in Postgres).
    pub fn forget_old(&self) {
        self.slots.retain(|_, slot| match slot {
            Slot::Done { at, .. } => at.elapsed() < KEEP_IN_MEMORY,
            Slot::Pending { .. } => true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Idempotency {
        Idempotency::new(Arc::new(crate::engine::testing::MemoryStorage::default()))
    }

    fn created(body: &str) -> BidReply {
        BidReply {
            status: 201,
            body: Arc::from(body),
        }
    }

    #[tokio::test]
    async fn a_fresh_key_is_claimed_in_memory_and_its_answer_replayed() {
        let keys = registry();
        let (ann, hash) = (UserId(1), request_hash(ItemId(7), Cents(100), None));
        assert!(matches!(
            keys.try_claim(ann, Scope::Bid, "k", hash),
            TryClaim::Mine
        ));
        // A duplicate while the first is running must wait for its answer.
        assert!(matches!(
            keys.try_claim(ann, Scope::Bid, "k", hash),
            TryClaim::MustWait
        ));
        // Another bidder's key of the same name is another key.
        assert!(matches!(
            keys.try_claim(UserId(2), Scope::Bid, "k", hash),
            TryClaim::Mine
        ));
        keys.finish(ann, Scope::Bid, "k", &created("{\"seq\":1}"));
        match keys.try_claim(ann, Scope::Bid, "k", hash) {
            TryClaim::Answered(reply) => assert_eq!(reply, created("{\"seq\":1}")),
            _ => panic!("the answer is replayed"),
        }
        let other = request_hash(ItemId(7), Cents(200), None);
        match keys.try_claim(ann, Scope::Bid, "k", other) {
            TryClaim::Answered(reply) => {
                assert_eq!(reply.status, 422);
                assert!(reply.body.contains("idempotency_key_reused"));
            }
            _ => panic!("another payload is refused"),
        }
    }

    #[tokio::test]
    async fn a_key_that_may_be_stored_is_looked_up_not_claimed_in_memory() {
        let keys = registry();
        let (ann, hash) = (UserId(1), request_hash(ItemId(7), Cents(100), None));
        // Stored before this process started (what load_seen reads).
        keys.seen.insert((ann.0, Scope::Bid, fingerprint("old")));
        assert!(matches!(
            keys.try_claim(ann, Scope::Bid, "old", hash),
            TryClaim::MustWait
        ));
        // A key whose bid was not recorded is released, and then may be anywhere: looked up.
        assert!(matches!(
            keys.try_claim(ann, Scope::Bid, "lost", hash),
            TryClaim::Mine
        ));
        keys.finish(ann, Scope::Bid, "lost", &BidReply::storage_unavailable());
        assert!(matches!(
            keys.try_claim(ann, Scope::Bid, "lost", hash),
            TryClaim::MustWait
        ));
    }

    #[tokio::test]
    async fn duplicates_waiting_for_a_key_get_its_answer() {
        let keys = Arc::new(registry());
        let (ann, hash) = (UserId(1), request_hash(ItemId(7), Cents(100), None));
        assert!(matches!(
            keys.try_claim(ann, Scope::Bid, "k", hash),
            TryClaim::Mine
        ));
        let waiter = {
            let keys = keys.clone();
            tokio::spawn(async move { keys.claim(ann, Scope::Bid, "k", hash).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        keys.finish(ann, Scope::Bid, "k", &created("{\"seq\":3}"));
        match waiter.await.unwrap() {
            Claim::Answered(reply) => assert_eq!(reply, created("{\"seq\":3}")),
            Claim::Mine => panic!("the duplicate must not run the bid again"),
        }
    }
}
