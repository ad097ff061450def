//! The compiled-regex budget of one configuration.
//!
//! Each regex has a size limit, and so do all of them together: 100 regexes of `.{65535}`
//! are each fine alone and together exhaust the VM in `on_configure`. regex-lite does not
//! report what a regex cost, so each is compiled under a limit that doubles from
//! [`MIN_CHARGE`] until it fits, and the limit it fitted under is charged: at most twice its
//! real size, and the failed attempts stop early, so configuring costs at most about twice
//! the budget's worth of compiling. A regex that would exceed what is left is refused with
//! its field path before it is compiled in full.

use regex_lite::{Regex, RegexBuilder};

use crate::error::ConfigErrorKind;

/// The most one regex may compile to, in regex-lite's bytes (about 32 per state).
pub const REGEX_SIZE_LIMIT: usize = 128 * 1024;
/// The most all regexes of one configuration may compile to together.
pub const REGEX_TOTAL_LIMIT: usize = 2 * 1024 * 1024;
/// The most regexes one configuration may have.
pub const REGEX_COUNT_LIMIT: usize = 4096;
/// The least a regex is charged: the budget's count limit in bytes.
pub const MIN_CHARGE: usize = REGEX_TOTAL_LIMIT / REGEX_COUNT_LIMIT;

/// What the regexes compiled so far have used of the budget.
#[derive(Debug, Clone, Default)]
pub struct RegexBudget {
    charged: usize,
    count: usize,
}

impl RegexBudget {
    /// Compiles `pattern` (already anchored) and charges it, or says why not.
    pub fn compile(&mut self, pattern: &str) -> Result<Regex, ConfigErrorKind> {
        if self.count >= REGEX_COUNT_LIMIT {
            return Err(ConfigErrorKind::RegexBudget);
        }
        let left = REGEX_TOTAL_LIMIT.saturating_sub(self.charged);
        let cap = REGEX_SIZE_LIMIT.min(left);
        let mut limit = MIN_CHARGE.min(cap);
        loop {
            match RegexBuilder::new(pattern).size_limit(limit).build() {
                Ok(re) => {
                    self.charged += limit;
                    self.count += 1;
                    return Ok(re);
                }
                Err(e) if !is_size_error(&e) => {
                    return Err(ConfigErrorKind::InvalidRegex(e.to_string()))
                }
                Err(_) if limit < cap => limit = (limit * 2).min(cap),
                Err(_) if cap < REGEX_SIZE_LIMIT => return Err(ConfigErrorKind::RegexBudget),
                Err(_) => return Err(ConfigErrorKind::RegexTooLarge),
            }
        }
    }

    /// Bytes charged so far.
    pub fn charged(&self) -> usize {
        self.charged
    }
}

fn is_size_error(e: &regex_lite::Error) -> bool {
    e.to_string().contains("size limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_regexes_are_charged_the_minimum() {
        let mut b = RegexBudget::default();
        b.compile("^(?:[0-9]+)$").unwrap();
        assert_eq!(b.charged(), MIN_CHARGE);
    }

    #[test]
    fn one_regex_over_its_limit_is_refused_as_too_large() {
        let mut b = RegexBudget::default();
        assert_eq!(
            b.compile(".{65535}").unwrap_err(),
            ConfigErrorKind::RegexTooLarge
        );
        assert_eq!(b.charged(), 0, "a refused regex costs nothing");
    }

    #[test]
    fn regexes_that_fit_alone_are_refused_together() {
        let mut b = RegexBudget::default();
        let each = ".{1500}/x"; // under the per-regex limit
        let mut accepted = 0;
        let err = loop {
            match b.compile(each) {
                Ok(_) => accepted += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, ConfigErrorKind::RegexBudget);
        assert!(
            (8..=32).contains(&accepted),
            "{accepted} regexes of up to 128 KiB fit a 2 MiB budget"
        );
        assert!(b.charged() <= REGEX_TOTAL_LIMIT);
    }

    #[test]
    fn the_count_is_bounded() {
        let mut b = RegexBudget::default();
        for _ in 0..REGEX_COUNT_LIMIT {
            b.compile("a").unwrap();
        }
        assert_eq!(b.compile("a").unwrap_err(), ConfigErrorKind::RegexBudget);
    }

    #[test]
    fn syntax_errors_are_not_budget_errors() {
        let mut b = RegexBudget::default();
        assert!(matches!(
            b.compile("(").unwrap_err(),
            ConfigErrorKind::InvalidRegex(_)
        ));
    }
}
