//! Golden scenarios for [`Book`], each named for the story it tells.

use chrono::TimeZone;

use super::*;

const ALICE: BidderId = 1;
const BOB: BidderId = 2;
const CAROL: BidderId = 3;

fn dollars(d: i64) -> Cents {
    Cents::from_dollars(d)
}

/// 2025-05-05 17:00Z plus `minutes`; bidding closes at 18:00, hard deadline 18:30.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 5, 5, 17, 0, 0)
        .single()
        .expect("valid date")
        + Duration::minutes(minutes)
}

fn params() -> BookParams {
    BookParams {
        opening: dollars(50),
        increment: None,
        closes_at: at(60),
        hard_deadline: at(90),
        soft_close_window: Duration::minutes(2),
    }
}

fn book() -> Book {
    Book::new(params())
}

fn bid(bidder: BidderId, amount: i64, max: Option<i64>) -> BidRequest {
    BidRequest {
        bidder,
        amount: dollars(amount),
        max_proxy: max.map(dollars),
    }
}

/// Places a bid ten minutes in, well before any soft close, and insists it is accepted.
fn accept(book: &mut Book, bidder: BidderId, amount: i64, max: Option<i64>) -> Accepted {
    book.place(bid(bidder, amount, max), at(10))
        .expect("bid should be accepted")
}

#[test]
fn spec_example_first_bid_with_max_shows_its_amount() {
    let mut book = book();
    let a = accept(&mut book, ALICE, 125, Some(200));
    assert_eq!(a.price, dollars(125));
    assert!(a.leading && a.leader_changed);
    assert_eq!(a.previous_leader, None);
    assert_eq!(a.seq, 1);
    assert_eq!(a.next_minimum, dollars(135));
    assert_eq!(book.leader_max(), Some(dollars(200)));
}

#[test]
fn spec_example_challenger_outbid_at_once_by_proxy() {
    let mut book = book();
    accept(&mut book, 999, 125, Some(200));
    let a = accept(&mut book, ALICE, 140, None);
    assert!(!a.leading);
    assert_eq!((a.leader, a.price), (999, dollars(150)));
    assert!(!a.leader_changed);
    assert_eq!(
        a.previous_leader, None,
        "no outbid notice: the lead did not move"
    );
}

#[test]
fn first_bid_below_opening_is_refused_with_opening_as_minimum() {
    let mut book = book();
    assert_eq!(
        book.place(bid(ALICE, 49, None), at(10)),
        Err(Refusal::BelowMinimum {
            minimum: dollars(50)
        })
    );
    assert_eq!(book.last_seq(), 0);
    assert_eq!(book.price(), None);
}

#[test]
fn first_bid_at_exactly_opening_is_accepted() {
    let mut book = book();
    assert_eq!(accept(&mut book, ALICE, 50, None).price, dollars(50));
}

#[test]
fn free_item_still_needs_one_cent() {
    let mut book = Book::new(BookParams {
        opening: Cents::ZERO,
        ..params()
    });
    let zero = BidRequest {
        bidder: ALICE,
        amount: Cents::ZERO,
        max_proxy: None,
    };
    assert_eq!(
        book.place(zero, at(1)),
        Err(Refusal::BelowMinimum { minimum: Cents(1) })
    );
}

#[test]
fn negative_amount_is_below_minimum() {
    let mut book = book();
    let r = book.place(bid(ALICE, -100, None), at(1));
    assert_eq!(
        r,
        Err(Refusal::BelowMinimum {
            minimum: dollars(50)
        })
    );
}

#[test]
fn challenger_below_leader_max_raises_price_one_step_over_challenger() {
    let mut book = book();
    accept(&mut book, ALICE, 100, Some(300));
    let a = accept(&mut book, BOB, 150, Some(180));
    assert_eq!((a.leader, a.price), (ALICE, dollars(190)));
    assert_eq!(book.runner_up_max(), Some(dollars(180)));
}

#[test]
fn challenger_above_leader_max_leads_one_step_over_old_max() {
    let mut book = book();
    accept(&mut book, ALICE, 125, Some(200));
    let a = accept(&mut book, BOB, 150, Some(300));
    assert_eq!((a.leader, a.price), (BOB, dollars(210)));
    assert!(a.leading && a.leader_changed);
    assert_eq!(
        a.previous_leader,
        Some(ALICE),
        "Alice gets the outbid notice"
    );
}

#[test]
fn challenger_explicit_amount_above_old_max_sets_price() {
    let mut book = book();
    accept(&mut book, ALICE, 125, Some(200));
    let a = accept(&mut book, BOB, 250, None);
    assert_eq!((a.leader, a.price), (BOB, dollars(250)));
}

#[test]
fn proxy_price_is_capped_at_leader_max() {
    let mut book = book();
    accept(&mut book, ALICE, 100, Some(200));
    // 195 + 10 would be 205, but Alice only authorised 200.
    let a = accept(&mut book, BOB, 195, None);
    assert_eq!((a.leader, a.price), (ALICE, dollars(200)));
}

