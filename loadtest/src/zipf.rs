//! A Zipf sampler over item ranks: a few items draw most bids, as on auction night (the quilt
//! and the vacation home, not the casserole dish).
//!
//! Rank k (0-based) is drawn with probability proportional to 1 / (k + 1)^s. The cumulative
//! table is built once and sampled by binary search: O(log n) per draw, exact, and simple
//! enough to test against the formula.

use rand::Rng;

/// Draws ranks in `0..n` with Zipf weights.
#[derive(Clone, Debug)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    /// `n` ranks with exponent `s` (0 is uniform, 1 is the classic Zipf, higher is more
    /// skewed). `n` of zero is treated as one: there is always something to draw.
    pub fn new(n: usize, s: f64) -> Zipf {
        let n = n.max(1);
        let s = if s.is_finite() { s.max(0.0) } else { 1.0 };
        let mut total = 0.0;
        let mut cumulative = Vec::with_capacity(n);
        for k in 0..n {
            total += 1.0 / ((k + 1) as f64).powf(s);
            cumulative.push(total);
        }
        for c in &mut cumulative {
            *c /= total;
        }
        Zipf { cumulative }
    }

    /// The probability of rank `k`.
    pub fn probability(&self, k: usize) -> f64 {
        match k {
            0 => self.cumulative.first().copied().unwrap_or(0.0),
            _ if k < self.cumulative.len() => self.cumulative[k] - self.cumulative[k - 1],
            _ => 0.0,
        }
    }

    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// Draws one rank.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let u: f64 = rng.gen();
        // First rank whose cumulative weight exceeds u; rounding could leave the last entry
        // a hair below 1.0, hence the clamp.
        self.cumulative
            .partition_point(|c| *c <= u)
            .min(self.cumulative.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn probabilities_follow_the_formula_and_sum_to_one() {
        let z = Zipf::new(4, 1.0);
        let h = 1.0 + 0.5 + 1.0 / 3.0 + 0.25;
        for k in 0..4 {
            assert!((z.probability(k) - 1.0 / ((k + 1) as f64) / h).abs() < 1e-12);
        }
        assert_eq!(z.probability(4), 0.0);
        let sum: f64 = (0..4).map(|k| z.probability(k)).sum();
        assert!((sum - 1.0).abs() < 1e-12);
    }

    #[test]
    fn samples_match_the_distribution() {
        let z = Zipf::new(100, 1.1);
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0u32; 100];
        let draws = 200_000;
        for _ in 0..draws {
            counts[z.sample(&mut rng)] += 1;
        }
        for k in [0, 1, 9, 99] {
            let expected = z.probability(k) * draws as f64;
            let got = counts[k] as f64;
            // Five standard deviations of a binomial count: a real bug is far outside.
            let sd = (expected * (1.0 - z.probability(k))).sqrt();
            assert!(
                (got - expected).abs() < 5.0 * sd + 1.0,
                "rank {k}: {got} vs {expected}"
            );
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[50]);
    }

    #[test]
    fn zero_exponent_is_uniform_and_degenerate_sizes_work() {
        let z = Zipf::new(10, 0.0);
        for k in 0..10 {
            assert!((z.probability(k) - 0.1).abs() < 1e-12);
        }
        let one = Zipf::new(0, 1.0);
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(one.len(), 1);
        assert_eq!(one.sample(&mut rng), 0);
    }
}
