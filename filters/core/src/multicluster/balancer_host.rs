//! Everything the balancer asks of its proxy, as one trait. The balancer filter implements it
//! once over proxy-wasm host calls; native tests implement it over memory (`mock_host.rs`).
//!
//! The logic is generic over the host (static dispatch), so each method below is exactly one
//! host call in the `.wasm`: the calls a request makes are the ones the logic asks for.
//! Methods report failures the logic acts on (a refused shared-data write, a check that could
//! not be sent) and log the rest themselves.

use std::fmt;

use super::store::SharedStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warn,
}

/// An active health check: a request without body to a member's Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequest<'a> {
    pub cluster: &'a str,
    /// `:method`, `:path` and `:authority`.
    pub headers: [(&'a str, &'a str); 3],
    pub timeout_ms: u64,
}

/// The proxy as the balancer sees it. Shared data (with compare-and-swap) comes from
/// [`SharedStore`]. The stream methods act on the stream whose callback is running.
pub trait BalancerHost: SharedStore {
    /// Wall-clock milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// A seed that differs between workers and restarts.
    fn random_u64(&self) -> u64;
    fn log(&self, level: LogLevel, message: fmt::Arguments<'_>);
    /// A property of the proxy, connection or request (`source.address`, `node...`).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;

    /// Defines a metric; `None` if the host refused.
    fn define_metric(&self, kind: MetricKind, name: &str) -> Option<u32>;
    fn increment_metric(&self, id: u32);
    fn record_metric(&self, id: u32, value: u64);

    /// Calls the root back every `period_ms`.
    fn set_tick_period_ms(&self, period_ms: u64);
    /// Sends a health check; the token its answer will carry, or `None` if it could not be
    /// sent.
    fn dispatch_check(&self, check: &CheckRequest<'_>) -> Option<u32>;
    /// A header of the health-check answer being delivered.
    fn check_response_header(&self, name: &str) -> Option<Vec<u8>>;

    fn request_header(&self, name: &str) -> Option<Vec<u8>>;
    /// Sets (`Some`) or removes (`None`) a request header.
    fn set_request_header(&self, name: &str, value: Option<&str>);
    fn response_header(&self, name: &str) -> Option<Vec<u8>>;
    /// Adds a response header beside any of the same name.
    fn add_response_header(&self, name: &str, value: &str);
    fn remove_response_header(&self, name: &str);
    /// Request filter state an access log can print.
    fn set_filter_state(&self, key: &str, value: &str);
    /// Answers the request locally; the stream stops.
    fn send_reply(&self, status: u32, headers: &[(&str, &str)], body: &[u8]);

    /// Steers this TCP connection to `cluster`.
    fn set_tcp_cluster(&self, cluster: &str);
    fn close_downstream(&self);
}

/// A property as non-empty UTF-8.
pub fn string_property(host: &impl BalancerHost, path: &[&str]) -> Option<String> {
    host.property(path)
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
}

/// An integer property: Envoy encodes them as 8 bytes little-endian.
pub fn int_property(host: &impl BalancerHost, path: &[&str]) -> Option<u64> {
    let raw = host.property(path)?;
    let bytes: [u8; 8] = raw.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}
