//! Reads the parts of an Envoy bootstrap (YAML or JSON) that host-sim models: the HTTP
//! connection manager's Wasm filters (in order) and route table, the static clusters, and a
//! network Wasm filter in front of `tcp_proxy`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::error::Error;
use crate::plugin::{PluginSpec, WasmSource};
use crate::properties::PropValue;
use crate::route_config::{PathMatch, Route, RouteAction, Routes, VirtualHost};

const HCM: &str =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const HTTP_WASM: &str = "envoy.extensions.filters.http.wasm.v3.Wasm";
const NETWORK_WASM: &str = "envoy.extensions.filters.network.wasm.v3.Wasm";
const TCP_PROXY: &str = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
const ROUTER: &str = "envoy.extensions.filters.http.router.v3.Router";
const WASM_SERVICE: &str = "envoy.extensions.wasm.v3.WasmService";
/// The wrappers Envoy unpacks into the message their `type_url` names.
const TYPED_STRUCTS: [&str; 2] = ["udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct"];

/// Choices about a bootstrap that host-sim cannot run whole.
#[derive(Clone, Debug, Default)]
pub struct BootstrapOptions {
    /// Filters (by `name` or type) to leave out instead of refusing the bootstrap.
    pub skip_filters: Vec<String>,
}

/// What host-sim takes from a bootstrap.
#[derive(Clone, Debug)]
pub struct EnvoySetup {
    /// Wasm HTTP filters of the first HTTP listener, in chain order.
    pub http_filters: Vec<PluginSpec>,
    pub routes: Routes,
    /// Names under `static_resources.clusters` (empty: no cluster list, any name exists).
    pub clusters: Vec<String>,
    /// The first endpoint (`ip:port`) of each cluster that lists one.
    pub cluster_addresses: Vec<(String, String)>,
    /// Wasm network filters of the first TCP listener, and `tcp_proxy`'s cluster.
    pub network_filters: Vec<PluginSpec>,
    pub tcp_cluster: Option<String>,
    /// Filters host-sim does not run that `BootstrapOptions::skip_filters` let it leave out,
    /// by name, in chain order.
    pub skipped_filters: Vec<String>,
    /// `bootstrap_extensions` Wasm services (`envoy.bootstrap.wasm`): singletons with no
    /// listener, living on ticks, queues and callouts.
    pub services: Vec<PluginSpec>,
}

fn err(msg: impl Into<String>) -> Error {
    Error::EnvoyConfig(msg.into())
}

fn type_url(v: &Value) -> &str {
    v.get("@type").and_then(Value::as_str).unwrap_or_default()
}

/// The message name of a type URL (`type.googleapis.com/a.b.C` is `a.b.C`).
fn type_name(url: &str) -> &str {
    url.rsplit_once('/').map_or(url, |(_, name)| name)
}

fn is_type(v: &Value, name: &str) -> bool {
    type_name(type_url(v)) == name
}

/// A `typed_config`, with a `TypedStruct` wrapper replaced by the message it carries (its
/// `value` fields under the `type_url` it names), as Envoy reads it.
fn unwrap_typed(tc: &Value) -> Value {
    if TYPED_STRUCTS.iter().any(|t| is_type(tc, t)) {
        let mut inner = tc
            .get("value")
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        if let (Some(obj), Some(url)) = (inner.as_object_mut(), str_of(tc, "type_url")) {
            obj.insert("@type".into(), Value::String(url.to_string()));
        }
        return inner;
    }
    tc.clone()
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn list<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// Reads a bootstrap file.
pub fn load_bootstrap(path: &Path) -> Result<EnvoySetup, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse_bootstrap(&text, path.parent().unwrap_or(Path::new(".")))
}

/// Reads a bootstrap file, leaving out the filters `opts` names.
pub fn load_bootstrap_with(path: &Path, opts: &BootstrapOptions) -> Result<EnvoySetup, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse_bootstrap_with(&text, path.parent().unwrap_or(Path::new(".")), opts)
}

/// Parses a bootstrap; relative Wasm file names that do not exist from the current
/// directory are tried relative to `base_dir`. A filter host-sim cannot run is an error.
pub fn parse_bootstrap(text: &str, base_dir: &Path) -> Result<EnvoySetup, Error> {
    parse_bootstrap_with(text, base_dir, &BootstrapOptions::default())
}

