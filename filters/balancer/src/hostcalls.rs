//! The proxy behind `BalancerHost`: each method is one proxy-wasm host call, through the SDK's
//! Result-returning calls (nothing here can trap the VM). Failures the logic does not act on
//! are logged here.

use std::fmt;
use std::time::Duration;

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, MetricType, Status};
use wasmgate_core::filter_state::{set_filter_state_args, TCP_PROXY_CLUSTER};
use wasmgate_core::multicluster::balancer_host::CheckRequest;
use wasmgate_core::multicluster::{BalancerHost, LogLevel, MetricKind, SharedStore, StoreError};

/// This VM's proxy (a unit: the host knows which context is running).
pub struct ProxyHost;

fn now() -> Option<Duration> {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
}

impl SharedStore for ProxyHost {
    /// proxy-wasm shared data (per `vm_id`, shared by every worker).
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

impl BalancerHost for ProxyHost {
    fn now_ms(&self) -> u64 {
        now().map_or(0, |d| d.as_millis() as u64)
    }

    /// A random u64 from the host (std seeds its hash keys with WASI `random_get`), mixed
    /// with the time: it tells workers apart and seeds their round robin.
    fn random_u64(&self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(self.now_ms());
        h.write_u64(now().map_or(0, |d| u64::from(d.subsec_nanos())));
        h.finish()
    }

    fn log(&self, level: LogLevel, message: fmt::Arguments<'_>) {
        match level {
            LogLevel::Info => log::info!("{message}"),
            LogLevel::Warn => log::warn!("{message}"),
        }
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let kind = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
        };
        match hostcalls::define_metric(kind, name) {
            Ok(id) => Some(id),
            Err(status) => {
                warn!("wasmgate.balancer: cannot define metric {name}: {status:?}");
                None
            }
        }
    }

    fn increment_metric(&self, id: u32) {
        if let Err(status) = hostcalls::increment_metric(id, 1) {
            warn!("wasmgate.balancer: cannot increment metric {id}: {status:?}");
        }
    }

    fn record_metric(&self, id: u32, value: u64) {
        if let Err(status) = hostcalls::record_metric(id, value) {
            warn!("wasmgate.balancer: cannot record metric {id}: {status:?}");
        }
    }

    fn set_tick_period_ms(&self, period_ms: u64) {
        if let Err(status) = hostcalls::set_tick_period(Duration::from_millis(period_ms)) {
            warn!("wasmgate.balancer: cannot set tick period: {status:?}");
        }
    }

    fn dispatch_check(&self, check: &CheckRequest<'_>) -> Option<u32> {
        match hostcalls::dispatch_http_call(
            check.cluster,
            check.headers.to_vec(),
            None,
            vec![],
            Duration::from_millis(check.timeout_ms),
        ) {
            Ok(token) => Some(token),
            Err(status) => {
                warn!(
                    "wasmgate.balancer: cannot check {}: {status:?}",
                    check.cluster
                );
                None
            }
        }
    }

    fn check_response_header(&self, name: &str) -> Option<Vec<u8>> {
        hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
            .ok()
            .flatten()
    }

    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
            .ok()
            .flatten()
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) {
        if let Err(status) = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value) {
            warn!("wasmgate.balancer: cannot set header {name}: {status:?}");
        }
    }

    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name)
            .ok()
            .flatten()
    }

    fn add_response_header(&self, name: &str, value: &str) {
        if let Err(status) = hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value) {
            warn!("wasmgate.balancer: cannot add response header {name}: {status:?}");
        }
    }

    fn remove_response_header(&self, name: &str) {
        if let Err(status) = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, None) {
            warn!("wasmgate.balancer: cannot remove response header {name}: {status:?}");
        }
    }

    /// Envoy keeps it as `wasm.<key>`.
    fn set_filter_state(&self, key: &str, value: &str) {
        if let Err(status) = hostcalls::set_property(vec![key], Some(value.as_bytes())) {
            warn!("wasmgate.balancer: cannot set filter state {key}: {status:?}");
        }
    }

    fn send_reply(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) {
        if let Err(e) = hostcalls::send_http_response(status, headers.to_vec(), Some(body)) {
            warn!("wasmgate.balancer: cannot send local reply: {e:?}");
        }
    }

    /// `tcp_proxy` reads its cluster from the `envoy.tcp_proxy.cluster` filter state.
    fn set_tcp_cluster(&self, cluster: &str) {
        let args = set_filter_state_args(TCP_PROXY_CLUSTER, cluster);
        if let Err(status) = hostcalls::call_foreign_function("set_envoy_filter_state", Some(&args))
        {
            warn!("wasmgate.balancer: set_envoy_filter_state failed: {status:?}");
        }
    }

    fn close_downstream(&self) {
        if let Err(status) = hostcalls::close_downstream() {
            warn!("wasmgate.balancer: close failed: {status:?}");
        }
    }
}
