//! A value condition shared by header and query parameter matches: exact bytes, or a
//! regular expression over the whole value.

use regex_lite::Regex;

#[derive(Debug)]
pub(crate) enum ValueMatch {
    Exact(Box<[u8]>),
    Regex(Regex),
}

impl ValueMatch {
    /// A regular expression never matches a value that is not UTF-8.
    pub(crate) fn holds(&self, v: &[u8]) -> bool {
        match self {
            ValueMatch::Exact(e) => v == &**e,
            ValueMatch::Regex(r) => std::str::from_utf8(v).is_ok_and(|s| r.is_match(s)),
        }
    }
}

/// A full match: the pattern anchored at both ends, as Gateway API's `RegularExpression`
/// matches mean.
pub(crate) fn anchored(re: &str) -> String {
    format!("^(?:{re})$")
}
