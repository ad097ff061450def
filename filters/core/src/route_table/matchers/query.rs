//! Query parameter conditions: the first value of a parameter, exact or regex.

use crate::request::query_param;

use super::value::ValueMatch;

#[derive(Debug)]
pub(crate) struct QueryCond {
    pub(crate) name: String,
    pub(crate) value: ValueMatch,
}

impl QueryCond {
    /// `query` is the request's query string, without the `?`; none never matches.
    pub(crate) fn holds(&self, query: Option<&[u8]>) -> bool {
        query
            .and_then(|qs| query_param(qs, &self.name))
            .is_some_and(|v| self.value.holds(v))
    }
}
