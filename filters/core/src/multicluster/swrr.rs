//! Smooth weighted round robin (nginx's): exact shares per worker without randomness.
//!
//! Each pick adds every member's weight to its counter, takes the largest counter and
//! subtracts the total from it. Counters stay bounded, so after N picks every member has
//! `N x weight / total` picks give or take a constant: exact over time, and interleaved
//! rather than in bursts.

use crate::request::Random;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swrr {
    current: Vec<i64>,
}

impl Swrr {
    pub fn new(len: usize) -> Self {
        Swrr {
            current: vec![0; len],
        }
    }

    pub fn len(&self) -> usize {
        self.current.len()
    }

    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// Starts every counter at a random point below its weight, so workers that start together
    /// do not all send their first request to the same member. Shares stay exact.
    pub fn randomize(&mut self, weights: &[u64], rng: &mut dyn Random) {
        for (c, &w) in self.current.iter_mut().zip(weights) {
            *c = if w > 0 { rng.below(w) as i64 } else { 0 };
        }
    }

    /// The next member; `None` when every weight is zero. `weights.len()` must equal `len()`
    /// (extra weights are ignored, missing ones count as zero).
    pub fn pick(&mut self, weights: &[u64]) -> Option<usize> {
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for (i, (c, &w)) in self.current.iter_mut().zip(weights).enumerate() {
            if w == 0 {
                continue;
            }
            let w = w as i64;
            *c += w;
            total += w;
            if best.is_none_or(|(_, b)| *c > b) {
                best = Some((i, *c));
            }
        }
        let (i, _) = best?;
        if let Some(c) = self.current.get_mut(i) {
            *c -= total;
        }
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_exact_over_each_cycle_and_interleaved() {
        let weights = [5u64, 1, 1];
        let mut s = Swrr::new(3);
        let seq: Vec<usize> = (0..7).map(|_| s.pick(&weights).unwrap()).collect();
        assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0]);
        let mut counts = [0; 3];
        for _ in 0..700 {
            counts[s.pick(&weights).unwrap()] += 1;
        }
        assert_eq!(counts, [500, 100, 100]);
    }

    #[test]
    fn zero_weights_are_skipped_and_all_zero_is_none() {
        let mut s = Swrr::new(3);
        for _ in 0..10 {
            assert_eq!(s.pick(&[0, 4, 0]), Some(1));
        }
        assert_eq!(s.pick(&[0, 0, 0]), None);
    }
}
