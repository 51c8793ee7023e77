//! The deterministic stand-in for Go's random sources.
//!
//! Sprig's `randAlpha`, `shuffle`, `uuidv4`, `htpasswd`, `genPrivateKey` and the certificate
//! functions draw from crypto/rand, so Helm's output differs on every run. Here they draw from
//! a SplitMix64 sequence kept per thread, seeded with [`DEFAULT_SEED`]: two renders in the same
//! order give the same text. [`reset`] starts the sequence again (call it before each render).

use std::cell::Cell;

/// The seed the sequence starts from on every thread.
pub const DEFAULT_SEED: u64 = 0x5EED_5EED_5EED_5EED;

thread_local! {
    static STATE: Cell<u64> = const { Cell::new(DEFAULT_SEED) };
}

/// Restarts this thread's sequence from `seed`.
pub fn reset(seed: u64) {
    STATE.with(|state| state.set(seed));
}

/// The next 64 random bits.
pub(crate) fn next_u64() -> u64 {
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        let mut mixed = next;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    })
}

/// A number in `0..bound` (`bound` > 0).
pub(crate) fn below(bound: usize) -> usize {
    let bound = bound.max(1) as u64;
    usize::try_from(next_u64() % bound).unwrap_or(0)
}

/// `count` random bytes.
pub(crate) fn bytes(count: usize) -> Vec<u8> {
    (0..count).map(|_| next_u64().to_le_bytes()[0]).collect()
}
