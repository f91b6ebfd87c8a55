//! The write-through journal with group commit.
//!
//! Each shard has one journal task. Entries arrive in the order the shard applied them; the
//! journal takes every entry waiting (up to [`MAX_BATCH`]) and hands them to its
//! [`JournalStore`] as ONE transaction (Postgres: one statement, so one round trip and one
//! fsync). Only after the commit are the bidders answered and the changes fanned out; so
//! throughput grows with concurrency instead of stopping at one fsync per bid.
//!
//! # When a write fails
//!
//! The shard applied every entry to its books already, so a book may now hold a change
//! that storage does not. Such an item is *broken*: the journal answers every later entry
//! of it `storage_unavailable` (they were decided on the bad book) and tells the shard,
//! which drops the book, reloads it from storage, and sends a *fence* for the item down the
//! queue. Entries behind the fence were decided on the reloaded book and are written again.
//!
//! - Storage unavailable (or an unknown error): every entry of the batch is answered
//!   `storage_unavailable` and every item it touched is broken.
//! - Storage *rejected* the data (a constraint, a value it cannot hold; nothing was
//!   written): the batch is split in halves, recursively, until the entries at fault are
//!   found. They are answered `bid_not_recorded` and their items broken; every other entry
//!   is written. One bad entry never fails the bids of other bidders in its batch.
//!
//! Items are broken one by one, so a failure never costs the other items of the shard
//! anything: their books are consistent with storage and their entries are written.

use std::{
    collections::{HashMap, HashSet},
    ops::Range,
    sync::Arc,
    time::Instant,
};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    domain::{Cents, ItemId, UserId},
    engine::{
        answer::BidReply,
        idempotency::Scope,
        ports::{Committed, JournalStore, Publisher, StoreError},
        responder::Responder,
        state::{ItemState, ReadModel, Tally},
    },
    metrics::JournalMetrics,
};

/// The most entries in one transaction. Large enough that a storm's batches are big, small
/// enough that one statement stays well under a few milliseconds of work.
pub const MAX_BATCH: usize = 2048;
/// Entries that may wait for the journal. When full, the shard waits: backpressure.
const QUEUE: usize = 16384;
/// Committed batches waiting to be fanned out. The fan-out only pushes into outboxes, so it
/// keeps up; the bound makes the journal wait rather than hold memory if it ever did not.
const FANOUT_QUEUE: usize = 1024;

/// One accepted bid, as written to `bids`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidRow {
    pub item: ItemId,
    pub bidder: UserId,
    pub amount: Cents,
    pub max_proxy: Option<Cents>,
    pub seq: u64,
    pub at: DateTime<Utc>,
}

/// An idempotency key, with the hash of what it stands for; stored with the entry's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub user: UserId,
    pub scope: Scope,
    pub key: String,
    pub hash: [u8; 32],
}

/// What an entry changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Accepted {
        bid: BidRow,
        /// The item's state after the bid.
        state: ItemState,
        leader: UserId,
        /// The bidder who lost the lead: an outbid email row and an `outbid` message.
        outbid: Option<UserId>,
        extended: bool,
    },
    /// The item's bidding closed: its winners (none when unsold) each owe their amount for
    /// one unit; units nobody won stay for the reoffer phase.
    Closed {
        /// The item's state after the close.
        state: ItemState,
        /// When the close was decided (the engine's clock).
        at: DateTime<Utc>,
        /// (winner, amount), one unit each, the leader first.
        winners: Vec<(UserId, Cents)>,
        /// Every unit of the item was won.
        sold_out: bool,
    },
    /// A reoffer purchase: a commitment of `quantity` units at `price_each`.
    Purchased {
        state: ItemState,
        buyer: UserId,
        quantity: u32,
        price_each: Cents,
        sold_out: bool,
    },
    /// A refusal: nothing changes; only its answer is stored when it carries a key.
    Refused,
}

/// One entry of the journal, as storage sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub item: ItemId,
    pub change: Change,
    pub key: Option<KeyRecord>,
    /// The answer the bidder gets once the entry is durable (stored under the key).
    pub answer: BidReply,
}

