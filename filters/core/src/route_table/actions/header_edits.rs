//! A rule's or a backend's header edits, compiled: lower-case names, templated values.

use crate::route_table::outcome::HeaderEdits;
use crate::template::{Captures, Template};

#[derive(Debug, Default)]
pub(crate) struct CompiledEdits {
    pub(crate) set: Vec<(String, Template)>,
    pub(crate) add: Vec<(String, Template)>,
    pub(crate) remove: Vec<String>,
}

impl CompiledEdits {
    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    pub(crate) fn render<'t>(&'t self, caps: &Captures<'_>) -> HeaderEdits<'t> {
        let render = |v: &'t Vec<(String, Template)>| {
            v.iter()
                .map(|(n, t)| (n.as_str(), t.render(caps)))
                .collect()
        };
        HeaderEdits {
            set: render(&self.set),
            add: render(&self.add),
            remove: &self.remove,
        }
    }
}
