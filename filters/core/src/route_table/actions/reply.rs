//! The seed's `statusCode` action: a local reply with a fixed status, headers and body.

use crate::route_table::outcome::{Outcome, Reply, RuleRef};
use crate::template::{Captures, Template};

#[derive(Debug)]
pub(crate) struct ReplyAction {
    pub(crate) status: u16,
    /// The action's headers, then the rule's response header edits (set, then add).
    pub(crate) headers: Vec<(String, Template)>,
    pub(crate) body: String,
}

impl ReplyAction {
    pub(crate) fn act<'t>(&'t self, at: RuleRef, caps: &Captures<'_>) -> Outcome<'t> {
        Outcome::Reply(Reply {
            rule: Some(at),
            status: self.status,
            redirect: false,
            headers: self
                .headers
                .iter()
                .map(|(n, t)| (n.as_str(), t.render(caps)))
                .collect(),
            body: &self.body,
        })
    }
}