impl Record {
    /// Whether storage has anything to write for it.
    pub fn needs_write(&self) -> bool {
        self.key.is_some() || !matches!(self.change, Change::Refused)
    }
}

/// What the shard puts in its journal's queue, in the order it happened.
// Nearly every message is an entry: boxing it to shrink the rare others would cost an
// allocation per bid.
#[allow(clippy::large_enum_variant)]
pub enum Queued {
    Entry(Record, Responder),
    /// The shard dropped the item's book after it broke: entries behind this were decided
    /// on a book reloaded from storage.
    Fence(ItemId),
    /// Answered once every entry before it is resolved (committed or refused).
    Barrier(oneshot::Sender<()>),
}

/// The shard's side of its journal.
pub struct JournalHandle {
    pub tx: mpsc::Sender<Queued>,
    /// Items that broke (see the module's doc): drop their books and send a fence.
    pub broken: mpsc::UnboundedReceiver<ItemId>,
}

/// What subscribers hear of one committed change.
enum Published {
    Bid {
        state: ItemState,
        outbid: Option<UserId>,
        extended: bool,
    },
    Closed {
        state: ItemState,
        winners: Vec<(UserId, Cents)>,
    },
    Stock(ItemState),
}

impl Published {
    fn item(&self) -> ItemId {
        match self {
            Published::Bid { state, .. } | Published::Closed { state, .. } => state.item,
            Published::Stock(state) => state.item,
        }
    }
}

/// Starts one shard's journal over `store`, and its fan-out.
pub fn spawn<J: JournalStore>(
    store: J,
    tally: Arc<Tally>,
    read_model: Arc<ReadModel>,
    publisher: Arc<dyn Publisher>,
    metrics: JournalMetrics,
    shutdown: CancellationToken,
) -> (JournalHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    // Unbounded, but it holds at most one message per item of the shard between fences.
    let (broken_tx, broken_rx) = mpsc::unbounded_channel();
    let (fanout_tx, fanout_rx) = mpsc::channel::<Vec<Published>>(FANOUT_QUEUE);
    tokio::spawn(fanout(read_model, publisher, fanout_rx).in_current_span());
    let journal = Journal {
        store,
        tally,
        rx,
        broken: HashSet::new(),
        broken_tx,
        fanout: fanout_tx,
        metrics,
    };
    let task = tokio::spawn(journal.run(shutdown).in_current_span());
    (
        JournalHandle {
            tx,
            broken: broken_rx,
        },
        task,
    )
}

struct Journal<J> {
    store: J,
    tally: Arc<Tally>,
    rx: mpsc::Receiver<Queued>,
    /// Items whose entries are refused until the shard's fence for them.
    broken: HashSet<ItemId>,
    broken_tx: mpsc::UnboundedSender<ItemId>,
    fanout: mpsc::Sender<Vec<Published>>,
    metrics: JournalMetrics,
}

/// A run of entries between fences and barriers: their records (what storage writes) and
/// their responders, index for index.
#[derive(Default)]
struct Run {
    records: Vec<Record>,
    replies: Vec<Responder>,
}

