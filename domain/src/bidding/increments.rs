//! How much a bid must beat the current price by.
//!
//! The increment grows with the price so that a $20 plant and a $2,000 week at a cabin both
//! move in steps that feel meaningful: a dollar on the plant is a real bid, a dollar on the
//! cabin is noise that only makes closing minutes noisier. The bands follow the usual
//! charity-auction and eBay shape, rounded to amounts a congregant can add up in their head.

use crate::money::Cents;

/// The default increment table, as `(price below this many cents, increment in cents)`.
///
/// | Current price          | Increment |
/// |------------------------|-----------|
/// | below $25.00           | $1.00     |
/// | $25.00 – $99.99        | $5.00     |
/// | $100.00 – $249.99      | $10.00    |
/// | $250.00 – $499.99      | $25.00    |
/// | $500.00 – $999.99      | $50.00    |
/// | $1,000.00 – $2,499.99  | $100.00   |
/// | $2,500.00 and above    | $250.00   |
///
/// A band's lower bound belongs to it: at exactly $25.00 the increment is already $5.00.
/// Kept as data rather than a `match` so the table in this comment and the tests can be checked
/// against one source.
pub const INCREMENT_BANDS: [(i64, i64); 6] = [
    (25_00, 1_00),
    (100_00, 5_00),
    (250_00, 10_00),
    (500_00, 25_00),
    (1_000_00, 50_00),
    (2_500_00, 100_00),
];

/// The increment for prices at or above the last band's bound ($2,500.00).
pub const TOP_INCREMENT: Cents = Cents(250_00);

/// The increment the table gives at `price` (see [`INCREMENT_BANDS`] for the table).
///
/// Always at least $1.00, also for zero or (nonsensical) negative prices, so a next minimum
/// computed from it is always strictly above the price.
pub fn increment_for(price: Cents) -> Cents {
    // Seven bands: a linear scan is as fast as a binary search and reads like the table.
    for (below, increment) in INCREMENT_BANDS {
        if price.0 < below {
            return Cents(increment);
        }
    }
    TOP_INCREMENT
}

/// The step used for an item at `price`: the item's own fixed `bid_increment` when the donor or
/// manager set one, otherwise the table.
///
/// A fixed increment below one cent (zero or negative, which the item form should refuse
/// anyway) is treated as one cent: a step of zero would let the same amount be bid twice and
/// make "beats by one increment" meaningless.
pub fn step(item_increment: Option<Cents>, price: Cents) -> Cents {
    match item_increment {
        Some(fixed) => Cents(fixed.0.max(1)),
        None => increment_for(price),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every band boundary, from both sides, written out by hand so a typo in the table is caught
    /// by a second, independent spelling of it.
    #[test]
    fn band_boundaries_from_both_sides() {
        let cases = [
            (0, 1_00),
            (1, 1_00),
            (24_99, 1_00),
            (25_00, 5_00),
            (99_99, 5_00),
            (100_00, 10_00),
            (249_99, 10_00),
            (250_00, 25_00),
            (499_99, 25_00),
            (500_00, 50_00),
            (999_99, 50_00),
            (1_000_00, 100_00),
            (2_499_99, 100_00),
            (2_500_00, 250_00),
            (1_000_000_00, 250_00),
            (i64::MAX, 250_00),
        ];
        for (price, expected) in cases {
            assert_eq!(
                increment_for(Cents(price)),
                Cents(expected),
                "increment at {}",
                Cents(price)
            );
        }
    }

    #[test]
    fn negative_prices_get_the_smallest_increment() {
        assert_eq!(increment_for(Cents(-1)), Cents(1_00));
        assert_eq!(increment_for(Cents(i64::MIN)), Cents(1_00));
    }

    /// Every cent from $0 to $3,000 (past the last boundary): the increment never shrinks as the
    /// price grows, changes only at a listed boundary, and is always at least $1.
    #[test]
    fn every_cent_up_to_3000_dollars_is_monotone_and_changes_only_at_bounds() {
        let bounds: Vec<i64> = INCREMENT_BANDS.iter().map(|(below, _)| *below).collect();
        let mut previous = increment_for(Cents(0));
        for price in 1..=3_000_00 {
            let inc = increment_for(Cents(price));
            assert!(inc >= Cents(1_00));
            if inc != previous {
                assert!(inc > previous, "increment shrank at {}", Cents(price));
                assert!(
                    bounds.contains(&price),
                    "unexpected change at {}",
                    Cents(price)
                );
            }
            previous = inc;
        }
    }

    #[test]
    fn bands_are_sorted_and_increments_grow() {
        for pair in INCREMENT_BANDS.windows(2) {
            assert!(pair[0].0 < pair[1].0 && pair[0].1 < pair[1].1);
        }
        assert!(INCREMENT_BANDS[INCREMENT_BANDS.len() - 1].1 < TOP_INCREMENT.0);
    }

    #[test]
    fn fixed_item_increment_overrides_the_table_at_every_price() {
        for price in [0, 24_99, 25_00, 2_500_00, 1_000_000_00] {
            assert_eq!(step(Some(Cents(7_00)), Cents(price)), Cents(7_00));
        }
    }

    #[test]
    fn no_item_increment_uses_the_table() {
        assert_eq!(step(None, Cents(24_99)), Cents(1_00));
        assert_eq!(step(None, Cents(25_00)), Cents(5_00));
    }

    #[test]
    fn zero_or_negative_fixed_increment_is_one_cent() {
        assert_eq!(step(Some(Cents(0)), Cents(10_00)), Cents(1));
        assert_eq!(step(Some(Cents(-5_00)), Cents(10_00)), Cents(1));
    }
}
