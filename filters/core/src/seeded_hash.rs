//! The hasher of the route tables: a folded multiply per 8 bytes, a finishing mix, and a
//! random seed per table.
//!
//! Operators choose the keys, but requests choose what is probed: with a hash whose low bits
//! (the ones that pick a bucket) depend only on a key's first bytes, keys such as `/s00000`
//! .. `/s09999` share one bucket and a crafted path walks the whole chain. The folded
//! multiply feeds the high half of each 128-bit product back into the low half, so every
//! input bit reaches the bucket bits, and the seed, drawn from the host's `random_get` (std's
//! `RandomState` reads it in a `.wasm`, the OS natively), differs per VM: which lookups land
//! on which probe sequence cannot be computed from outside. SipHash would do the same at
//! several times the cost per path element; this costs one multiply per 8 bytes.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Odd constants with well-spread bits (hexadecimal digits of pi).
const MULTIPLE: u64 = 0x243f_6a88_85a3_08d3;
const FINISH: u64 = 0x1319_8a2e_0370_7345;

/// The high and low halves of the 128-bit product, folded together.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Builds hashers that share one random seed: one per table.
#[derive(Clone, Copy, Debug)]
pub struct SeededState {
    start: u64,
    pad: u64,
}

impl SeededState {
    /// A fixed seed, for tests that must be reproducible.
    pub fn with_seed(start: u64, pad: u64) -> Self {
        SeededState { start, pad }
    }
}

impl Default for SeededState {
    fn default() -> Self {
        // std's RandomState keys come from random_get (per VM) and change on every call.
        let random = RandomState::new();
        SeededState {
            start: random.hash_one(0x5eed_u64),
            pad: random.hash_one(0xfeed_u64),
        }
    }
}

impl BuildHasher for SeededState {
    type Hasher = SeededHasher;

    #[inline]
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher {
            acc: self.start,
            pad: self.pad,
        }
    }
}

pub struct SeededHasher {
    acc: u64,
    pad: u64,
}

impl SeededHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.acc = fold(self.acc ^ word, MULTIPLE);
    }
}

impl Hasher for SeededHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            if let Some(dst) = w.get_mut(..rest.len()) {
                dst.copy_from_slice(rest);
            }
            // The tail's length in the top byte tells `ab` from `ab\0`.
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The finishing mix: without it the last word's high bits never reach the low bits.
        fold(self.acc ^ self.pad, FINISH)
    }
}

pub type SeededHashMap<K, V> = std::collections::HashMap<K, V, SeededState>;