impl<J: JournalStore> Journal<J> {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut queued: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
        let mut run = Run::default();
        loop {
            // On shutdown the shard stops first; drain what it already sent, then stop.
            let first = tokio::select! {
                message = self.rx.recv() => message,
                _ = shutdown.cancelled(), if self.rx.is_empty() => None,
            };
            let Some(first) = first else { return };
            queued.push(first);
            while queued.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(message) => queued.push(message),
                    Err(_) => break,
                }
            }
            // Fences and barriers are rare (after failures, around reloads): the entries
            // before one are resolved before it takes effect.
            for message in queued.drain(..) {
                match message {
                    Queued::Entry(record, reply) => {
                        run.records.push(record);
                        run.replies.push(reply);
                    }
                    Queued::Fence(item) => {
                        self.commit(&mut run).await;
                        self.broken.remove(&item);
                    }
                    Queued::Barrier(done) => {
                        self.commit(&mut run).await;
                        let _ = done.send(());
                    }
                }
            }
            self.commit(&mut run).await;
        }
    }

    /// Writes a run, answers every entry of it in order, and fans out what was committed.
    async fn commit(&mut self, run: &mut Run) {
        if run.records.is_empty() {
            return;
        }
        // `None`: the entry's own answer (it is durable, or needed no write).
        let mut fates: Vec<Option<BidReply>> = vec![None; run.records.len()];
        for (i, record) in run.records.iter().enumerate() {
            if self.broken.contains(&record.item) {
                fates[i] = Some(BidReply::storage_unavailable());
            }
        }
        let writes = run
            .records
            .iter()
            .zip(&fates)
            .filter(|(r, fate)| fate.is_none() && r.needs_write())
            .count();
        // Commitment ids storage assigned, by position in the run.
        let mut commitments: HashMap<usize, i64> = HashMap::new();
        if writes > 0 {
            let failed_up_front = fates.iter().any(Option::is_some);
            let result = if failed_up_front {
                let (live, positions) = live_records(&run.records, &fates, 0..run.records.len());
                self.write(&live, writes)
                    .await
                    .map(|c| map_back(c, &positions))
            } else {
                self.write(&run.records, writes)
                    .await
                    .map(|c| c.commitments)
            };
            match result {
                Ok(assigned) => commitments.extend(assigned),
                Err(e) => {
                    let assigned = self.resolve_failure(&run.records, &mut fates, e).await;
                    commitments.extend(assigned);
                }
            }
        }
        let mut published = Vec::new();
        for (i, ((record, reply), fate)) in run
            .records
            .drain(..)
            .zip(run.replies.drain(..))
            .zip(fates)
            .enumerate()
        {
            match fate {
                Some(refusal) => {
                    let counter = if refusal.is_storage_unavailable() {
                        &self.tally.unavailable
                    } else {
                        &self.tally.refused
                    };
                    Tally::add(counter, 1);
                    reply.send(refusal)
                }
                None => {
                    let answer = match commitments.get(&i) {
                        Some(id) => record.answer.with_commitment(*id),
                        None => record.answer,
                    };
                    match record.change {
                        Change::Accepted {
                            state,
                            outbid,
                            extended,
                            ..
                        } => {
                            Tally::add(&self.tally.bids_accepted, 1);
                            published.push(Published::Bid {
                                state,
                                outbid,
                                extended,
                            })
                        }
                        Change::Closed { state, winners, .. } => {
                            published.push(Published::Closed { state, winners })
                        }
                        Change::Purchased {
                            state, quantity, ..
                        } => {
                            Tally::add(&self.tally.purchases, 1);
                            Tally::add(&self.tally.units_bought, u64::from(quantity));
                            published.push(Published::Stock(state))
                        }
                        Change::Refused => Tally::add(&self.tally.refused, 1),
                    }
                    reply.send(answer);
                }
            }
        }
        if !published.is_empty() {
            let _ = self.fanout.send(published).await;
        }
    }

    /// One transaction, timed.
    async fn write(&mut self, records: &[Record], writes: usize) -> Result<Committed, StoreError> {
        let started = Instant::now();
        let result = self.store.commit(records).await;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.batch_entries.observe(writes as f64);
        if result.is_err() {
            self.metrics.failed_commits.inc();
        }
        result
    }

    /// The run's transaction failed: find out which entries can still be written, and
    /// break the items of those that cannot.
    async fn resolve_failure(
        &mut self,
        records: &[Record],
        fates: &mut [Option<BidReply>],
        first: StoreError,
    ) -> Vec<(usize, i64)> {
        let mut assigned = Vec::new();
        let mut error = first;
        // Ranges still to try, the next one last. Storage rejected the data of the range
        // on top: split it so that every entry but the ones at fault gets written.
        let mut pending: Vec<Range<usize>> = Vec::new();
        let mut current = 0..records.len();
        loop {
            match error {
                StoreError::Rejected(ref why) => {
                    let writing: Vec<usize> = current
                        .clone()
                        .filter(|&i| fates[i].is_none() && records[i].needs_write())
                        .collect();
                    if let [only] = writing[..] {
                        tracing::error!(
                            item = records[only].item.0,
                            error = %why,
                            "storage refused a journal entry; the rest of its batch is written"
                        );
                        fates[only] = Some(BidReply::not_recorded());
                        self.break_item(records, fates, only);
                    } else if writing.len() > 1 {
                        let mid = writing[writing.len() / 2];
                        pending.push(mid..current.end);
                        pending.push(current.start..mid);
                    }
                }
                StoreError::Unavailable(ref why) | StoreError::Internal(ref why) => {
                    tracing::error!(error = %why, "journal write failed");
                    // Nothing from here on is known to be written: refuse all of it.
                    let rest = current.start..records.len();
                    for i in rest {
                        if fates[i].is_none() && records[i].needs_write() {
                            fates[i] = Some(BidReply::storage_unavailable());
                            self.break_item(records, fates, i);
                        }
                    }
                    return assigned;
                }
            }
            // The next range with something to write.
            loop {
                let Some(next) = pending.pop() else {
                    return assigned;
                };
                let writes = next
                    .clone()
                    .filter(|&i| fates[i].is_none() && records[i].needs_write())
                    .count();
                if writes == 0 {
                    continue;
                }
                let (live, positions) = live_records(records, fates, next.clone());
                match self.write(&live, writes).await {
                    Ok(committed) => {
                        assigned.extend(map_back(committed, &positions));
                        continue;
                    }
                    Err(e) => {
                        error = e;
                        current = next;
                        break;
                    }
                }
            }
        }
    }

    /// Marks the item of entry `at` broken: every later entry of it in the run is refused
    /// (decided on a book holding what storage does not), and the shard is told.
    fn break_item(&mut self, records: &[Record], fates: &mut [Option<BidReply>], at: usize) {
        let item = records[at].item;
        for i in at + 1..records.len() {
            if records[i].item == item && fates[i].is_none() {
                fates[i] = Some(BidReply::storage_unavailable());
            }
        }
        if self.broken.insert(item) {
            let _ = self.broken_tx.send(item);
        }
    }
}

