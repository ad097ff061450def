//! The router's counters, defined on first use (a config of 10,000 rules defines only what
//! traffic reaches). Envoy shows them in `/stats` with the `wasmcustom.` prefix:
//! `wasmgate.router.host.<host>.rule.<i>.matched`, `wasmgate.router.host.<host>.local_reply.<status>`,
//! `wasmgate.router.host.<host>.redirect` and `wasmgate.router.no_match`.

use std::cell::RefCell;
use std::collections::HashMap;

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Metric ids of this worker, by name.
#[derive(Default)]
pub struct Counters {
    ids: RefCell<HashMap<String, Option<u32>>>,
}

impl Counters {
    /// Adds one to the counter `name`, defining it the first time.
    pub fn inc(&self, name: impl Into<String>) {
        let Ok(mut ids) = self.ids.try_borrow_mut() else {
            return;
        };
        let id =
            *ids.entry(name.into()).or_insert_with_key(|name| {
                match hostcalls::define_metric(MetricType::Counter, name) {
                    Ok(id) => Some(id),
                    Err(status) => {
                        warn!("wasmgate.router: cannot define metric {name}: {status:?}");
                        None
                    }
                }
            });
        if let Some(id) = id {
            if let Err(status) = hostcalls::increment_metric(id, 1) {
                warn!("wasmgate.router: cannot increment metric {id}: {status:?}");
            }
        }
    }
}
