//! Weighted random choice over a fixed set.

use crate::request::Random;

/// Cumulative weights; a zero weight is never chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedSet {
    cumulative: Vec<u64>,
}

impl WeightedSet {
    pub fn new(weights: impl IntoIterator<Item = u32>) -> Self {
        let mut total = 0u64;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += u64::from(w);
                total
            })
            .collect();
        WeightedSet { cumulative }
    }

    pub fn cumulative(&self) -> &[u64] {
        &self.cumulative
    }

    pub fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The chosen index, or `None` when every weight is zero.
    pub fn pick(&self, rng: &mut dyn Random) -> Option<usize> {
        match self.cumulative.as_slice() {
            [] => None,
            [only] => (*only > 0).then_some(0),
            _ => {
                let total = self.total();
                if total == 0 {
                    return None;
                }
                let r = rng.below(total);
                // The first index whose cumulative weight exceeds r; zero weights add no width.
                Some(self.cumulative.partition_point(|&c| c <= r))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::FixedRandom;

    #[test]
    fn zero_weights_are_never_chosen() {
        let set = WeightedSet::new([0, 3, 0, 1, 0]);
        for (r, want) in [(0.0, 1), (0.5, 1), (0.74, 1), (0.75, 3), (0.999, 3)] {
            assert_eq!(set.pick(&mut FixedRandom(r)), Some(want), "r={r}");
        }
        assert_eq!(WeightedSet::new([0, 0]).pick(&mut FixedRandom(0.5)), None);
        assert_eq!(WeightedSet::new([0]).pick(&mut FixedRandom(0.5)), None);
    }
}
