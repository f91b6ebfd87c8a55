//! The post-run check: nothing acknowledged was lost or duplicated, and every item's price is
//! what the rules give for its recorded bids.
//!
//! Pure: the runner fetches the server's bid lists and final states, this module judges them.
//! The replay uses the server's own rules (`auuction_domain::bidding::Book`) so the check
//! tests the engine's bookkeeping (journal, seq, ordering), not a second copy of the rules.

use std::collections::{BTreeMap, HashMap};

use auuction_domain::bidding::{BidRequest, Book, BookParams};
use auuction_domain::Cents;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A bid the load tester sent, and the server's acknowledgement if one came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentBid {
    pub item: i64,
    /// The bidder's user id (the rules' `BidderId`).
    pub bidder: i64,
    pub paddle: i32,
    pub amount: Cents,
    pub max_proxy: Option<Cents>,
    pub answer: Answer,
}

/// What the server said to a bid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 201: accepted with this seq, showing this price, the bidder leading or not.
    Accepted {
        seq: u64,
        current_bid: Cents,
        leading: bool,
    },
    /// A 4xx/5xx answer: not recorded (a 503 `storage_unavailable` promises that too).
    Refused,
    /// No answer (timeout, disconnect): it may or may not have been recorded.
    Unknown,
}

/// One row of `GET /api/items/{id}/bids`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedBid {
    pub seq: u64,
    /// `p_<paddle>`.
    pub bidder: String,
    pub amount: Cents,
    pub created_at: DateTime<Utc>,
}

/// The item's state as the server shows it after the run (a WebSocket snapshot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalState {
    pub current_bid: Option<Cents>,
    pub seq: u64,
    pub leader: Option<String>,
}

/// Everything the check needs about one item.
pub struct ItemEvidence<'a> {
    pub item: i64,
    pub params: BookParams,
    pub sent: Vec<&'a SentBid>,
    pub listed: Vec<ListedBid>,
    pub final_state: Option<FinalState>,
}

/// The verdict, with counts and the first problems in words.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct CheckReport {
    pub items: usize,
    pub acknowledged: u64,
    pub listed: u64,
    /// Acknowledged bids missing from the list (or listed with another bidder or amount).
    pub lost: u64,
    /// Bids recorded twice, or two acknowledgements with one seq.
    pub duplicated: u64,
    /// Listed bids whose answer never came back (timeouts, disconnects): allowed.
    pub recorded_without_ack: u64,
    /// Listed bids the load tester never sent (another client bid on our items?).
    pub unknown: u64,
    /// Items whose replayed price, seq or leader differ from the server's.
    pub price_mismatches: u64,
    /// Soft-close extensions in the replay (bids that moved an item's close).
    pub extensions: u64,
    pub problems: Vec<String>,
    pub passed: bool,
}

/// How many problems are written out in full; the counts carry the rest.
const MAX_PROBLEMS: usize = 50;

impl CheckReport {
    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        }
    }
}

fn label(paddle: i32) -> String {
    format!("p_{paddle}")
}