#[test]
fn equal_maxima_earlier_bid_leads() {
    let mut book = book();
    accept(&mut book, ALICE, 100, Some(200));
    let a = accept(&mut book, BOB, 200, None);
    assert_eq!((a.leader, a.price), (ALICE, dollars(200)));
    assert!(!a.leading);
    // The tie is the new bar: the next bid must beat 200 by a step.
    assert_eq!(a.next_minimum, dollars(210));
}

#[test]
fn leader_raising_max_keeps_price() {
    let mut book = book();
    accept(&mut book, ALICE, 100, Some(200));
    accept(&mut book, BOB, 150, None);
    let before = book.price();
    let a = accept(&mut book, ALICE, 170, Some(400));
    assert_eq!(Some(a.price), before);
    assert_eq!(a.price, dollars(160));
    assert!(a.leading && !a.leader_changed);
    assert_eq!(a.previous_leader, None);
    assert_eq!(book.leader_max(), Some(dollars(400)));
    assert_eq!(a.seq, 3);
}

#[test]
fn leader_raising_max_after_tie_lifts_price_to_what_competition_set() {
    let mut book = book();
    accept(&mut book, ALICE, 100, Some(200));
    accept(&mut book, BOB, 200, None); // tie: Alice leads at her max, 200
    let a = accept(&mut book, ALICE, 210, Some(400));
    // Bob's 200 deserved a 210 answer; only Alice's old max held the price at 200.
    assert_eq!((a.leader, a.price), (ALICE, dollars(210)));
}

#[test]
fn leader_bid_that_does_not_raise_max_is_refused() {
    let mut book = book();
    accept(&mut book, ALICE, 100, Some(200));
    let r = book.place(bid(ALICE, 110, Some(200)), at(10));
    assert_eq!(
        r,
        Err(Refusal::MaxNotRaised {
            current_max: dollars(200)
        })
    );
    assert_eq!(book.last_seq(), 1);
}

#[test]
fn leader_bid_must_still_reach_next_minimum() {
    let mut book = book();
    accept(&mut book, ALICE, 100, Some(200));
    let r = book.place(bid(ALICE, 105, Some(500)), at(10));
    assert_eq!(
        r,
        Err(Refusal::BelowMinimum {
            minimum: dollars(110)
        })
    );
}

#[test]
fn bid_below_next_minimum_is_refused_with_minimum() {
    let mut book = book();
    accept(&mut book, ALICE, 100, None);
    let r = book.place(bid(BOB, 109, None), at(10));
    assert_eq!(
        r,
        Err(Refusal::BelowMinimum {
            minimum: dollars(110)
        })
    );
    assert_eq!(r.map_err(|e| e.code()), Err("bid_too_low"));
}

#[test]
fn max_below_amount_is_refused() {
    let mut book = book();
    let r = book.place(bid(ALICE, 100, Some(90)), at(10));
    assert_eq!(
        r,
        Err(Refusal::MaxBelowAmount {
            amount: dollars(100)
        })
    );
    assert_eq!(book.last_seq(), 0);
}

#[test]
fn max_equal_to_amount_is_accepted() {
    let mut book = book();
    assert_eq!(accept(&mut book, ALICE, 100, Some(100)).price, dollars(100));
}

#[test]
fn refused_bids_take_no_seq_and_change_nothing() {
    let mut book = book();
    accept(&mut book, ALICE, 100, Some(200));
    let snapshot = book.clone();
    for refused in [
        bid(BOB, 1, None),
        bid(BOB, 120, Some(100)),
        bid(ALICE, 120, Some(150)),
    ] {
        assert!(book.place(refused, at(10)).is_err());
        assert_eq!(book, snapshot);
    }
    assert_eq!(accept(&mut book, BOB, 120, None).seq, 2);
    assert_eq!(accept(&mut book, CAROL, 300, None).seq, 3);
    assert_eq!(book.bid_count(), 3);
}

#[test]
fn three_way_war_tracks_strongest_loser() {
    let mut book = book();
    accept(&mut book, ALICE, 100, Some(300));
    accept(&mut book, BOB, 150, Some(250)); // Alice at 250 + $25 (the $250 band's step)
    assert_eq!(book.price(), Some(dollars(275)));
    let a = accept(&mut book, CAROL, 300, Some(500)); // over Alice's 300, by $25 at that band
    assert_eq!((a.leader, a.price), (CAROL, dollars(325)));
    assert_eq!(a.previous_leader, Some(ALICE));
    assert_eq!(book.runner_up_max(), Some(dollars(300)));
}