/// [`parse_bootstrap`], leaving out the filters `opts` names.
pub fn parse_bootstrap_with(
    text: &str,
    base_dir: &Path,
    opts: &BootstrapOptions,
) -> Result<EnvoySetup, Error> {
    let root: Value =
        serde_yaml_ng::from_str(text).map_err(|e| err(format!("not YAML/JSON: {e}")))?;
    let mut services = Vec::new();
    for (k, ext) in list(&root, "bootstrap_extensions").enumerate() {
        let tc = ext
            .get("typed_config")
            .map(unwrap_typed)
            .unwrap_or_default();
        if !is_type(&tc, WASM_SERVICE) {
            return Err(err(format!(
                "bootstrap_extensions[{k}] ({}, {}): only envoy.bootstrap.wasm WasmService is supported",
                str_of(ext, "name").unwrap_or_default(),
                type_url(&tc)
            )));
        }
        if tc.get("singleton").and_then(Value::as_bool) != Some(true) {
            return Err(err(format!(
                "bootstrap_extensions[{k}]: only singleton: true Wasm services are supported \
                 (one VM on the main thread)"
            )));
        }
        services.push(wasm_filter(&tc, base_dir)?);
    }
    let Some(res) = root.get("static_resources") else {
        if services.is_empty() {
            return Err(err("no static_resources"));
        }
        return Ok(EnvoySetup {
            http_filters: Vec::new(),
            routes: Routes::empty(),
            clusters: Vec::new(),
            cluster_addresses: Vec::new(),
            network_filters: Vec::new(),
            tcp_cluster: None,
            skipped_filters: Vec::new(),
            services: node_for(&root, services),
        });
    };
    let mut setup = EnvoySetup {
        http_filters: Vec::new(),
        routes: Routes::empty(),
        clusters: list(res, "clusters")
            .filter_map(|c| str_of(c, "name").map(String::from))
            .collect(),
        cluster_addresses: list(res, "clusters").filter_map(first_endpoint).collect(),
        network_filters: Vec::new(),
        tcp_cluster: None,
        skipped_filters: Vec::new(),
        services,
    };
    let mut have_http = false;
    let mut have_tcp = false;
    for (l, listener) in list(res, "listeners").enumerate() {
        for (c, chain) in list(listener, "filter_chains").enumerate() {
            let mut network_wasm = Vec::new();
            let mut network_skipped = Vec::new();
            let mut refused = None;
            for (f, filter) in list(chain, "filters").enumerate() {
                let tc = filter
                    .get("typed_config")
                    .map(unwrap_typed)
                    .unwrap_or_default();
                let at = format!("listeners[{l}].filter_chains[{c}].filters[{f}]");
                if is_type(&tc, HCM) && !have_http {
                    have_http = true;
                    if let Some(e) = refused.take() {
                        return Err(e);
                    }
                    setup.skipped_filters.append(&mut network_skipped);
                    read_hcm(&tc, base_dir, &at, opts, &mut setup)?;
                } else if is_type(&tc, NETWORK_WASM) {
                    network_wasm.push(wasm_filter(&tc, base_dir)?);
                } else if is_type(&tc, TCP_PROXY) && !have_tcp {
                    have_tcp = true;
                    if let Some(e) = refused.take() {
                        return Err(e);
                    }
                    setup.tcp_cluster = str_of(&tc, "cluster").map(String::from);
                    setup.network_filters = std::mem::take(&mut network_wasm);
                    setup.skipped_filters.append(&mut network_skipped);
                } else if !is_type(&tc, HCM) && !is_type(&tc, TCP_PROXY) && refused.is_none() {
                    // Only a chain host-sim runs (the one before tcp_proxy) needs its
                    // filters understood.
                    match skip_or_refuse(filter, &tc, &at, opts) {
                        Ok(name) => network_skipped.push(name),
                        Err(e) => refused = Some(e),
                    }
                }
            }
        }
    }
    if !have_http && !have_tcp && setup.services.is_empty() {
        return Err(err(
            "no http_connection_manager or tcp_proxy filter in any listener",
        ));
    }
    setup.http_filters = node_for(&root, std::mem::take(&mut setup.http_filters));
    setup.network_filters = node_for(&root, std::mem::take(&mut setup.network_filters));
    setup.services = node_for(&root, std::mem::take(&mut setup.services));
    Ok(setup)
}

