//! The router's counters, defined on first use (a config of 10,000 rules defines only what
//! traffic reaches). Envoy shows them in `/stats` with the `wasmcustom.` prefix:
//! `wasmgate.router.host.<host>.rule.<i>.matched`, `wasmgate.router.host.<host>.local_reply.<status>`,
//! `wasmgate.router.host.<host>.redirect` and `wasmgate.router.no_match`.
//!
//! The hot ones (a rule matched, nothing matched) keep their metric id in a slot per rule, so
//! a request formats no name and looks nothing up by string once its rule has been counted.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::hostcalls::{define_counter as define, increment_counter as increment};

#[derive(Clone, Copy, Default)]
enum Slot {
    #[default]
    Undefined,
    Defined(u32),
    /// The host refused the definition; not retried per request.
    Failed,
}

/// One counter whose id is cached after its first definition.
#[derive(Default)]
pub struct Counter(Cell<Slot>);

impl Counter {
    /// Adds one, defining the counter as `name()` the first time.
    pub fn inc(&self, name: impl FnOnce() -> String) {
        let id = match self.0.get() {
            Slot::Defined(id) => id,
            Slot::Failed => return,
            Slot::Undefined => match define(&name()) {
                Some(id) => {
                    self.0.set(Slot::Defined(id));
                    id
                }
                None => {
                    self.0.set(Slot::Failed);
                    return;
                }
            },
        };
        increment(id);
    }
}

/// Metric ids of this worker: one slot per rule for `matched`, and the rarer counters by name.
pub struct Counters {
    pub rule_matched: Vec<Counter>,
    pub no_match: Counter,
    by_name: RefCell<HashMap<String, Option<u32>>>,
}

impl Counters {
    pub fn new(rules: usize) -> Self {
        Counters {
            rule_matched: (0..rules).map(|_| Counter::default()).collect(),
            no_match: Counter::default(),
            by_name: RefCell::default(),
        }
    }

    /// Adds one to the counter `name`, defining it the first time (local replies, redirects).
    pub fn inc(&self, name: String) {
        let Ok(mut ids) = self.by_name.try_borrow_mut() else {
            return;
        };
        let id = *ids.entry(name).or_insert_with_key(|name| define(name));
        if let Some(id) = id {
            increment(id);
        }
    }
}