#[test]
fn next_minimum_uses_the_band_of_the_current_price() {
    let mut book = Book::new(BookParams {
        opening: Cents(20_00),
        ..params()
    });
    accept(&mut book, ALICE, 24, None);
    assert_eq!(book.next_minimum(), dollars(25)); // below $25: +$1
    accept(&mut book, BOB, 25, None);
    assert_eq!(book.next_minimum(), dollars(30)); // at $25: +$5
}

#[test]
fn fixed_item_increment_replaces_the_table() {
    let mut book = Book::new(BookParams {
        increment: Some(dollars(20)),
        ..params()
    });
    accept(&mut book, ALICE, 100, Some(300));
    assert_eq!(book.next_minimum(), dollars(120));
    let a = accept(&mut book, BOB, 120, None);
    assert_eq!(a.price, dollars(140));
}

#[test]
fn bid_at_or_after_close_is_refused() {
    let mut book = book();
    let closed = Err(Refusal::Closed { closes_at: at(60) });
    assert_eq!(book.place(bid(ALICE, 100, None), at(60)), closed);
    assert_eq!(book.place(bid(ALICE, 100, None), at(61)), closed);
    assert!(!book.is_open(at(60)));
    assert_eq!(closed.map_err(|e| e.code()), Err("bidding_closed"));
}

#[test]
fn closed_is_checked_before_amount() {
    let mut book = book();
    assert!(matches!(
        book.place(bid(ALICE, 1, None), at(70)),
        Err(Refusal::Closed { .. })
    ));
}

#[test]
fn late_bid_extends_close_by_the_window() {
    let mut book = book();
    let late = at(60) - Duration::seconds(30);
    let a = book.place(bid(ALICE, 100, None), late).expect("accepted");
    assert!(a.extended);
    assert_eq!(a.closes_at, late + Duration::minutes(2));
    assert_eq!(book.closes_at(), a.closes_at);
    // The item is still open after the original close.
    assert!(book.place(bid(BOB, 110, None), at(61)).is_ok());
}

#[test]
fn early_bid_does_not_extend() {
    let mut book = book();
    let a = accept(&mut book, ALICE, 100, None);
    assert!(!a.extended);
    assert_eq!(a.closes_at, at(60));
}

#[test]
fn bidding_war_stops_at_hard_deadline() {
    let mut book = book();
    let mut now = at(59);
    let mut bidder = ALICE;
    while book.is_open(now) {
        let amount = book.next_minimum();
        let request = BidRequest {
            bidder,
            amount,
            max_proxy: None,
        };
        let a = book.place(request, now).expect("accepted while open");
        assert!(a.closes_at <= at(90));
        bidder = if bidder == ALICE { BOB } else { ALICE };
        now += Duration::seconds(90);
    }
    assert_eq!(book.closes_at(), at(90));
}

#[test]
fn misset_deadline_before_close_means_no_extension() {
    let mut book = Book::new(BookParams {
        hard_deadline: at(30),
        ..params()
    });
    let a = book
        .place(bid(ALICE, 100, None), at(60) - Duration::seconds(10))
        .expect("accepted");
    assert!(!a.extended);
    assert_eq!(book.hard_deadline(), at(60));
}

#[test]
fn replay_rebuilds_the_same_book() {
    let mut live = book();
    let bids = [
        (ALICE, 125, Some(200), at(5)),
        (BOB, 150, None, at(6)),
        (CAROL, 260, Some(400), at(59)),
        (ALICE, 420, None, at(60)), // allowed: Carol's bid extended the close
    ];
    let mut recorded = Vec::new();
    for (bidder, amount, max, when) in bids {
        live.place(bid(bidder, amount, max), when)
            .expect("accepted");
        recorded.push(RecordedBid {
            bidder,
            amount: dollars(amount),
            max_proxy: max.map(dollars),
            at: when,
        });
    }
    assert_eq!(Book::replay(params(), &recorded), Ok(live));
}

#[test]
fn replay_reports_a_bid_the_rules_refuse() {
    let recorded = [
        RecordedBid {
            bidder: ALICE,
            amount: dollars(100),
            max_proxy: None,
            at: at(1),
        },
        RecordedBid {
            bidder: BOB,
            amount: dollars(101),
            max_proxy: None,
            at: at(2),
        },
    ];
    let err = Book::replay(params(), &recorded).expect_err("second bid is too low");
    assert_eq!(err.index, 1);
    assert_eq!(err.bidder, BOB);
    assert_eq!(
        err.refusal,
        Refusal::BelowMinimum {
            minimum: dollars(110)
        }
    );
    assert!(err.to_string().contains("seq 2"));
}

#[test]
fn huge_amounts_saturate_instead_of_overflowing() {
    let mut book = book();
    let top = BidRequest {
        bidder: ALICE,
        amount: Cents(i64::MAX - 1),
        max_proxy: Some(Cents(i64::MAX)),
    };
    book.place(top, at(1)).expect("accepted");
    assert_eq!(book.next_minimum(), Cents(i64::MAX));
}
