//! The seed's randomness: a fixed pseudo-random sequence, so that two
//! seeds with the same plan write the same data set.

/// A fixed pseudo-random sequence (SplitMix64): reproducible data sets
/// without a dependency on a particular `rand` API.
pub(super) struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// Uniform in `low..high` milliseconds.
    pub(super) fn between(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low).max(1) as u64) as i64
    }

    /// True `percent` times in a hundred.
    pub(super) fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Picks by weight: `(weight, value)` pairs.
    pub(super) fn weighted<T: Copy>(&mut self, items: &[(u64, T)]) -> T {
        let total: u64 = items.iter().map(|(w, _)| w).sum();
        let mut n = self.below(total);
        for (weight, value) in items {
            if n < *weight {
                return *value;
            }
            n -= weight;
        }
        items[items.len() - 1].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_picks_follow_the_weights() {
        let mut rng = Rng(1);
        let picks: Vec<u8> = (0..10_000)
            .map(|_| rng.weighted(&[(90, 0), (10, 1)]))
            .collect();
        let ones = picks.iter().filter(|p| **p == 1).count();
        assert!((800..1200).contains(&ones), "{ones}");
    }
}
