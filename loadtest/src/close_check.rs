//! The close's post-run check: every item closed once, with the winners the rules give for
//! its recorded bids, and no bid recorded at or after its item's close.
//!
//! Pure, like `check`: the `close` scenario gathers the server's bid lists, winners, item
//! states and the `closed` frames its watchers saw; this module judges them. The replay uses
//! the server's own rules (`auuction_domain::bidding`: `Book` for the price and the close,
//! `awards` for who wins at what), so it tests the close's bookkeeping, not a second copy of
//! the rules.

use std::collections::HashMap;

use auuction_domain::bidding::{awards, Book, BookParams, RecordedBid, Standings};
use auuction_domain::Cents;
use serde::Serialize;

use crate::api::{ItemState, WinnerLine};
use crate::check::ListedBid;

/// What a watcher's `closed` frame said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedSeen {
    pub final_price: Option<Cents>,
    pub winner: Option<String>,
    pub quantity_sold: u32,
}

/// Everything the check needs about one item.
pub struct CloseEvidence<'a> {
    pub item: i64,
    pub params: BookParams,
    /// `GET /api/items/{id}/bids`, in seq order.
    pub listed: &'a [ListedBid],
    /// The maximum each bid carried, by (bidder label, amount): the list does not show
    /// maxima, the run knows what it sent (amounts are unique per item).
    pub maxima: &'a HashMap<(String, Cents), Cents>,
    /// `GET /api/items/{id}`; `None` if it could not be read.
    pub server: Option<&'a ItemState>,
    /// This item's lines of `GET /api/auctions/{id}/winners`.
    pub winners: Vec<&'a WinnerLine>,
    /// The watcher's `closed` frame, if one came.
    pub closed_frame: Option<&'a ClosedSeen>,
}

/// The verdict, with counts and the first problems in words.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct CloseCheck {
    pub items: usize,
    /// Items with a winner (the rest had no bids and stay for the reoffer).
    pub sold: usize,
    /// Items whose `closed` frame a watcher saw.
    pub closed_frames: usize,
    /// Items whose winners, status, units sold or `closed` frame differ from the replay.
    pub wrong: usize,
    /// Recorded bids at or after their item's close.
    pub late_bids: usize,
    pub problems: Vec<String>,
    pub passed: bool,
}

const MAX_PROBLEMS: usize = 50;

impl CloseCheck {
    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        }
    }

    /// The counts in one line, for the report.
    pub fn measured(&self) -> String {
        format!(
            "{} items: {} sold, {} closed frames seen, {} wrong, {} bids after the close",
            self.items, self.sold, self.closed_frames, self.wrong, self.late_bids
        )
    }
}

fn paddle_of(label: &str) -> Option<i64> {
    label.strip_prefix("p_")?.parse().ok()
}

fn label(paddle: i64) -> String {
    format!("p_{paddle}")
}

