//! State one host shares between all its VMs: the virtual clock, shared data (per `vm_id`),
//! shared queues, metrics and the scripted upstream clusters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::upstreams::Upstreams;

/// 2024-01-01T00:00:00Z: a fixed start so runs are reproducible.
pub(crate) const EPOCH_START_NANOS: u64 = 1_704_067_200_000_000_000;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not wedge every other test sharing the host.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kind of a metric defined by `proxy_define_metric`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// Current value of a metric, as a test reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub kind: MetricKind,
    /// Counter total or gauge value.
    pub value: i64,
    /// Every value recorded into a histogram.
    pub samples: Vec<u64>,
}

/// key -> (value, cas)
pub(crate) type KeyValues = HashMap<Vec<u8>, (Vec<u8>, u32)>;

#[derive(Default)]
pub(crate) struct SharedData {
    /// vm_id -> its key-value space
    pub maps: HashMap<String, KeyValues>,
    pub next_cas: u32,
}

impl SharedData {
    pub fn get(&self, vm_id: &str, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        self.maps.get(vm_id)?.get(key).cloned()
    }

    /// Envoy semantics: cas 0 writes unconditionally; otherwise it must match the stored cas.
    /// A missing key accepts any cas.
    pub fn set(&mut self, vm_id: &str, key: &[u8], value: &[u8], cas: u32) -> bool {
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        let new_cas = self.next_cas;
        let map = self.maps.entry(vm_id.to_string()).or_default();
        match map.get_mut(key) {
            Some(entry) => {
                if cas != 0 && cas != entry.1 {
                    return false;
                }
                *entry = (value.to_vec(), new_cas);
            }
            None => {
                map.insert(key.to_vec(), (value.to_vec(), new_cas));
            }
        }
        true
    }
}

pub(crate) struct Queue {
    pub owner_vm: u64,
    pub owner_context: u32,
    pub items: VecDeque<Vec<u8>>,
}

#[derive(Default)]
pub(crate) struct Queues {
    pub by_name: HashMap<(String, Vec<u8>), u32>,
    pub queues: HashMap<u32, Queue>,
    pub next_token: u32,
    /// Pending `proxy_on_queue_ready` notifications: (vm uid, context, token).
    pub ready: Vec<(u64, u32, u32)>,
}

#[derive(Default)]
pub(crate) struct Metrics {
    pub by_name: BTreeMap<String, Metric>,
}

pub(crate) struct Shared {
    clock: AtomicU64,
    pub shared_data: Mutex<SharedData>,
    pub queues: Mutex<Queues>,
    pub metrics: Mutex<Metrics>,
    pub upstreams: Mutex<Upstreams>,
    next_vm_uid: AtomicU64,
    pub seed: u64,
}

impl Shared {
    pub fn new(seed: u64) -> Self {
        Shared {
            clock: AtomicU64::new(EPOCH_START_NANOS),
            shared_data: Mutex::default(),
            queues: Mutex::default(),
            metrics: Mutex::default(),
            upstreams: Mutex::default(),
            next_vm_uid: AtomicU64::new(1),
            seed,
        }
    }

    /// Virtual wall-clock time in nanoseconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Moves the clock forward (never back).
    pub fn advance_to(&self, t: u64) {
        self.clock.fetch_max(t, Ordering::SeqCst);
    }

    pub fn next_vm_uid(&self) -> u64 {
        self.next_vm_uid.fetch_add(1, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_data_cas_rules() {
        let mut d = SharedData::default();
        assert!(d.set("vm", b"k", b"1", 77), "missing key accepts any cas");
        let (_, cas) = d.get("vm", b"k").unwrap();
        assert!(!d.set("vm", b"k", b"2", cas + 1), "stale cas is refused");
        assert!(d.set("vm", b"k", b"3", cas), "current cas is accepted");
        assert!(d.set("vm", b"k", b"4", 0), "cas 0 is unconditional");
        assert_eq!(d.get("vm", b"k").unwrap().0, b"4");
        assert_eq!(d.get("other", b"k"), None, "data is per vm_id");
    }
}
