//! Deterministic pseudo-random numbers for the sandbox: a splitmix64 generator, per-record
//! streams derived from `(seed, stream, index)`, and a byte hash for checksums.
//!
//! Every synthetic value the sandbox serves comes from here, so the data is a pure function
//! of the options. Per-record streams let any record be regenerated on demand without
//! generating the ones before it.

/// Finalizer of splitmix64: a bijective 64-bit mix with good avalanche.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes bytes under a key (FNV-1a over the bytes, then mixed with the key); used for
/// cursor checksums and request-derived ids, not for anything secret.
pub(crate) fn hash_bytes(key: u64, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h ^ mix(key))
}

/// A splitmix64 generator.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// A generator from a single seed.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: mix(seed) }
    }

    /// An independent stream for record `index` of kind `stream` under `seed`.
    pub(crate) fn for_record(seed: u64, stream: u64, index: u64) -> Self {
        Self::new(seed ^ mix(stream.wrapping_add(0x9e37_79b9_7f4a_7c15)) ^ mix(!index))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (`n > 0`; returns 0 for `n == 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (returns `lo` when `hi < lo`).
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let width = (hi - lo) as u64 + 1;
        lo + self.below(width) as i64
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = self.below(items.len() as u64) as usize;
        &items[i.min(items.len().saturating_sub(1))]
    }

    /// One value of a non-empty `(value, weight)` table, chosen with probability
    /// proportional to its weight.
    pub(crate) fn weighted<T: Copy>(&mut self, table: &[(T, u32)]) -> T {
        let total: u64 = table.iter().map(|&(_, w)| u64::from(w)).sum();
        let mut roll = self.below(total.max(1));
        for &(value, w) in table {
            if roll < u64::from(w) {
                return value;
            }
            roll -= u64::from(w);
        }
        table[table.len() - 1].0
    }

    /// Exponentially distributed with the given mean.
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| Rng::for_record(42, 1, 7).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::for_record(42, 1, 7).next_u64(),
            Rng::for_record(42, 1, 8).next_u64()
        );
        assert_ne!(
            Rng::for_record(42, 1, 7).next_u64(),
            Rng::for_record(42, 2, 7).next_u64()
        );
        assert_ne!(
            Rng::for_record(42, 1, 7).next_u64(),
            Rng::for_record(43, 1, 7).next_u64()
        );
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            let v = r.range(-3, 5);
            assert!((-3..=5).contains(&v));
            assert!(r.below(7) < 7);
            let f = r.f64();
            assert!((0.0..1.0).contains(&f));
        }
        assert_eq!(r.range(4, 4), 4);
        assert_eq!(r.weighted(&[("only", 1)]), "only");
    }

    #[test]
    fn weighted_follows_weights() {
        let mut r = Rng::new(9);
        let hits = (0..10_000)
            .filter(|_| r.weighted(&[(true, 1), (false, 3)]))
            .count();
        assert!((2_000..3_000).contains(&hits), "{hits}");
    }
}
