//! The route tables' hash stays flat on adversarial key sets: a lookup of a stored key, or of
//! a key a client makes up from the same family, visits few groups of the SwissTable however
//! the operator's keys are shaped, natively (groups of 16, 64-bit hashes) and in wasm32
//! (groups of 4 control bytes, 32-bit hashes). The hash the tables used before fails the
//! same bound, so the bound is what catches a weak hash.

use wasmgate_core::seeded_hash::SeededState;
use wasmgate_harness::hash_keysets::{probe_stats, OldFxHasher, ProbeStats, KEY_SETS};

const KEYS: usize = 10_000;
/// (group width, hash bits, most groups a lookup may visit, most on average).
const LAYOUTS: &[(usize, u32, usize, f64)] = &[(16, 64, 4, 1.1), (4, 32, 16, 1.5)];

fn within(stats: &ProbeStats, max: usize, mean: f64) -> bool {
    stats.max_groups <= max && stats.mean_groups <= mean
}

#[test]
fn lookups_probe_few_groups_for_every_adversarial_key_set_and_seed() {
    let mut failures = Vec::new();
    for seed in 0..4u64 {
        // Fixed seeds (reproducible) and one drawn as the filter draws it.
        let state = if seed == 0 {
            SeededState::default()
        } else {
            SeededState::with_seed(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), seed)
        };
        for set in KEY_SETS {
            for &(width, bits, max, mean) in LAYOUTS {
                let s = probe_stats(set, KEYS, &state, width, bits);
                if std::env::var_os("WASMGATE_PRINT_PROBES").is_some() {
                    println!("seed {seed}, {}, width {width}: {s:?}", set.name);
                }
                if !within(&s, max, mean) {
                    failures.push(format!("seed {seed}, {}, width {width}: {s:?}", set.name));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_old_hash_fails_the_bound_on_the_colliding_sets() {
    let old = std::hash::BuildHasherDefault::<OldFxHasher>::default();
    for name in ["equal length /s{i:05}", "old-hash colliders"] {
        let set = KEY_SETS.iter().find(|s| s.name == name).unwrap();
        let (width, bits, max, mean) = LAYOUTS[0];
        // Fewer keys: the old hash's clusters make the model quadratic, and fail it already.
        let s = probe_stats(set, 2_000, &old, width, bits);
        assert!(
            !within(&s, max, mean),
            "{name}: the old hash passed the bound ({s:?}): the test would not catch it"
        );
    }
}

#[test]
fn every_table_draws_its_own_seed() {
    let a = SeededState::default();
    let b = SeededState::default();
    let key = |s: &SeededState| wasmgate_harness::hash_keysets::path_hash(s, "/svc1");
    assert_ne!(key(&a), key(&b), "the seed must be drawn per table");
    assert_eq!(key(&a), key(&a));
}
