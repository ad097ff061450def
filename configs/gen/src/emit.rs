//! Turns the inputs into the filter JSON and a runnable Envoy bootstrap.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{json, Value};
use wasmgate_core::config::{self as fc, RouterConfig};
use wasmgate_core::table::default_cluster_name;

use crate::error::{ErrorKind, Errors, GenError, Location};
use crate::load::Inputs;
use crate::model::*;

/// Where the generated config expects things to be.
#[derive(Debug, Clone)]
pub struct Options {
    pub router_wasm: PathBuf,
    pub listen_address: String,
    pub http_port: u16,
    pub admin_port: u16,
    /// Declared listener port -> port actually bound (to run a config on free local ports).
    pub port_map: BTreeMap<u16, u16>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            router_wasm: PathBuf::from("target/wasm32-wasip1/release/wasmgate_router.wasm"),
            listen_address: "127.0.0.1".into(),
            http_port: 10000,
            admin_port: 9901,
            port_map: BTreeMap::new(),
        }
    }
}

/// Everything the generator writes.
#[derive(Debug, Clone)]
pub struct Output {
    pub router: RouterConfig,
    pub envoy: Value,
}

impl Output {
    /// File name -> contents, in a stable order.
    pub fn files(&self) -> Result<Vec<(&'static str, String)>, serde_json::Error> {
        let router = serde_json::to_string_pretty(&self.router)? + "\n";
        let envoy = serde_yaml_ng::to_string(&self.envoy).map_err(serde::ser::Error::custom)?;
        Ok(vec![("router.json", router), ("envoy.yaml", envoy)])
    }
}

/// The endpoint set of one Envoy cluster.
type Endpoints = BTreeMap<String, Vec<String>>;

struct Ctx<'a> {
    inputs: &'a Inputs,
    errors: Vec<GenError>,
    clusters: Endpoints,
}

impl Ctx<'_> {
    fn fail(&mut self, at: &Location, field: String, kind: ErrorKind) {
        self.errors.push(GenError {
            at: Location {
                field,
                ..at.clone()
            },
            kind,
        });
    }

    /// Resolves a service port (number or name) and records the Envoy cluster reaching it.
    fn backend(&mut self, at: &Location, field: String, b: &VhBackend) -> Option<fc::Backend> {
        let Some(svc) = self
            .inputs
            .services
            .iter()
            .find(|s| s.value.metadata.name == b.service)
        else {
            self.fail(
                at,
                format!("{field}.service"),
                ErrorKind::UnknownService(b.service.clone()),
            );
            return None;
        };
        let port = svc.value.spec.ports.iter().find(|p| match &b.service_port {
            PortRef::Number(n) => p.port == *n,
            PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
        });
        let Some(port) = port.map(|p| p.port) else {
            self.fail(
                at,
                format!("{field}.servicePort"),
                ErrorKind::UnknownPort {
                    service: b.service.clone(),
                    port: b.service_port.to_string(),
                },
            );
            return None;
        };
        let endpoints: Vec<String> = self
            .inputs
            .inventories
            .iter()
            .flat_map(|inv| &inv.value.spec.clusters)
            .filter_map(|c| c.services.get(&b.service)?.get(&port))
            .flatten()
            .cloned()
            .collect();
        if endpoints.is_empty() {
            self.fail(
                at,
                format!("{field}.servicePort"),
                ErrorKind::NoEndpoints {
                    service: b.service.clone(),
                    port,
                },
            );
            return None;
        }
        let cluster = default_cluster_name(&b.service, Some(port));
        self.clusters.insert(cluster.clone(), endpoints);
        Some(fc::Backend {
            service: b.service.clone(),
            port: Some(port),
            weight: 1,
            cluster: Some(cluster),
        })
    }
}

