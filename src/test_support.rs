//! What the unit tests of several modules share: a pseudo-random sequence for generated
//! inputs, the same on every run.

/// A linear congruential sequence from `seed` (Knuth's MMIX constants), its high bits.
pub(crate) fn pseudo_random(seed: u64) -> impl FnMut() -> usize {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    }
}
