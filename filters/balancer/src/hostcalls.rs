//! Host access through proxy-wasm's Result-returning calls: nothing here can trap the VM.

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, Status};
use wasmgate_core::multicluster::{SharedStore, StoreError};

pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn header(map: MapType, name: &str) -> Option<Vec<u8>> {
    hostcalls::get_map_value_bytes(map, name).ok().flatten()
}

pub fn set_header(name: &str, value: Option<&str>) {
    if let Err(status) = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value) {
        warn!("wasmgate.balancer: cannot set header {name}: {status:?}");
    }
}

/// Adds a response header (another `set-cookie` stays as it is).
pub fn add_response_header(name: &str, value: &str) {
    if let Err(status) = hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value) {
        warn!("wasmgate.balancer: cannot add response header {name}: {status:?}");
    }
}

pub fn remove_response_header(name: &str) {
    if let Err(status) = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, None) {
        warn!("wasmgate.balancer: cannot remove response header {name}: {status:?}");
    }
}

/// Request filter state an access log can print (Envoy keeps it as `wasm.<key>`).
pub fn set_filter_state(key: &str, value: &str) {
    if let Err(status) = hostcalls::set_property(vec![key], Some(value.as_bytes())) {
        warn!("wasmgate.balancer: cannot set filter state {key}: {status:?}");
    }
}

pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

pub fn string_property(path: &[&str]) -> Option<String> {
    property(path)
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
}

/// Envoy encodes integer properties as 8 bytes little-endian.
pub fn int_property(path: &[&str]) -> Option<u64> {
    let raw = property(path)?;
    let bytes: [u8; 8] = raw.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// A random u64 from the host (std seeds its hash keys with WASI `random_get`), mixed with
/// the time: it tells workers apart and seeds their round robin.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ms());
    h.write_u64(
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::from(d.subsec_nanos())),
    );
    h.finish()
}

/// proxy-wasm shared data (per `vm_id`, shared by every worker).
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, u32) {
        match hostcalls::get_shared_data(key) {
            Ok((value, cas)) => (value, cas.unwrap_or(0)),
            Err(_) => (None, 0),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        match hostcalls::set_shared_data(key, Some(value), Some(cas)) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(status) => {
                warn!("wasmgate.balancer: cannot write shared data {key}: {status:?}");
                Err(StoreError::Failed)
            }
        }
    }
}
