//! Hand-built Envoy bootstraps for tests that drive a filter config directly (without the
//! generator): an HTTP listener with wasm filters in order and a `cluster_header` route, and
//! one STATIC cluster per local backend.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::{json, Value};

/// One proxy-wasm HTTP filter in the chain.
#[derive(Debug, Clone)]
pub struct WasmFilter {
    pub name: String,
    pub root_id: String,
    pub wasm: PathBuf,
    pub configuration: String,
    pub fail_open: bool,
}

impl WasmFilter {
    /// The router module with `configuration`.
    pub fn router(configuration: impl Into<String>) -> Self {
        WasmFilter {
            name: "wasmgate.router".into(),
            root_id: "wasmgate.router".into(),
            wasm: crate::paths::wasm("wasmgate_router"),
            configuration: configuration.into(),
            fail_open: false,
        }
    }

    /// The fidelity probe (`tests/probe`), with no configuration.
    pub fn probe() -> Self {
        WasmFilter {
            name: "probe".into(),
            root_id: "probe".into(),
            wasm: crate::paths::wasm("wasmgate_probe"),
            configuration: String::new(),
            fail_open: false,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": self.name,
                    "root_id": self.root_id,
                    "fail_open": self.fail_open,
                    "vm_config": {
                        "vm_id": "wasmgate",
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": self.wasm.display().to_string()}}
                    },
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": self.configuration
                    }
                }
            }
        })
    }
}

/// An Envoy `address` for a socket.
pub fn socket(addr: SocketAddr) -> Value {
    json!({"socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}})
}

/// A cluster of one static endpoint, as the test backends are.
pub fn static_cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": socket(addr)}}
        ]}]}
    })
}

/// Requests that carry `cluster_header` go to that cluster; with `pass_through` set, the
/// others go to that cluster (the proxy's own routing), else Envoy answers 404.
#[derive(Debug, Clone)]
pub struct HttpBootstrap {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub filters: Vec<WasmFilter>,
    pub cluster_header: String,
    pub pass_through: Option<String>,
    pub clusters: Vec<(String, SocketAddr)>,
}

impl HttpBootstrap {
    /// The probe alone in the chain, routing by `x-wasmgate-cluster` to `clusters`.
    pub fn probe(listen: SocketAddr, admin: SocketAddr, clusters: &[(&str, SocketAddr)]) -> Self {
        HttpBootstrap {
            listen,
            admin,
            filters: vec![WasmFilter::probe()],
            cluster_header: "x-wasmgate-cluster".into(),
            pass_through: None,
            clusters: clusters.iter().map(|(n, a)| (n.to_string(), *a)).collect(),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut routes = vec![json!({
            "match": {"prefix": "/", "headers": [{"name": self.cluster_header, "present_match": true}]},
            "route": {"cluster_header": self.cluster_header}
        })];
        if let Some(c) = &self.pass_through {
            routes.push(json!({"match": {"prefix": "/"}, "route": {"cluster": c}}));
        }
        let filters: Vec<Value> = self.filters.iter().map(WasmFilter::to_json).collect();
        let clusters: Vec<Value> = self
            .clusters
            .iter()
            .map(|(name, addr)| static_cluster(name, *addr))
            .collect();
        json!({
            "admin": {"address": socket(self.admin)},
            "static_resources": {
                "listeners": [{
                    "name": "http",
                    "address": socket(self.listen),
                    // The generator's connection manager: the same path normalization.
                    "filter_chains": [{"filters": [wasmgate::envoy_api::http_connection_manager(
                        json!({"name": "wasmgate", "virtual_hosts": [{
                            "name": "wasmgate", "domains": ["*"], "routes": routes
                        }]}),
                        filters,
                        Vec::new(),
                    )]}]
                }],
                "clusters": clusters
            }
        })
    }
}
