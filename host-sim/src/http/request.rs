//! The public request and outcome types of an HTTP stream.

use std::time::Duration;

use crate::headers::HeaderMap;
use crate::properties::{PropValue, PropertyOverrides};
use crate::state::LocalReply;
use crate::types::Level;
use crate::upstreams::Callout;

/// A downstream request.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// Request headers including the pseudo-headers.
    pub headers: HeaderMap,
    /// Body chunks, delivered one `proxy_on_request_body` call at a time.
    pub body: Vec<Vec<u8>>,
    pub trailers: Option<HeaderMap>,
    /// `source.address` (`ip:port`).
    pub source_address: String,
    /// `destination.address` (`ip:port`).
    pub destination_address: String,
    /// Property values this request answers (`source.address`, `node.metadata.X`...).
    pub properties: PropertyOverrides,
    /// Add what Envoy's connection manager adds before the filters run
    /// (`x-request-id`, `x-forwarded-proto`).
    pub envoy_headers: bool,
    /// Headers filters before the Wasm ones add (filters host-sim leaves out): after the
    /// connection manager's own.
    pub added_by_filters: Vec<(String, Vec<u8>)>,
    /// When the request arrives, from the moment the run starts (requests run together
    /// open their streams at their own offsets).
    pub arrives_after: Duration,
}

impl HttpRequest {
    pub fn new(method: &str, authority: &str, path: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.add(":authority", authority);
        headers.add(":path", path);
        headers.add(":method", method);
        headers.add(":scheme", "http");
        HttpRequest {
            headers,
            body: Vec::new(),
            trailers: None,
            source_address: "127.0.0.1:50000".into(),
            destination_address: "127.0.0.1:10000".into(),
            properties: PropertyOverrides::default(),
            envoy_headers: true,
            added_by_filters: Vec::new(),
            arrives_after: Duration::ZERO,
        }
    }

    pub fn get(authority: &str, path: &str) -> Self {
        Self::new("GET", authority, path)
    }

    pub fn post(authority: &str, path: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", authority, path).body(body)
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.add(name, value);
        self
    }

    /// Replaces the body with one chunk.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        self.body = if body.is_empty() {
            Vec::new()
        } else {
            vec![body]
        };
        self
    }

    /// Appends a body chunk.
    pub fn chunk(mut self, chunk: impl Into<Vec<u8>>) -> Self {
        self.body.push(chunk.into());
        self
    }

    pub fn trailer(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.trailers
            .get_or_insert_with(HeaderMap::new)
            .add(name, value);
        self
    }

    pub fn source(mut self, address: &str) -> Self {
        self.source_address = address.to_string();
        self
    }

    pub fn property(mut self, path: &[&str], value: PropValue) -> Self {
        self.properties.set(path, value);
        self
    }

    /// A header an earlier (left-out) filter adds, after Envoy's own.
    pub fn added_by_filter(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.added_by_filters
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    pub fn without_envoy_headers(mut self) -> Self {
        self.envoy_headers = false;
        self
    }

    /// The request arrives `offset` after the run starts, not at once.
    pub fn arriving_after(mut self, offset: Duration) -> Self {
        self.arrives_after = offset;
        self
    }
}

/// The final state of one HTTP stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpOutcome {
    /// Status the client sees; 0 when the stream was reset.
    pub status: u16,
    pub reset: bool,
    /// Envoy's response code details (`via_upstream`, `route_not_found`, `wasm_fail_stream`...).
    pub details: String,
    /// The upstream cluster the router sent the request to.
    pub cluster: Option<String>,
    /// Set when a filter called `proxy_send_local_response`.
    pub local_reply: Option<LocalReply>,
    /// Request headers as forwarded upstream.
    pub upstream_request: Option<Vec<(String, Vec<u8>)>>,
    pub upstream_request_body: Vec<u8>,
    /// Request trailers as forwarded upstream (empty when there were none).
    pub upstream_request_trailers: Vec<(String, Vec<u8>)>,
    pub response_headers: Vec<(String, Vec<u8>)>,
    pub response_body: Vec<u8>,
    pub response_trailers: Vec<(String, Vec<u8>)>,
    pub logs: Vec<(Level, String)>,
    /// proxy_* host calls the guests made for this stream.
    pub host_calls: u64,
    /// Filter state set through `set_envoy_filter_state`.
    pub filter_state: Vec<(String, Vec<u8>)>,
    /// Traps (and calls into already-failed VMs) during this stream.
    pub vm_failures: Vec<String>,
    /// `http_call`s and gRPC calls the guests started during this stream, in order.
    pub callouts: Vec<Callout>,
}

impl HttpOutcome {
    pub fn response_header(&self, name: &str) -> Option<&[u8]> {
        values(&self.response_headers, name).next()
    }

    /// Every value of a response header, in order.
    pub fn response_header_values(&self, name: &str) -> Vec<&[u8]> {
        values(&self.response_headers, name).collect()
    }

    /// Every value of a header forwarded upstream, in order.
    pub fn upstream_header_values(&self, name: &str) -> Vec<&[u8]> {
        values(self.upstream_request.as_deref().unwrap_or_default(), name).collect()
    }

    pub fn upstream_header(&self, name: &str) -> Option<&[u8]> {
        values(self.upstream_request.as_deref()?, name).next()
    }

    /// Whether some log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.logs.iter().any(|(_, m)| m.contains(needle))
    }
}

/// The values of header `name` (any case) in `pairs`, in order.
fn values<'a>(pairs: &'a [(String, Vec<u8>)], name: &str) -> impl Iterator<Item = &'a [u8]> {
    let name = name.to_ascii_lowercase();
    pairs
        .iter()
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v.as_slice())
}