/// Generates every output, or reports every error found.
pub fn generate(inputs: &Inputs, opts: &Options) -> Result<Output, Errors> {
    let mut cx = Ctx {
        inputs,
        errors: Vec::new(),
        clusters: BTreeMap::new(),
    };
    let mut routes = Vec::new();
    let mut tcp_ports = BTreeSet::new();
    for vh in &inputs.virtual_hosts {
        for (ri, r) in vh.value.spec.routes.iter().enumerate() {
            let base = format!("spec.routes[{ri}]");
            match (&r.http, &r.tcp) {
                (Some(http), None) => {
                    let mut rules = Vec::new();
                    for (ui, rule) in http.rules.iter().enumerate() {
                        let field = format!("{base}.http.rules[{ui}]");
                        let backend = rule
                            .backend
                            .as_ref()
                            .and_then(|b| cx.backend(&vh.at, format!("{field}.backend"), b));
                        rules.push(fc::HttpRule {
                            path: rule.path.clone(),
                            backend,
                            status_code: rule.status_code.as_ref().map(|s| fc::StatusCodeAction {
                                code: s.code,
                                body: s.body.clone(),
                                headers: Vec::new(),
                            }),
                            ..fc::HttpRule::default()
                        });
                    }
                    routes.push(fc::Route {
                        http: Some(fc::HttpRoute {
                            host: http.host.clone(),
                            rules,
                        }),
                        tcp: None,
                    });
                }
                (None, Some(tcp)) => {
                    let mut rules = Vec::new();
                    for (ui, rule) in tcp.rules.iter().enumerate() {
                        let field = format!("{base}.tcp.rules[{ui}].backend");
                        let backend = cx.backend(&vh.at, field, &rule.backend);
                        rules.push(fc::TcpRule {
                            backend,
                            backends: Vec::new(),
                        });
                    }
                    let port = opts.port_map.get(&tcp.port).copied().unwrap_or(tcp.port);
                    tcp_ports.insert(port);
                    routes.push(fc::Route {
                        http: None,
                        tcp: Some(fc::TcpRoute { port, rules }),
                    });
                }
                _ => cx.fail(
                    &vh.at,
                    base,
                    ErrorKind::Invalid("a route needs exactly one of `http` or `tcp`".into()),
                ),
            }
        }
    }
    let router = RouterConfig {
        cluster_header: fc::DEFAULT_CLUSTER_HEADER.into(),
        service_header: fc::DEFAULT_SERVICE_HEADER.into(),
        no_match: fc::NoMatch::NotFound,
        clear_route_cache: false,
        routes,
        multi_cluster_services: BTreeMap::new(),
    };
    if cx.errors.is_empty() {
        // The filters must accept what we write: compile it exactly as they will.
        if let Err(e) = wasmgate_core::RouteTable::compile(&router) {
            cx.errors.push(GenError {
                at: Location::default(),
                kind: ErrorKind::FilterConfig(e.to_string()),
            });
        }
    }
    if !cx.errors.is_empty() {
        return Err(Errors(cx.errors));
    }
    let envoy = envoy_bootstrap(&router, &cx.clusters, &tcp_ports, opts);
    Ok(Output { router, envoy })
}

fn socket(address: &str, port: u16) -> Value {
    json!({"socket_address": {"address": address, "port_value": port}})
}

fn wasm_config(name: &str, root_id: &str, wasm: &std::path::Path, configuration: &str) -> Value {
    json!({
        "name": name,
        "root_id": root_id,
        "fail_open": false,
        "vm_config": {
            "vm_id": "wasmgate",
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": wasm.display().to_string()}}
        },
        "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": configuration
        }
    })
}

fn envoy_bootstrap(
    router: &RouterConfig,
    clusters: &Endpoints,
    tcp_ports: &BTreeSet<u16>,
    opts: &Options,
) -> Value {
    let config = serde_json::to_string(router).unwrap_or_default();
    let addr = opts.listen_address.as_str();
    let mut listeners = vec![json!({
        "name": "http",
        "address": socket(addr, opts.http_port),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "wasmgate",
                // The router matches paths as Envoy hands them over; these settings make that
                // form canonical (RFC 3986 normalised, no repeated slashes, no encoded slashes).
                "normalize_path": true,
                "merge_slashes": true,
                "path_with_escaped_slashes_action": "UNESCAPE_AND_REDIRECT",
                "route_config": {
                    "name": "wasmgate",
                    "virtual_hosts": [{
                        "name": "wasmgate",
                        "domains": ["*"],
                        "routes": [{
                            "match": {"prefix": "/"},
                            "route": {"cluster_header": router.cluster_header}
                        }]
                    }]
                },
                "http_filters": [
                    {
                        "name": "wasmgate.router",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                            "config": wasm_config("wasmgate.router", "wasmgate.router", &opts.router_wasm, &config)
                        }
                    },
                    {
                        "name": "envoy.filters.http.router",
                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
                    }
                ]
            }
        }]}]
    })];
    for port in tcp_ports {
        // tcp_proxy needs a cluster; the router's network root overrides it per connection.
        let fallback = router
            .routes
            .iter()
            .filter_map(|r| r.tcp.as_ref())
            .find(|t| t.port == *port)
            .and_then(|t| t.rules.first())
            .and_then(|r| r.backend.as_ref())
            .and_then(|b| b.cluster.clone())
            .unwrap_or_default();
        listeners.push(json!({
            "name": format!("tcp_{port}"),
            "address": socket(addr, *port),
            "filter_chains": [{"filters": [
                {
                    "name": "wasmgate.router.tcp",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
                        "config": wasm_config("wasmgate.router.tcp", "wasmgate.router.tcp", &opts.router_wasm, &config)
                    }
                },
                {
                    "name": "envoy.filters.network.tcp_proxy",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                        "stat_prefix": format!("tcp_{port}"),
                        "cluster": fallback
                    }
                }
            ]}]
        }));
    }
    let clusters: Vec<Value> = clusters
        .iter()
        .map(|(name, endpoints)| {
            let lb: Vec<Value> = endpoints
                .iter()
                .map(|ep| {
                    let (host, port) = ep.rsplit_once(':').unwrap_or((ep, "80"));
                    let port: u16 = port.parse().unwrap_or(80);
                    json!({"endpoint": {"address": socket(host, port)}})
                })
                .collect();
            json!({
                "name": name,
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": lb}]}
            })
        })
        .collect();
    json!({
        "admin": {"address": socket(addr, opts.admin_port)},
        "static_resources": {"listeners": listeners, "clusters": clusters}
    })
}