/// Checks every item; `passed` is true only with nothing lost, duplicated, unknown or
/// mismatched.
pub fn check(items: &[ItemEvidence<'_>]) -> CheckReport {
    let mut report = CheckReport {
        items: items.len(),
        ..CheckReport::default()
    };
    for item in items {
        check_item(item, &mut report);
    }
    report.passed = report.lost == 0
        && report.duplicated == 0
        && report.unknown == 0
        && report.price_mismatches == 0;
    report
}

fn check_item(ev: &ItemEvidence<'_>, report: &mut CheckReport) {
    let item = ev.item;
    report.listed += ev.listed.len() as u64;

    // Acknowledged bids by seq; two acks for one seq is a duplicate in itself.
    let mut acked: BTreeMap<u64, &SentBid> = BTreeMap::new();
    for bid in &ev.sent {
        if let Answer::Accepted { seq, .. } = bid.answer {
            report.acknowledged += 1;
            if acked.insert(seq, bid).is_some() {
                report.duplicated += 1;
                report.problem(format!("it_{item}: seq {seq} acknowledged twice"));
            }
        }
    }

    // The list must be seq 1..n, each once.
    let mut by_seq: BTreeMap<u64, &ListedBid> = BTreeMap::new();
    for row in &ev.listed {
        if by_seq.insert(row.seq, row).is_some() {
            report.duplicated += 1;
            report.problem(format!("it_{item}: seq {} listed twice", row.seq));
        }
    }
    for (expected, seq) in (1u64..).zip(by_seq.keys()) {
        if *seq != expected {
            report.problem(format!(
                "it_{item}: listed seqs have a gap: {seq} where {expected} was due"
            ));
            report.lost += 1;
            break;
        }
    }

    // Every acknowledged bid is listed under its seq, same bidder, same amount.
    for (seq, bid) in &acked {
        match by_seq.get(seq) {
            Some(row) if row.bidder == label(bid.paddle) && row.amount == bid.amount => {}
            Some(row) => {
                report.lost += 1;
                report.problem(format!(
                    "it_{item}: seq {seq} acknowledged to {} for {} but listed as {} for {}",
                    label(bid.paddle),
                    bid.amount,
                    row.bidder,
                    row.amount
                ));
            }
            None => {
                report.lost += 1;
                report.problem(format!(
                    "it_{item}: acknowledged bid seq {seq} ({} for {}) is not listed",
                    label(bid.paddle),
                    bid.amount
                ));
            }
        }
    }

    // Listed rows without an ack: a bid whose answer was lost in flight (fine), or a bid
    // recorded twice (a duplicate), or a stranger's bid (unknown: the replay cannot be done).
    let mut unanswered: Vec<&SentBid> = ev
        .sent
        .iter()
        .copied()
        .filter(|b| b.answer == Answer::Unknown)
        .collect();
    let mut replay_input: Vec<(u64, &ListedBid, &SentBid)> = Vec::new();
    let mut replayable = true;
    for (seq, row) in &by_seq {
        if let Some(bid) = acked.get(seq) {
            if row.bidder == label(bid.paddle) && row.amount == bid.amount {
                replay_input.push((*seq, row, bid));
                continue;
            }
        }
        let matching = unanswered
            .iter()
            .position(|b| label(b.paddle) == row.bidder && b.amount == row.amount);
        if let Some(i) = matching {
            report.recorded_without_ack += 1;
            replay_input.push((*seq, row, unanswered.swap_remove(i)));
            continue;
        }
        replayable = false;
        let twin = acked
            .values()
            .any(|b| label(b.paddle) == row.bidder && b.amount == row.amount);
        if twin {
            report.duplicated += 1;
            report.problem(format!(
                "it_{item}: seq {seq} ({} for {}) repeats an acknowledged bid",
                row.bidder, row.amount
            ));
        } else if !acked.contains_key(seq) {
            report.unknown += 1;
            report.problem(format!(
                "it_{item}: seq {seq} ({} for {}) was never sent by this run",
                row.bidder, row.amount
            ));
        }
    }
    if !replayable {
        return;
    }

    // Replay in seq order with the server's acceptance times, comparing each acknowledged
    // answer and then the final state.
    let mut book = Book::new(ev.params);
    let mut paddles: HashMap<i64, i32> = HashMap::new();
    for (seq, row, bid) in &replay_input {
        paddles.insert(bid.bidder, bid.paddle);
        let request = BidRequest {
            bidder: bid.bidder,
            amount: bid.amount,
            max_proxy: bid.max_proxy,
        };
        match book.place(request, row.created_at) {
            Err(refusal) => {
                report.price_mismatches += 1;
                report.problem(format!(
                    "it_{item}: replay refuses seq {seq} ({} for {}): {refusal}",
                    row.bidder, row.amount
                ));
                return;
            }
            Ok(accepted) => {
                report.extensions += u64::from(accepted.extended);
                if let Answer::Accepted {
                    current_bid,
                    leading,
                    ..
                } = bid.answer
                {
                    if accepted.seq != *seq
                        || accepted.price != current_bid
                        || accepted.leading != leading
                    {
                        report.price_mismatches += 1;
                        report.problem(format!(
                            "it_{item}: seq {seq} answered {current_bid} (leading {leading}), replay gives seq {} at {} (leading {})",
                            accepted.seq, accepted.price, accepted.leading
                        ));
                        return;
                    }
                }
            }
        }
    }
    let Some(fin) = &ev.final_state else {
        report.price_mismatches += 1;
        report.problem(format!("it_{item}: no final state from the server"));
        return;
    };
    let leader = book
        .leader()
        .and_then(|l| paddles.get(&l).copied())
        .map(label);
    if fin.current_bid != book.price() || fin.seq != book.last_seq() || fin.leader != leader {
        report.price_mismatches += 1;
        report.problem(format!(
            "it_{item}: server shows {:?} at seq {} led by {:?}; replay gives {:?} at seq {} led by {:?}",
            fin.current_bid.map(|c| c.to_string()),
            fin.seq,
            fin.leader,
            book.price().map(|c| c.to_string()),
            book.last_seq(),
            leader
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0)
            .single()
            .expect("valid time")
    }

    fn params() -> BookParams {
        BookParams {
            opening: Cents(10_00),
            increment: Some(Cents(1_00)),
            closes_at: t(1000),
            hard_deadline: t(2000),
            soft_close_window: Duration::seconds(60),
        }
    }

    fn sent(bidder: i64, amount: i64, max: Option<i64>, answer: Answer) -> SentBid {
        SentBid {
            item: 1,
            bidder,
            paddle: bidder as i32 + 100,
            amount: Cents(amount),
            max_proxy: max.map(Cents),
            answer,
        }
    }

    fn acc(seq: u64, price: i64, leading: bool) -> Answer {
        Answer::Accepted {
            seq,
            current_bid: Cents(price),
            leading,
        }
    }

    fn row(seq: u64, bidder: i64, amount: i64) -> ListedBid {
        ListedBid {
            seq,
            bidder: label(bidder as i32 + 100),
            amount: Cents(amount),
            created_at: t(seq as i64),
        }
    }

    /// Three bids: bidder 1 at 10 with a proxy to 30, bidder 2 at 15 (outbid at once by the
    /// proxy, price 16), bidder 2 again at 40 (leads at 40).
    fn story() -> (Vec<SentBid>, Vec<ListedBid>, FinalState) {
        let sent = vec![
            sent(1, 10_00, Some(30_00), acc(1, 10_00, true)),
            sent(2, 15_00, None, acc(2, 16_00, false)),
            sent(2, 40_00, None, acc(3, 40_00, true)),
        ];
        let listed = vec![row(1, 1, 10_00), row(2, 2, 15_00), row(3, 2, 40_00)];
        let fin = FinalState {
            current_bid: Some(Cents(40_00)),
            seq: 3,
            leader: Some(label(102)),
        };
        (sent, listed, fin)
    }

    fn run(sent: &[SentBid], listed: Vec<ListedBid>, fin: FinalState) -> CheckReport {
        check(&[ItemEvidence {
            item: 1,
            params: params(),
            sent: sent.iter().collect(),
            listed,
            final_state: Some(fin),
        }])
    }

    #[test]
    fn a_consistent_story_passes() {
        let (sent, listed, fin) = story();
        let r = run(&sent, listed, fin);
        assert!(r.passed, "{r:?}");
        assert_eq!(
            (r.acknowledged, r.listed, r.lost, r.duplicated),
            (3, 3, 0, 0)
        );
    }

    #[test]
    fn a_missing_acknowledged_bid_is_lost() {
        let (sent, mut listed, fin) = story();
        listed.pop();
        let r = run(&sent, listed, fin);
        assert!(!r.passed);
        assert_eq!(r.lost, 1);
    }

    #[test]
    fn a_bid_recorded_twice_is_a_duplicate() {
        let (sent, mut listed, fin) = story();
        listed.push(row(4, 2, 40_00));
        let r = run(&sent, listed, fin);
        assert!(!r.passed);
        assert_eq!(r.duplicated, 1, "{r:?}");
    }

    #[test]
    fn a_wrong_final_price_is_a_mismatch() {
        let (sent, listed, mut fin) = story();
        fin.current_bid = Some(Cents(39_00));
        let r = run(&sent, listed, fin);
        assert!(!r.passed);
        assert_eq!(r.price_mismatches, 1);
    }

    #[test]
    fn a_wrong_acknowledged_price_is_a_mismatch() {
        let (mut sent, listed, fin) = story();
        // The proxy should have put the price at 16 (15 + one step), not 15.
        sent[1].answer = acc(2, 15_00, false);
        let r = run(&sent, listed, fin);
        assert_eq!(r.price_mismatches, 1, "{r:?}");
    }

    #[test]
    fn a_recorded_bid_whose_answer_was_lost_is_allowed_and_replayed() {
        let (mut sent, listed, fin) = story();
        sent[2].answer = Answer::Unknown;
        let r = run(&sent, listed, fin);
        assert!(r.passed, "{r:?}");
        assert_eq!(r.recorded_without_ack, 1);
    }

    #[test]
    fn a_strangers_bid_is_unknown() {
        let (sent, mut listed, mut fin) = story();
        listed.push(row(4, 7, 50_00));
        fin.seq = 4;
        let r = run(&sent, listed, fin);
        assert!(!r.passed);
        assert_eq!(r.unknown, 1);
    }

    #[test]
    fn two_acks_with_one_seq_are_a_duplicate() {
        let (mut sent, listed, fin) = story();
        sent.push(sent_dup());
        let r = run(&sent, listed, fin);
        assert!(r.duplicated >= 1);
        assert!(!r.passed);
    }

    fn sent_dup() -> SentBid {
        sent(3, 50_00, None, acc(3, 50_00, true))
    }
}