/// Gives every spec the bootstrap's `node` (at `xds.node`).
fn node_for(root: &Value, mut specs: Vec<PluginSpec>) -> Vec<PluginSpec> {
    if let Some(node) = root.get("node") {
        let node = node_property(node);
        for spec in &mut specs {
            spec.properties.set(&["xds", "node"], node.clone());
        }
    }
    specs
}

/// The name of a filter host-sim cannot run if `opts` lets it leave that filter out (by
/// its `name` or its type), else an error naming it and its position.
fn skip_or_refuse(
    filter: &Value,
    tc: &Value,
    at: &str,
    opts: &BootstrapOptions,
) -> Result<String, Error> {
    let name = str_of(filter, "name").unwrap_or_default().to_string();
    let ty = type_name(type_url(tc)).to_string();
    if opts.skip_filters.iter().any(|s| *s == name || *s == ty) {
        return Ok(name);
    }
    Err(Error::UnsupportedFilter {
        name,
        type_url: ty,
        position: at.to_string(),
    })
}

fn first_endpoint(cluster: &Value) -> Option<(String, String)> {
    let name = str_of(cluster, "name")?;
    let socket = list(cluster.get("load_assignment")?, "endpoints")
        .flat_map(|e| list(e, "lb_endpoints"))
        .find_map(|e| e.get("endpoint")?.get("address")?.get("socket_address"))?;
    let port = socket.get("port_value").and_then(Value::as_u64)?;
    Some((
        name.to_string(),
        format!("{}:{port}", str_of(socket, "address")?),
    ))
}

impl EnvoySetup {
    /// Makes `sim` know this bootstrap's clusters (any other name is unknown) and their
    /// endpoint addresses.
    pub fn declare_clusters(&self, sim: &crate::HostSim) {
        if !self.clusters.is_empty() {
            sim.declare_clusters(&self.clusters);
        }
        for (cluster, address) in &self.cluster_addresses {
            sim.set_upstream_address(cluster, address);
        }
    }
}

/// The bootstrap's `node` as Envoy serves it at `xds.node`: unset fields read as empty.
fn node_property(node: &Value) -> PropValue {
    let mut fields = serde_json::Map::new();
    for key in ["id", "cluster"] {
        fields.insert(key.into(), Value::String(String::new()));
    }
    fields.insert("metadata".into(), Value::Object(serde_json::Map::new()));
    let mut locality = serde_json::Map::new();
    for key in ["region", "zone", "sub_zone"] {
        locality.insert(key.into(), Value::String(String::new()));
    }
    if let Some(given) = node.get("locality").and_then(Value::as_object) {
        locality.extend(given.clone());
    }
    if let Some(given) = node.as_object() {
        fields.extend(given.clone());
    }
    fields.insert("locality".into(), Value::Object(locality));
    PropValue::from_json(&Value::Object(fields))
}

fn read_hcm(
    hcm: &Value,
    base_dir: &Path,
    at: &str,
    opts: &BootstrapOptions,
    setup: &mut EnvoySetup,
) -> Result<(), Error> {
    if hcm.get("rds").is_some() {
        return Err(err("RDS is not supported; inline the route_config"));
    }
    if let Some(rc) = hcm.get("route_config") {
        setup.routes = read_routes(rc)?;
    }
    for (k, f) in list(hcm, "http_filters").enumerate() {
        let name = str_of(f, "name").unwrap_or_default();
        let tc = f.get("typed_config").map(unwrap_typed).unwrap_or_default();
        if is_type(&tc, HTTP_WASM) {
            setup.http_filters.push(wasm_filter(&tc, base_dir)?);
        } else if !is_type(&tc, ROUTER) && name != "envoy.filters.http.router" {
            let at = format!("{at}.http_connection_manager.http_filters[{k}]");
            let skipped = skip_or_refuse(f, &tc, &at, opts)?;
            setup.skipped_filters.push(skipped);
        }
    }
    Ok(())
}

