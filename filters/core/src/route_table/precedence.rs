//! Gateway API's precedence among the rule matches that share one path.
//!
//! The path decides first, by the order in which the path index is tried
//! ([`super::matchers::path`]): an exact path, then a matchit pattern, then a regular
//! expression, then prefixes from the longest. Among the candidates of one path, this type
//! decides, field by field in the order of its derived `Ord`.

use std::cmp::Reverse;

/// The smaller value wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Precedence {
    /// A match on the method wins over one without (`false` sorts first),
    without_method: bool,
    /// then the one with more header matches,
    headers: Reverse<usize>,
    /// then the one with more query parameter matches,
    query_params: Reverse<usize>,
    /// then the one configured first.
    order: usize,
}

impl Precedence {
    pub(crate) fn new(has_method: bool, headers: usize, query_params: usize, order: usize) -> Self {
        Precedence {
            without_method: !has_method,
            headers: Reverse(headers),
            query_params: Reverse(query_params),
            order,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Precedence;

    #[test]
    fn method_then_headers_then_query_then_configuration_order() {
        // (has a method, header matches, query matches, order), highest precedence first.
        let ranked = [
            Precedence::new(true, 0, 0, 9),
            Precedence::new(false, 2, 0, 8),
            Precedence::new(false, 1, 5, 7),
            Precedence::new(false, 1, 1, 6),
            Precedence::new(false, 1, 1, 7),
            Precedence::new(false, 0, 0, 0),
        ];
        let mut sorted = ranked;
        sorted.reverse();
        sorted.sort();
        assert_eq!(sorted, ranked);
    }
}
