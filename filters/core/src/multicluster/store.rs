//! Shared data as the filters see it: a key-value store with compare-and-swap, like
//! proxy-wasm's `get_shared_data` / `set_shared_data` (one store per `vm_id`, shared by every
//! worker). The balancer implements [`SharedStore`] with host calls; tests use [`MemoryStore`].

use std::cell::RefCell;
use std::collections::HashMap;

use super::health::HealthState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Someone wrote the key since we read it: read again and retry.
    CasMismatch,
    /// The host refused (or the retries ran out).
    Failed,
}

pub trait SharedStore {
    /// The value and its cas token; a missing key is `(None, 0)`.
    fn get(&self, key: &str) -> (Option<Vec<u8>>, u32);
    /// Writes if the key's cas token is still `cas` (0 = unconditionally).
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

/// An in-memory store with Envoy's cas semantics, for native tests. Share it between
/// simulated workers with `Rc`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, u32) {
        match self.data.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), *cas),
            None => (None, 0),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let mut data = self.data.borrow_mut();
        let current = data.get(key).map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return Err(StoreError::CasMismatch);
        }
        data.insert(
            key.to_string(),
            (value.to_vec(), current.wrapping_add(1).max(1)),
        );
        Ok(())
    }
}

impl<S: SharedStore + ?Sized> SharedStore for std::rc::Rc<S> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, u32) {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        (**self).set(key, value, cas)
    }
}

/// How many times a read-modify-write is retried when other workers keep winning.
pub const CAS_RETRIES: u32 = 8;

/// Reads the health state at `key` (empty when missing or unreadable), with its cas token.
pub fn read_health(store: &(impl SharedStore + ?Sized), key: &str) -> (HealthState, u32) {
    let (bytes, cas) = store.get(key);
    let state = bytes
        .and_then(|b| HealthState::decode(&b))
        .unwrap_or_default();
    (state, cas)
}

/// Read-modify-write of the health state at `key`: `f` changes the state and says whether to
/// write it back. Retried on cas mismatch, so concurrent workers never lose each other's
/// updates. Returns `f`'s result from the attempt that counted.
pub fn update_health<R>(
    store: &(impl SharedStore + ?Sized),
    key: &str,
    mut f: impl FnMut(&mut HealthState) -> (bool, R),
) -> Result<R, StoreError> {
    for _ in 0..CAS_RETRIES {
        let (mut state, cas) = read_health(store, key);
        let (write, r) = f(&mut state);
        if !write {
            return Ok(r);
        }
        match store.set(key, &state.encode(), cas) {
            Ok(()) => return Ok(r),
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Failed)
}

/// Takes or renews the lease at `key` that says which worker runs the active health checks,
/// so N workers do not send N checks. True when `owner` holds it until `now + ttl`.
pub fn acquire_lease(
    store: &(impl SharedStore + ?Sized),
    key: &str,
    owner: u64,
    now_ms: u64,
    ttl_ms: u64,
) -> bool {
    let (bytes, cas) = store.get(key);
    let held = bytes.as_deref().and_then(|b| {
        let o = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
        let until = u64::from_le_bytes(b.get(8..16)?.try_into().ok()?);
        Some((o, until))
    });
    if let Some((o, until)) = held {
        if o != owner && now_ms < until {
            return false;
        }
    }
    let mut value = owner.to_le_bytes().to_vec();
    value.extend_from_slice(&now_ms.saturating_add(ttl_ms).to_le_bytes());
    // cas 0 would be unconditional: a missing key is raced, a held one is compared.
    store.set(key, &value, cas).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PassiveHealth;

    #[test]
    fn memory_store_follows_cas_semantics() {
        let s = MemoryStore::new();
        assert_eq!(s.get("k"), (None, 0));
        s.set("k", b"a", 0).unwrap();
        let (v, cas) = s.get("k");
        assert_eq!(v.as_deref(), Some(&b"a"[..]));
        assert_eq!(s.set("k", b"b", cas + 1), Err(StoreError::CasMismatch));
        s.set("k", b"b", cas).unwrap();
        assert_eq!(s.set("k", b"c", cas), Err(StoreError::CasMismatch));
        s.set("k", b"d", 0).unwrap();
    }

    /// A store where another worker writes between our read and our write, `races` times.
    struct Racy {
        inner: MemoryStore,
        races: std::cell::Cell<u32>,
    }

    impl SharedStore for Racy {
        fn get(&self, key: &str) -> (Option<Vec<u8>>, u32) {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            if self.races.get() > 0 {
                self.races.set(self.races.get() - 1);
                // The other worker records an error on member "b".
                let (mut st, c) = read_health(&self.inner, key);
                st.record_response(
                    "b",
                    true,
                    0,
                    &PassiveHealth {
                        consecutive_errors: 9,
                        base_ejection_ms: 1,
                        max_ejection_ms: 1,
                        ..PassiveHealth::default()
                    },
                    ["a", "b"],
                );
                self.inner.set(key, &st.encode(), c)?;
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn concurrent_updates_are_retried_not_lost() {
        let store = Racy {
            inner: MemoryStore::new(),
            races: std::cell::Cell::new(0),
        };
        // The key exists (the filter creates it at configure time): writes are compared.
        store
            .set("svc", &HealthState::default().encode(), 0)
            .unwrap();
        store.races.set(3);
        let p = PassiveHealth {
            consecutive_errors: 9,
            base_ejection_ms: 1,
            max_ejection_ms: 1,
            ..PassiveHealth::default()
        };
        let mut attempts = 0;
        update_health(&store, "svc", |st| {
            attempts += 1;
            st.record_response("a", true, 0, &p, ["a", "b"]);
            (true, ())
        })
        .unwrap();
        assert_eq!(attempts, 4);
        let (st, _) = read_health(&store, "svc");
        assert_eq!(st.get("a").unwrap().errors, 1);
        assert_eq!(st.get("b").unwrap().errors, 3);
    }

    #[test]
    fn one_worker_holds_the_health_check_lease_until_it_expires() {
        let s = MemoryStore::new();
        assert!(acquire_lease(&s, "l", 1, 0, 100));
        assert!(!acquire_lease(&s, "l", 2, 50, 100));
        assert!(acquire_lease(&s, "l", 1, 90, 100), "the owner renews");
        assert!(!acquire_lease(&s, "l", 2, 150, 100));
        assert!(
            acquire_lease(&s, "l", 2, 190, 100),
            "expired: another worker takes over"
        );
    }
}