/// The records of `range` still to be written, in order, and their positions in the run.
fn live_records(
    records: &[Record],
    fates: &[Option<BidReply>],
    range: Range<usize>,
) -> (Vec<Record>, Vec<usize>) {
    let positions: Vec<usize> = range.filter(|&i| fates[i].is_none()).collect();
    let live = positions.iter().map(|&i| records[i].clone()).collect();
    (live, positions)
}

/// Commitment ids of a write of `live_records`, by position in the run.
fn map_back(committed: Committed, positions: &[usize]) -> Vec<(usize, i64)> {
    committed
        .commitments
        .into_iter()
        .filter_map(|(at, id)| Some((*positions.get(at)?, id)))
        .collect()
}

/// Publishes committed changes, off the journal's path: the next batch commits while this
/// one fans out. Within a batch only an item's last price is sent (it supersedes the rest);
/// every outbid notice and extension is.
async fn fanout(
    read_model: Arc<ReadModel>,
    publisher: Arc<dyn Publisher>,
    mut rx: mpsc::Receiver<Vec<Published>>,
) {
    while let Some(batch) = rx.recv().await {
        let mut last: HashMap<ItemId, usize> = HashMap::new();
        for (i, p) in batch.iter().enumerate() {
            last.insert(p.item(), i);
        }
        for (i, p) in batch.into_iter().enumerate() {
            let is_last = last.get(&p.item()) == Some(&i);
            match p {
                Published::Bid {
                    state,
                    outbid,
                    extended,
                } => {
                    if !(is_last || outbid.is_some() || extended) {
                        continue;
                    }
                    let recorded = read_model.committed(state.clone(), publisher.as_ref());
                    if recorded && extended {
                        publisher.extended(&state);
                    }
                    // Still news to its bidder even when a reload recorded a newer state.
                    if let Some(user) = outbid {
                        publisher.outbid(user, &state);
                    }
                }
                // A close is the item's last word: always told, to everyone.
                Published::Closed { state, winners } => {
                    read_model.committed(state.clone(), publisher.as_ref());
                    publisher.item_closed(&state, &winners);
                }
                Published::Stock(state) => {
                    if is_last && read_model.committed(state.clone(), publisher.as_ref()) {
                        publisher.stock_changed(&state);
                    }
                }
            }
        }
    }
}
