//! Weighted rendezvous hashing: every (key, member) pair gets a score `-w / ln(h)` with
//! `h` uniform in (0, 1); the key goes to the best score.
//!
//! A member's score for a key never depends on the other members, so removing a member moves
//! only the keys it held (its share), and adding one takes only the keys it now wins. The
//! score's distribution makes each member win with probability `w / sum(w)`.

/// FNV-1a, finished with a strong mixer so short keys spread over all 64 bits.
pub fn hash_bytes(bytes: &[u8], salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// MurmurHash3's 64-bit finaliser: a bijection that avalanches every input bit.
pub fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// A hash as a number strictly inside (0, 1).
pub fn unit(h: u64) -> f64 {
    // 52 bits keep `x + 0.5` exact in an f64, so the result never rounds to 1.0.
    ((h >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
}

/// The score of a member (identified by its name hash) for a key, at `weight`.
pub fn score(key: u64, member: u64, weight: f64) -> f64 {
    // -ln(h) > 0 because h < 1; a larger weight shrinks the score's "distance".
    weight / -unit(mix(key ^ member)).ln()
}

/// The candidate with the best score; candidates are (index, member hash, weight > 0).
pub fn pick(key: u64, candidates: impl Iterator<Item = (usize, u64, f64)>) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, member, weight) in candidates {
        if weight <= 0.0 {
            continue;
        }
        let s = score(key, member, weight);
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_strictly_inside_zero_and_one() {
        assert!(unit(0) > 0.0);
        assert!(unit(u64::MAX) < 1.0);
    }

    #[test]
    fn removing_a_member_moves_only_its_keys() {
        let members: Vec<u64> = (0..5)
            .map(|i| hash_bytes(format!("m{i}").as_bytes(), 1))
            .collect();
        let w = [1.0, 2.0, 3.0, 1.0, 1.0];
        let all = |k: u64| pick(k, (0..5).map(|i| (i, members[i], w[i]))).unwrap();
        let without2 =
            |k: u64| pick(k, (0..5).filter(|&i| i != 2).map(|i| (i, members[i], w[i]))).unwrap();
        for k in 0..10_000u64 {
            let key = hash_bytes(&k.to_le_bytes(), 0);
            let (a, b) = (all(key), without2(key));
            if a != 2 {
                assert_eq!(a, b, "key {k} moved between remaining members");
            }
        }
    }
}
