//! Header conditions: a value (exact or regex), present, or absent. Names are lower-case.

use crate::request::RequestView;

use super::value::ValueMatch;

#[derive(Debug)]
pub(crate) enum HeaderCond {
    /// The first value of the header matches.
    Value(String, ValueMatch),
    Present(String),
    Absent(String),
}

impl HeaderCond {
    pub(crate) fn holds(&self, req: &RequestView<'_>) -> bool {
        match self {
            HeaderCond::Value(n, m) => req.header(n).is_some_and(|v| m.holds(v)),
            HeaderCond::Present(n) => req.header(n).is_some(),
            HeaderCond::Absent(n) => req.header(n).is_none(),
        }
    }
}
