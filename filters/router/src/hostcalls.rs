//! Every host call the router makes, through proxy-wasm's Result-returning calls: nothing
//! here can trap the VM, and a failure is logged here, never unwrapped.

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType};
use wasmgate_core::filter_state::{set_filter_state_args, TCP_PROXY_CLUSTER};
use wasmgate_core::HeaderMap;

/// The plugin's configuration (the filter JSON); empty if the host has none.
pub fn plugin_configuration() -> Vec<u8> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .ok()
        .flatten()
        .unwrap_or_default()
}

pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

/// Nanoseconds since the Unix epoch, to seed this worker's random source.
pub fn time_seed() -> Option<u64> {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
}

pub fn request_header(name: &str) -> Option<Vec<u8>> {
    hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
}

pub fn response_header(name: &str) -> Option<Vec<u8>> {
    hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name)
        .ok()
        .flatten()
}

/// The proxy's header map of this stream (request or response).
pub struct HostHeaders(pub MapType);

impl HeaderMap for HostHeaders {
    fn set(&mut self, name: &str, value: &str) {
        if let Err(status) = hostcalls::set_map_value(self.0, name, Some(value)) {
            warn!("wasmgate.router: cannot set header {name}: {status:?}");
        }
    }

    fn add(&mut self, name: &str, value: &str) {
        if let Err(status) = hostcalls::add_map_value(self.0, name, value) {
            warn!("wasmgate.router: cannot add header {name}: {status:?}");
        }
    }

    fn remove(&mut self, name: &str) {
        if let Err(status) = hostcalls::set_map_value(self.0, name, None) {
            warn!("wasmgate.router: cannot remove header {name}: {status:?}");
        }
    }
}

/// Answers the request locally; `what` names the reply in the log if it cannot be sent.
pub fn send_reply(status: u32, headers: Vec<(&str, &str)>, body: Option<&[u8]>, what: &str) {
    if let Err(e) = hostcalls::send_http_response(status, headers, body) {
        warn!("wasmgate.router: cannot {what}: {e:?}");
    }
}

/// Request filter state an access log can print (Envoy keeps it as `wasm.<key>`).
pub fn set_filter_state(key: &str, value: &str) {
    if let Err(status) = hostcalls::set_property(vec![key], Some(value.as_bytes())) {
        warn!("wasmgate.router: cannot set filter state: {status:?}");
    }
}

/// Makes Envoy pick the route again after the cluster header changed (Envoy 1.33+).
pub fn clear_route_cache() {
    if let Err(status) = hostcalls::call_foreign_function("clear_route_cache", None) {
        warn!("wasmgate.router: clear_route_cache failed: {status:?}");
    }
}

/// The listener port of this connection or request (Envoy's `destination.port`, an integer
/// encoded as 8 bytes little-endian).
pub fn listener_port() -> Option<u16> {
    let raw = property(&["destination", "port"])?;
    let bytes: [u8; 8] = raw.get(..8)?.try_into().ok()?;
    u16::try_from(u64::from_le_bytes(bytes)).ok()
}

/// Steers this TCP connection: `tcp_proxy` reads `envoy.tcp_proxy.cluster` filter state.
pub fn set_tcp_cluster(cluster: &str) {
    let args = set_filter_state_args(TCP_PROXY_CLUSTER, cluster);
    if let Err(status) = hostcalls::call_foreign_function("set_envoy_filter_state", Some(&args)) {
        warn!("wasmgate.router: set_envoy_filter_state failed: {status:?}");
    }
}

pub fn close_downstream() {
    if let Err(status) = hostcalls::close_downstream() {
        warn!("wasmgate.router: close failed: {status:?}");
    }
}

pub fn define_counter(name: &str) -> Option<u32> {
    match hostcalls::define_metric(MetricType::Counter, name) {
        Ok(id) => Some(id),
        Err(status) => {
            warn!("wasmgate.router: cannot define metric {name}: {status:?}");
            None
        }
    }
}

pub fn increment_counter(id: u32) {
    if let Err(status) = hostcalls::increment_metric(id, 1) {
        warn!("wasmgate.router: cannot increment metric {id}: {status:?}");
    }
}
