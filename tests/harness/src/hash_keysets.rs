//! Adversarial key sets for the route tables' hash, and a model of how many probes a lookup
//! costs in the hash map the tables use (std's, a SwissTable).
//!
//! The sets are the shapes operators write and attackers aim at: sequential numbers, keys of
//! equal length, a long shared prefix, and keys whose last 8-byte word starts with the same
//! two bytes, which the old multiplicative hash without a finishing mix put in one bucket.

use std::hash::{BuildHasher, Hasher};

/// One adversarial family: a name and the `i`-th path prefix of it.
#[derive(Debug, Clone, Copy)]
pub struct KeySet {
    pub name: &'static str,
    pub key: fn(usize) -> String,
}

pub const KEY_SETS: &[KeySet] = &[
    KeySet {
        name: "sequential /svc{i}",
        key: |i| format!("/svc{i}"),
    },
    KeySet {
        name: "equal length /s{i:05}",
        key: |i| format!("/s{i:05}"),
    },
    KeySet {
        name: "shared 32-byte prefix",
        key: |i| format!("/api/v1/tenants/acme/projects/x/{i}"),
    },
    KeySet {
        name: "old-hash colliders",
        // 16 bytes; the second word always starts with `/z`: one bucket under the old hash.
        key: |i| format!("/tenant//z{i:06}"),
    },
];

/// The multiplicative hash the tables used before (no finishing mix, fixed seed), kept to
/// show that the probe bound catches it.
#[derive(Default)]
pub struct OldFxHasher(u64);

impl Hasher for OldFxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl OldFxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Hashes a path key exactly as the route table does (`Box<[u8]>`).
pub fn path_hash(state: &impl BuildHasher, key: &str) -> u64 {
    let key: Box<[u8]> = key.as_bytes().into();
    state.hash_one(&key)
}

/// Probes per lookup in a SwissTable holding `stored`, as std's HashMap lays it out: the
/// smallest power-of-two bucket count that holds them at 7/8 load, groups of `width`
/// control bytes, triangular probing from `hash & mask`, the tag being the hash's top 7
/// bits (of the low `hash_bits`: 64 natively, 32 in wasm32).
pub struct SwissModel {
    width: usize,
    hash_bits: u32,
    mask: usize,
    slots: Vec<Option<u8>>,
}

/// What lookups cost: groups visited and key comparisons (tag matches), max and mean.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeStats {
    pub max_groups: usize,
    pub mean_groups: f64,
    pub max_compares: usize,
    pub mean_compares: f64,
}

impl SwissModel {
    pub fn build(stored: &[u64], width: usize, hash_bits: u32) -> Self {
        let mut buckets = width.max(4);
        while buckets * 7 / 8 < stored.len() {
            buckets *= 2;
        }
        let mut m = SwissModel {
            width,
            hash_bits,
            mask: buckets - 1,
            slots: vec![None; buckets],
        };
        for &h in stored {
            let tag = m.tag(h);
            let slot = m.walk(h, |pos| {
                (0..m.width)
                    .map(|i| (pos + i) & m.mask)
                    .find(|&s| m.slots[s].is_none())
            });
            if let Some(s) = slot {
                m.slots[s] = Some(tag);
            }
        }
        m
    }

    fn tag(&self, h: u64) -> u8 {
        let h = if self.hash_bits == 64 {
            h
        } else {
            h & 0xffff_ffff
        };
        (h >> (self.hash_bits - 7)) as u8
    }

    /// Visits the probe sequence of `h` group by group (the group's first slot) until
    /// `visit` returns `Some`.
    fn walk<R>(&self, h: u64, mut visit: impl FnMut(usize) -> Option<R>) -> Option<R> {
        let mut pos = (h as usize) & self.mask;
        let mut stride = 0;
        for _ in 0..=self.mask {
            if let Some(r) = visit(pos) {
                return Some(r);
            }
            stride += self.width;
            pos = (pos + stride) & self.mask;
        }
        None
    }

    /// Groups visited and tag matches for a lookup of `h`: a hit (`present`) stops at the
    /// first group holding its tag (the model keeps no keys), a miss at the first group with
    /// an empty slot.
    pub fn lookup(&self, h: u64, present: bool) -> (usize, usize) {
        let tag = self.tag(h);
        let mut groups = 0;
        let mut compares = 0;
        let _ = self.walk(h, |pos| {
            groups += 1;
            let group = (0..self.width).map(|i| self.slots[(pos + i) & self.mask]);
            let matches = group.clone().filter(|s| *s == Some(tag)).count();
            if present && matches > 0 {
                compares += 1;
                return Some(());
            }
            compares += matches;
            group.clone().any(|s| s.is_none()).then_some(())
        });
        (groups, compares)
    }

    /// Stats over lookups of every stored hash (hits) and of `absent` (misses).
    pub fn stats(&self, stored: &[u64], absent: &[u64]) -> ProbeStats {
        let all: Vec<(usize, usize)> = stored
            .iter()
            .map(|&h| self.lookup(h, true))
            .chain(absent.iter().map(|&h| self.lookup(h, false)))
            .collect();
        let n = all.len().max(1) as f64;
        ProbeStats {
            max_groups: all.iter().map(|p| p.0).max().unwrap_or(0),
            mean_groups: all.iter().map(|p| p.0).sum::<usize>() as f64 / n,
            max_compares: all.iter().map(|p| p.1).max().unwrap_or(0),
            mean_compares: all.iter().map(|p| p.1).sum::<usize>() as f64 / n,
        }
    }
}

/// Probe stats of `n` keys of `set` stored under `state`, looked up all, plus `n` misses
/// from the same family (keys `n..2n`, what a client can send without knowing the table).
pub fn probe_stats(
    set: &KeySet,
    n: usize,
    state: &impl BuildHasher,
    width: usize,
    hash_bits: u32,
) -> ProbeStats {
    let stored: Vec<u64> = (0..n).map(|i| path_hash(state, &(set.key)(i))).collect();
    let absent: Vec<u64> = (n..2 * n)
        .map(|i| path_hash(state, &(set.key)(i)))
        .collect();
    SwissModel::build(&stored, width, hash_bits).stats(&stored, &absent)
}