pub fn check(items: &[CloseEvidence<'_>]) -> CloseCheck {
    let mut report = CloseCheck {
        items: items.len(),
        ..CloseCheck::default()
    };
    for item in items {
        if !check_item(item, &mut report) {
            report.wrong += 1;
        }
    }
    report.passed = report.wrong == 0 && report.late_bids == 0;
    report
}

/// Checks one item; false if anything about its close is wrong (late bids are counted on
/// their own).
fn check_item(ev: &CloseEvidence<'_>, report: &mut CloseCheck) -> bool {
    let item = ev.item;
    let Some(server) = ev.server else {
        report.problem(format!("it_{item}: the item could not be read"));
        return false;
    };
    if ev.closed_frame.is_some() {
        report.closed_frames += 1;
    }
    for bid in ev.listed {
        if bid.created_at >= server.closes_at {
            report.late_bids += 1;
            report.problem(format!(
                "it_{item}: seq {} recorded at {}, at or after the close at {}",
                bid.seq, bid.created_at, server.closes_at
            ));
        }
    }
    // The bids as the journal recorded them, bidders by paddle number (one per bidder).
    let mut recorded = Vec::with_capacity(ev.listed.len());
    for bid in ev.listed {
        let Some(bidder) = paddle_of(&bid.bidder) else {
            report.problem(format!("it_{item}: unreadable bidder {:?}", bid.bidder));
            return false;
        };
        recorded.push(RecordedBid {
            bidder,
            amount: bid.amount,
            max_proxy: ev.maxima.get(&(bid.bidder.clone(), bid.amount)).copied(),
            at: bid.created_at,
        });
    }
    let book = match Book::replay(ev.params, &recorded) {
        Ok(book) => book,
        Err(e) => {
            report.problem(format!("it_{item}: the recorded bids do not replay: {e}"));
            return false;
        }
    };
    let units = u32::try_from(server.quantity_total).unwrap_or(1).max(1);
    let expected: Vec<(String, Cents)> = awards(&book, &Standings::from_bids(&recorded), units)
        .into_iter()
        .map(|a| (label(a.bidder), a.amount))
        .collect();
    if !expected.is_empty() {
        report.sold += 1;
    }
    let mut ok = true;
    if book.closes_at() != server.closes_at {
        ok = false;
        report.problem(format!(
            "it_{item}: closes at {}, the replay closes it at {}",
            server.closes_at,
            book.closes_at()
        ));
    }
    let mut written: Vec<(String, Cents)> = ev
        .winners
        .iter()
        .map(|w| (w.paddle.clone(), w.amount))
        .collect();
    let mut wanted = expected.clone();
    written.sort();
    wanted.sort();
    if written != wanted || ev.winners.iter().any(|w| w.quantity != 1) {
        ok = false;
        report.problem(format!(
            "it_{item}: winners written {written:?}, the replay awards {wanted:?}"
        ));
    }
    let sold = expected.len();
    let status_ok = if sold as u32 >= units {
        server.status == "closed"
    } else {
        server.status != "closed"
    };
    if server.quantity_sold != sold as i32 || !status_ok {
        ok = false;
        report.problem(format!(
            "it_{item}: status {} with {} sold; the replay sells {sold} of {units}",
            server.status, server.quantity_sold
        ));
    }
    let leader = expected.first();
    match ev.closed_frame {
        None => {
            ok = false;
            report.problem(format!("it_{item}: no watcher saw its closed frame"));
        }
        Some(frame) => {
            let want = ClosedSeen {
                final_price: leader.map(|(_, amount)| *amount),
                winner: leader.map(|(who, _)| who.clone()),
                quantity_sold: sold as u32,
            };
            if *frame != want {
                ok = false;
                report.problem(format!(
                    "it_{item}: closed frame {frame:?}, the replay gives {want:?}"
                ));
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use auuction_domain::ItemId;
    use chrono::{DateTime, Duration, TimeZone, Utc};

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0)
            .single()
            .expect("valid time")
    }

    fn params() -> BookParams {
        BookParams {
            opening: Cents(10_00),
            increment: Some(Cents(1_00)),
            closes_at: t(100),
            hard_deadline: t(100),
            soft_close_window: Duration::zero(),
        }
    }

    fn row(seq: u64, paddle: i64, amount: i64, at: i64) -> ListedBid {
        ListedBid {
            seq,
            bidder: label(paddle),
            amount: Cents(amount),
            created_at: t(at),
        }
    }

    fn state(status: &str, sold: i32) -> ItemState {
        ItemState {
            id: ItemId(1),
            status: status.into(),
            quantity_sold: sold,
            quantity_total: 1,
            closes_at: t(100),
        }
    }

    fn winner(paddle: i64, amount: i64) -> WinnerLine {
        WinnerLine {
            item_id: ItemId(1),
            user_id: auuction_domain::UserId(paddle),
            paddle: label(paddle),
            amount: Cents(amount),
            quantity: 1,
            determined_at: t(100),
        }
    }

    /// Paddle 7 bids 10 with a maximum of 30, paddle 8 bids 15: the proxy answers at 16,
    /// so paddle 7 wins at 16, not at their maximum and not at 15.
    fn story() -> (Vec<ListedBid>, HashMap<(String, Cents), Cents>) {
        let listed = vec![row(1, 7, 10_00, 10), row(2, 8, 15_00, 20)];
        let maxima = HashMap::from([((label(7), Cents(10_00)), Cents(30_00))]);
        (listed, maxima)
    }

    fn judge(
        listed: &[ListedBid],
        maxima: &HashMap<(String, Cents), Cents>,
        server: &ItemState,
        winners: &[WinnerLine],
        frame: Option<&ClosedSeen>,
    ) -> CloseCheck {
        check(&[CloseEvidence {
            item: 1,
            params: params(),
            listed,
            maxima,
            server: Some(server),
            winners: winners.iter().collect(),
            closed_frame: frame,
        }])
    }

    fn frame(price: Option<i64>, winner: Option<i64>) -> ClosedSeen {
        ClosedSeen {
            final_price: price.map(Cents),
            winner: winner.map(label),
            quantity_sold: u32::from(winner.is_some()),
        }
    }

    #[test]
    fn the_proxy_winner_at_the_price_shown_passes() {
        let (listed, maxima) = story();
        let r = judge(
            &listed,
            &maxima,
            &state("closed", 1),
            &[winner(7, 16_00)],
            Some(&frame(Some(16_00), Some(7))),
        );
        assert!(r.passed, "{r:?}");
        assert_eq!((r.items, r.sold, r.closed_frames), (1, 1, 1));
    }

    #[test]
    fn a_winner_at_the_wrong_amount_or_person_fails() {
        let (listed, maxima) = story();
        for wrong in [winner(7, 30_00), winner(8, 15_00)] {
            let r = judge(
                &listed,
                &maxima,
                &state("closed", 1),
                &[wrong],
                Some(&frame(Some(16_00), Some(7))),
            );
            assert!(!r.passed);
            assert_eq!(r.wrong, 1, "{r:?}");
        }
    }

    #[test]
    fn a_missing_frame_or_open_status_fails() {
        let (listed, maxima) = story();
        let r = judge(
            &listed,
            &maxima,
            &state("closed", 1),
            &[winner(7, 16_00)],
            None,
        );
        assert!(!r.passed);
        let r = judge(
            &listed,
            &maxima,
            &state("published", 0),
            &[winner(7, 16_00)],
            Some(&frame(Some(16_00), Some(7))),
        );
        assert!(!r.passed);
    }

    #[test]
    fn a_bid_recorded_after_the_close_fails() {
        let (mut listed, maxima) = story();
        listed.push(row(3, 9, 40_00, 100));
        let r = judge(
            &listed,
            &maxima,
            &state("closed", 1),
            &[winner(9, 40_00)],
            Some(&frame(Some(40_00), Some(9))),
        );
        assert!(!r.passed);
        assert_eq!(r.late_bids, 1, "{r:?}");
    }

    #[test]
    fn an_item_without_bids_closes_unsold() {
        let maxima = HashMap::new();
        let r = judge(
            &[],
            &maxima,
            &state("published", 0),
            &[],
            Some(&frame(None, None)),
        );
        assert!(r.passed, "{r:?}");
        assert_eq!(r.sold, 0);
        let r = judge(
            &[],
            &maxima,
            &state("published", 0),
            &[winner(7, 10_00)],
            Some(&frame(None, None)),
        );
        assert!(!r.passed, "a winner without bids");
    }
}