fn wasm_filter(tc: &Value, base_dir: &Path) -> Result<PluginSpec, Error> {
    let cfg = tc
        .get("config")
        .ok_or_else(|| err("Wasm filter without config"))?;
    let vm = cfg
        .get("vm_config")
        .ok_or_else(|| err("Wasm filter without vm_config"))?;
    let code = vm
        .get("code")
        .and_then(|c| c.get("local"))
        .ok_or_else(|| err("vm_config.code.local is required"))?;
    let wasm = if let Some(f) = str_of(code, "filename") {
        let mut p = PathBuf::from(f);
        if p.is_relative() && !p.exists() && base_dir.join(&p).exists() {
            p = base_dir.join(p);
        }
        WasmSource::File(p)
    } else if let Some(s) = str_of(code, "inline_string") {
        WasmSource::Bytes(s.as_bytes().to_vec())
    } else {
        return Err(err("vm_config.code.local needs filename or inline_string"));
    };
    let name = str_of(cfg, "name").unwrap_or_default().to_string();
    let fail_open = cfg
        .get("fail_open")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || str_of(cfg, "failure_policy") == Some("FAIL_OPEN");
    let env = vm
        .get("environment_variables")
        .and_then(|e| e.get("key_values"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    Ok(PluginSpec {
        wasm,
        root_id: str_of(cfg, "root_id").unwrap_or_default().to_string(),
        vm_id: str_of(vm, "vm_id").unwrap_or_default().to_string(),
        configuration: any_bytes(cfg.get("configuration"))?,
        vm_configuration: any_bytes(vm.get("configuration"))?,
        name,
        fail_open,
        env,
        ..PluginSpec::default()
    })
}

/// Envoy hands a `StringValue`'s text (or a `BytesValue`'s bytes) to the plugin.
fn any_bytes(v: Option<&Value>) -> Result<Vec<u8>, Error> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    if is_type(v, "google.protobuf.StringValue") {
        return Ok(str_of(v, "value").unwrap_or_default().as_bytes().to_vec());
    }
    if is_type(v, "google.protobuf.BytesValue") {
        let text = str_of(v, "value").unwrap_or_default();
        return crate::json::base64_decode(text).ok_or_else(|| {
            err(format!(
                "configuration: BytesValue value {text:?} is not base64"
            ))
        });
    }
    Err(err(format!(
        "configuration of type {:?} is not supported (use google.protobuf.StringValue)",
        type_url(v)
    )))
}

fn read_routes(rc: &Value) -> Result<Routes, Error> {
    let mut routes = Routes::empty();
    routes.ignore_port_in_host_matching = rc
        .get("ignore_port_in_host_matching")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for vh in list(rc, "virtual_hosts") {
        let mut out = VirtualHost {
            name: str_of(vh, "name").unwrap_or_default().to_string(),
            domains: list(vh, "domains")
                .filter_map(|d| d.as_str().map(String::from))
                .collect(),
            routes: Vec::new(),
        };
        for r in list(vh, "routes") {
            out.routes.push(read_route(r, &mut routes)?);
        }
        routes.virtual_hosts.push(out);
    }
    Ok(routes)
}

fn read_route(r: &Value, routes: &mut Routes) -> Result<Route, Error> {
    let m = r.get("match").ok_or_else(|| err("route without match"))?;
    let path = if let Some(p) = str_of(m, "prefix") {
        PathMatch::Prefix(p.to_string())
    } else if let Some(p) = str_of(m, "path") {
        PathMatch::Exact(p.to_string())
    } else if let Some(p) = str_of(m, "path_separated_prefix") {
        PathMatch::SeparatedPrefix(p.to_string())
    } else {
        return Err(err(format!("unsupported route match {m}")));
    };
    let mut headers = Vec::new();
    for h in list(m, "headers") {
        let name = str_of(h, "name")
            .ok_or_else(|| err("header matcher without name"))?
            .to_ascii_lowercase();
        let exact = str_of(h, "exact_match")
            .or_else(|| h.get("string_match").and_then(|s| str_of(s, "exact")));
        if exact.is_none() && h.get("present_match").is_none() {
            return Err(err(format!("unsupported header matcher {h}")));
        }
        headers.push((name, exact.map(|e| e.as_bytes().to_vec())));
    }
    let mut timeout = Duration::from_secs(15);
    let action = if let Some(a) = r.get("route") {
        if let Some(t) = str_of(a, "timeout") {
            timeout = parse_duration(t)?;
        }
        if let Some(code) = str_of(a, "cluster_not_found_response_code") {
            routes.cluster_not_found_status = match code {
                "NOT_FOUND" => 404,
                "INTERNAL_SERVER_ERROR" => 500,
                _ => 503, // SERVICE_UNAVAILABLE, the default
            };
        }
        if let Some(c) = str_of(a, "cluster") {
            RouteAction::Cluster(c.to_string())
        } else if let Some(h) = str_of(a, "cluster_header") {
            RouteAction::ClusterHeader(h.to_ascii_lowercase())
        } else {
            return Err(err(format!("unsupported route action {a}")));
        }
    } else if let Some(d) = r.get("direct_response") {
        let status = d
            .get("status")
            .and_then(Value::as_u64)
            .ok_or_else(|| err("direct_response without status"))?;
        let body = d
            .get("body")
            .and_then(|b| str_of(b, "inline_string"))
            .unwrap_or_default();
        RouteAction::DirectResponse {
            status: status as u16,
            body: body.as_bytes().to_vec(),
        }
    } else {
        return Err(err(format!("unsupported route {r}")));
    };
    let remove_request_headers = list(r, "request_headers_to_remove")
        .filter_map(Value::as_str)
        .map(str::to_ascii_lowercase)
        .collect();
    Ok(Route {
        name: str_of(r, "name").unwrap_or_default().to_string(),
        path,
        headers,
        action,
        timeout,
        remove_request_headers,
    })
}

/// Protobuf JSON durations: "15s", "0.250s".
fn parse_duration(s: &str) -> Result<Duration, Error> {
    s.strip_suffix('s')
        .and_then(|n| n.parse::<f64>().ok())
        .filter(|n| *n >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| err(format!("bad duration {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAD_SHAPE: &str = r#"
static_resources:
  listeners:
  - name: http
    address: {socket_address: {address: 127.0.0.1, port_value: 10000}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            name: wasmgate
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster_header: x-wasmgate-cluster}
          http_filters:
          - name: wasmgate.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: wasmgate.router
                root_id: wasmgate.router
                fail_open: false
                vm_config: {vm_id: wasmgate, runtime: envoy.wasm.runtime.v8, code: {local: {filename: /abs/path/wasmgate_router.wasm}}}
                configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: '{"routes":[]}'}
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: east
  - name: west
"#;

    #[test]
    fn reads_the_generators_bootstrap() {
        let s = parse_bootstrap(LEAD_SHAPE, Path::new("/")).unwrap();
        assert_eq!(s.http_filters.len(), 1);
        let f = &s.http_filters[0];
        assert_eq!(
            (f.name.as_str(), f.root_id.as_str(), f.vm_id.as_str()),
            ("wasmgate.router", "wasmgate.router", "wasmgate")
        );
        assert_eq!(f.configuration, br#"{"routes":[]}"#);
        assert!(
            matches!(&f.wasm, WasmSource::File(p) if p == Path::new("/abs/path/wasmgate_router.wasm"))
        );
        assert_eq!(s.routes, Routes::cluster_header("x-wasmgate-cluster"));
        assert_eq!(s.clusters, ["east", "west"]);
        assert!(s.skipped_filters.is_empty());
    }

    #[test]
    fn reads_a_network_filter_in_front_of_tcp_proxy() {
        let tcp = r#"
static_resources:
  listeners:
  - name: tcp
    filter_chains:
    - filters:
      - name: wasmgate.balancer
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
          config:
            name: wasmgate.balancer
            root_id: wasmgate.balancer
            vm_config: {vm_id: wasmgate, code: {local: {filename: b.wasm}}}
            configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: "{}"}
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp
          cluster: fallback
"#;
        let s = parse_bootstrap(tcp, Path::new("/")).unwrap();
        assert!(s.http_filters.is_empty());
        assert_eq!(s.network_filters.len(), 1);
        assert_eq!(s.network_filters[0].root_id, "wasmgate.balancer");
        assert_eq!(s.tcp_cluster.as_deref(), Some("fallback"));
    }

    #[test]
    fn rejects_what_it_cannot_model() {
        let bad = LEAD_SHAPE.replace(
            "route: {cluster_header: x-wasmgate-cluster}",
            "route: {weighted_clusters: {}}",
        );
        assert!(matches!(
            parse_bootstrap(&bad, Path::new("/")),
            Err(Error::EnvoyConfig(_))
        ));
        assert!(parse_bootstrap("static_resources: {}", Path::new("/")).is_err());
    }
}
