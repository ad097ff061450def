//! What a request is matched on, one module per matcher: the host, the path, the method,
//! headers and query parameters. A `Candidate` is one configured match of a rule: its
//! path decides where it sits in the path index, the other conditions are checked here.

pub(crate) mod header;
pub mod host;
pub(crate) mod method;
pub(crate) mod path;
pub(crate) mod query;
pub(crate) mod value;

use regex_lite::Regex;

use crate::request::RequestView;

use super::precedence::Precedence;
use header::HeaderCond;
use method::MethodCond;
use query::QueryCond;

/// One match of a rule, filed in the path index under its path.
#[derive(Debug)]
pub(crate) struct Candidate {
    /// The rule's index in the table.
    pub(crate) rule: usize,
    pub(crate) precedence: Precedence,
    /// Length of the matched prefix, for `ReplacePrefixMatch`.
    pub(crate) prefix_len: usize,
    /// A regular-expression path, which no index can key: checked per candidate. (In the
    /// candidate rather than beside it, so every list sorts with one instantiation of the
    /// sort: the .wasm is smaller.)
    pub(crate) path_regex: Option<Regex>,
    method: Option<MethodCond>,
    headers: Vec<HeaderCond>,
    query: Vec<QueryCond>,
}

impl Candidate {
    /// `order` is the match's place in the configuration, the last tie-breaker.
    pub(crate) fn new(
        rule: usize,
        order: usize,
        method: Option<MethodCond>,
        headers: Vec<HeaderCond>,
        query: Vec<QueryCond>,
    ) -> Self {
        Candidate {
            rule,
            precedence: Precedence::new(method.is_some(), headers.len(), query.len(), order),
            prefix_len: 0,
            path_regex: None,
            method,
            headers,
            query,
        }
    }

    pub(crate) fn path_regex_matches(&self, path: &str) -> bool {
        self.path_regex.as_ref().is_some_and(|r| r.is_match(path))
    }

    /// Whether the method, header and query conditions hold (the path already matched).
    pub(crate) fn conditions_hold(&self, req: &RequestView<'_>, query: Option<&[u8]>) -> bool {
        self.method.as_ref().is_none_or(|m| m.holds(req.method))
            && self.headers.iter().all(|h| h.holds(req))
            && self.query.iter().all(|q| q.holds(query))
    }
}
