//! Throughput of `Book::place`, the only work a shard does per bid besides I/O.
//!
//! Each sample places `BIDS` bids into a fresh book (built outside the timed region), so the
//! figure is bids per second on one core. The scenarios cover every branch of the rules: lead
//! changing hands, a proxy defending, a refusal, and a soft-close extension on every bid.
//!
//! Run: `cargo bench -p auuction-domain --bench book`.

use auuction_domain::bidding::{BidRequest, Book, BookParams};
use auuction_domain::money::Cents;
use chrono::{DateTime, Duration, TimeZone, Utc};
use divan::{black_box, counter::ItemsCount, Bencher};

fn main() {
    divan::main();
}

/// Bids per sample: enough to amortise divan's per-sample timing, few enough that prices
/// (rising by at most $250 a bid) stay in a realistic range.
const BIDS: usize = 1_000;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 5, 5, 17, 0, 0)
        .single()
        .expect("valid date")
}

fn params() -> BookParams {
    BookParams {
        opening: Cents::from_dollars(10),
        increment: None,
        closes_at: t0() + Duration::hours(1),
        hard_deadline: t0() + Duration::days(1),
        soft_close_window: Duration::minutes(2),
    }
}

/// Two bidders take turns at the minimum: every bid changes the leader.
#[divan::bench]
fn outbid_war(bencher: Bencher) {
    let now = t0();
    bencher
        .counter(ItemsCount::new(BIDS))
        .with_inputs(|| Book::new(params()))
        .bench_local_refs(|book| {
            for i in 0..BIDS {
                let bid = BidRequest {
                    bidder: 1 + (i % 2) as i64,
                    amount: book.next_minimum(),
                    max_proxy: None,
                };
                let _ = black_box(book.place(black_box(bid), now));
            }
        });
}

/// One bidder with a high maximum; everyone else is outbid by the proxy at once.
#[divan::bench]
fn proxy_defends(bencher: Bencher) {
    let now = t0();
    bencher
        .counter(ItemsCount::new(BIDS))
        .with_inputs(|| {
            let mut book = Book::new(params());
            let leader = BidRequest {
                bidder: 1,
                amount: Cents::from_dollars(10),
                max_proxy: Some(Cents::from_dollars(100_000_000)),
            };
            let _ = book.place(leader, now);
            book
        })
        .bench_local_refs(|book| {
            for i in 0..BIDS {
                let bid = BidRequest {
                    bidder: 2 + (i % 4) as i64,
                    amount: book.next_minimum(),
                    max_proxy: None,
                };
                let _ = black_box(book.place(black_box(bid), now));
            }
        });
}

/// Bids one cent under the minimum: the cheapest path, and the one a spamming client takes.
#[divan::bench]
fn refused_below_minimum(bencher: Bencher) {
    let now = t0();
    bencher
        .counter(ItemsCount::new(BIDS))
        .with_inputs(|| Book::new(params()))
        .bench_local_refs(|book| {
            for i in 0..BIDS {
                let bid = BidRequest {
                    bidder: 1 + (i % 5) as i64,
                    amount: Cents(book.next_minimum().0 - 1),
                    max_proxy: None,
                };
                let _ = black_box(book.place(black_box(bid), now));
            }
        });
}

/// A closing-minutes war: every bid lands inside the soft-close window and extends the close.
#[divan::bench]
fn late_war_extending(bencher: Bencher) {
    let start = t0() + Duration::hours(1) - Duration::seconds(30);
    bencher
        .counter(ItemsCount::new(BIDS))
        .with_inputs(|| Book::new(params()))
        .bench_local_refs(|book| {
            for i in 0..BIDS {
                let bid = BidRequest {
                    bidder: 1 + (i % 2) as i64,
                    amount: book.next_minimum(),
                    max_proxy: Some(Cents(book.next_minimum().0 + 500)),
                };
                let now = start + Duration::seconds(i as i64);
                let _ = black_box(book.place(black_box(bid), now));
            }
        });
}
