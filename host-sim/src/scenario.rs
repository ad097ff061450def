//! Scenario files (`host-sim test`) and request lines (`host-sim run`).
//!
//! A scenario names a target (an Envoy bootstrap, or one Wasm module with its configuration
//! and a route), scripts the upstreams, and lists requests with the outcome each must have.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::bootstrap_reader::{load_bootstrap_with, BootstrapOptions};
use crate::error::Error;
use crate::http::{FilterChain, HttpOutcome, HttpRequest};
use crate::json::bytes_from_json;
use crate::plugin::{HostSim, Plugin, PluginSpec, WasmSource};
use crate::properties::{PropValue, PropertyOverrides};
use crate::route_config::Routes;
use crate::tcp::{TcpConnection, TcpOutcome};
use crate::types::Level;
use crate::upstreams::{Callout, GrpcReply, UpstreamReply};

fn input_err(path: &str, message: impl Into<String>) -> Error {
    Error::Input {
        path: path.to_string(),
        message: message.into(),
    }
}

/// How the plugins of a target are loaded.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// VMs per plugin (Envoy worker threads).
    pub workers: usize,
    /// Properties every plugin reads (on top of the bootstrap's `node`).
    pub properties: PropertyOverrides,
    /// Lowest level kept in the logs.
    pub log_level: Level,
    /// Filters of the bootstrap to leave out rather than refuse it.
    pub skip_filters: Vec<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            workers: 1,
            properties: PropertyOverrides::default(),
            log_level: Level::Info,
            skip_filters: Vec::new(),
        }
    }
}

/// What left-out filters would have added to every request: headers and properties (such
/// as `metadata.filter_metadata.NS.KEY` dynamic metadata).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Inject {
    pub headers: Option<Value>,
    pub properties: BTreeMap<String, Value>,
}

impl Inject {
    fn apply(&self, mut req: HttpRequest) -> Result<HttpRequest, String> {
        if let Some(h) = &self.headers {
            for (k, v) in header_pairs(h, "inject.headers")? {
                req = req.added_by_filter(&k, v);
            }
        }
        for (k, v) in &self.properties {
            req = req.property(&dotted(k), PropValue::from_json(v));
        }
        Ok(req)
    }
}

/// A scripted answer to unary gRPC calls.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcSpec {
    #[serde(default)]
    pub status: u32,
    #[serde(default)]
    pub message: String,
    /// The response message: a string or `{hex: ...}`.
    pub response: Option<Value>,
    #[serde(default)]
    pub delay_ms: u64,
}

impl GrpcSpec {
    fn reply(&self, key: &str) -> Result<GrpcReply, Error> {
        let response = match &self.response {
            None => Vec::new(),
            Some(v) => bytes_from_json(v).ok_or_else(|| {
                input_err(
                    &format!("grpc.{key}.response"),
                    "expected a string or {hex: ...}",
                )
            })?,
        };
        Ok(GrpcReply {
            status: self.status,
            message: self.message.clone(),
            response,
            delay: Duration::from_millis(self.delay_ms),
        })
    }
}

/// A scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// An Envoy bootstrap providing filters, routes and clusters...
    pub envoy_config: Option<String>,
    /// ...or a single Wasm module with its plugin configuration (a string, or any YAML
    /// value, which is passed as JSON).
    pub wasm: Option<String>,
    pub config: Option<Value>,
    pub name: Option<String>,
    pub root_id: Option<String>,
    pub vm_id: Option<String>,
    #[serde(default)]
    pub fail_open: bool,
    /// Route by this header (default `x-wasmgate-cluster`), or everything to `cluster`.
    pub cluster_header: Option<String>,
    pub cluster: Option<String>,
    /// Clusters that exist; any other name is unknown (503, like Envoy's router).
    pub clusters: Option<Vec<String>>,
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamSpec>,
    /// Unary gRPC answers by `cluster`, `cluster/service` or `cluster/service/method`.
    #[serde(default)]
    pub grpc: BTreeMap<String, GrpcSpec>,
    /// Filters of `envoy_config` host-sim cannot run, to leave out (by name or type).
    #[serde(default)]
    pub skip_filters: Vec<String>,
    /// What the left-out filters would have added to each request.
    pub inject: Option<Inject>,
    /// Plugin properties by dotted path, e.g. `xds.node.metadata.REGION: us`.
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    pub workers: Option<usize>,
    /// Lowest level the guests log at (default `info`, as Envoy's `-l info`).
    pub log_level: Option<String>,
    #[serde(default)]
    pub cases: Vec<Case>,
    /// TCP connections through the network filter (or the `wasm` module) to `tcp_proxy`.
    #[serde(default)]
    pub tcp_cases: Vec<TcpCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCase {
    pub name: String,
    #[serde(default)]
    pub connection: ConnectionSpec,
    #[serde(default)]
    pub expect: TcpExpect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionSpec {
    /// The listener port the client connected to.
    pub port: Option<u16>,
    pub source: Option<String>,
    pub data: Vec<String>,
    pub upstream_data: Vec<String>,
    pub properties: BTreeMap<String, Value>,
    pub advance_ms: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpExpect {
    /// A cluster name, or `null` for none.
    #[serde(deserialize_with = "some_value")]
    pub cluster: Option<Value>,
    pub closed: Option<bool>,
    pub to_upstream: Option<String>,
    pub to_downstream: Option<String>,
    pub logs_contain: Vec<String>,
    pub filter_state: BTreeMap<String, String>,
}

impl ConnectionSpec {
    pub fn to_connection(&self, default_cluster: Option<String>) -> TcpConnection {
        let mut c = TcpConnection {
            downstream_data: self.data.iter().map(|d| d.as_bytes().to_vec()).collect(),
            upstream_data: self
                .upstream_data
                .iter()
                .map(|d| d.as_bytes().to_vec())
                .collect(),
            default_cluster,
            ..TcpConnection::default()
        };
        if let Some(p) = self.port {
            c.downstream_local_port = p;
        }
        if let Some(s) = &self.source {
            c.source_address = s.clone();
        }
        for (k, v) in &self.properties {
            c.properties.set(&dotted(k), PropValue::from_json(v));
        }
        c
    }
}

/// Compares a TCP outcome with expectations.
pub fn check_tcp(expect: &TcpExpect, out: &TcpOutcome) -> Vec<String> {
    let mut diffs = Vec::new();
    if let Some(c) = &expect.cluster {
        if c.as_str() != out.cluster.as_deref() {
            diffs.push(format!(
                "cluster: expected {:?}, got {:?}",
                c.as_str(),
                out.cluster
            ));
        }
    }
    if let Some(c) = expect.closed {
        if c != out.closed {
            diffs.push(format!("closed: expected {c}, got {}", out.closed));
        }
    }
    for (what, want, got) in [
        ("to_upstream", &expect.to_upstream, &out.to_upstream),
        ("to_downstream", &expect.to_downstream, &out.to_downstream),
    ] {
        if let Some(w) = want {
            if w.as_bytes() != got.as_slice() {
                diffs.push(format!(
                    "{what}: expected {w:?}, got {:?}",
                    String::from_utf8_lossy(got)
                ));
            }
        }
    }
    for needle in &expect.logs_contain {
        if !out.logs.iter().any(|(_, m)| m.contains(needle.as_str())) {
            diffs.push(format!("logs: no line contains {needle:?}"));
        }
    }
    for (k, v) in &expect.filter_state {
        let got = out
            .filter_state
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_slice());
        if got != Some(v.as_bytes()) {
            diffs.push(format!(
                "filter_state {k}: expected {v:?}, got {:?}",
                got.map(String::from_utf8_lossy)
            ));
        }
    }
    diffs
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub reset: bool,
    #[serde(default)]
    pub delay_ms: u64,
}

fn ok_status() -> u16 {
    200
}

impl UpstreamSpec {
    fn reply(&self) -> UpstreamReply {
        let mut r = if self.reset {
            UpstreamReply::reset()
        } else {
            UpstreamReply::status(self.status)
        };
        r.body = self.body.as_bytes().to_vec();
        for (k, v) in &self.headers {
            r = r.with_header(k, v);
        }
        r.with_delay(Duration::from_millis(self.delay_ms))
    }
}

/// A request, as a scenario case or one line of a `run` requests file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestSpec {
    pub name: Option<String>,
    pub method: Option<String>,
    #[serde(alias = "authority")]
    pub host: Option<String>,
    pub path: Option<String>,
    /// `{name: value}` or `[[name, value], ...]`; a value is a string or `{hex: "..."}`.
    pub headers: Option<Value>,
    pub body: Option<String>,
    pub chunks: Vec<String>,
    pub trailers: Option<Value>,
    /// `source.address` (`ip:port`).
    pub source: Option<String>,
    pub properties: BTreeMap<String, Value>,
    /// Virtual time to let pass before this request.
    pub advance_ms: u64,
    /// `run` only: let `advance_ms` pass and send no request (the result has the root
    /// contexts' logs, e.g. of ticks).
    pub advance_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// Without a request, the case only lets `advance_ms` pass and checks the root logs.
    pub request: Option<RequestSpec>,
    #[serde(default)]
    pub advance_ms: u64,
    #[serde(default)]
    pub expect: Expect,
}

/// Expected outcome; absent fields are not checked.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expect {
    pub status: Option<u16>,
    /// A cluster name, or `null` for "reached no upstream".
    #[serde(deserialize_with = "some_value")]
    pub cluster: Option<Value>,
    pub body: Option<String>,
    pub details: Option<String>,
    /// Response headers; `null` means absent, a list means every value in order.
    pub headers: BTreeMap<String, Value>,
    /// Headers forwarded upstream; `null` means absent, a list means every value in order.
    pub upstream_headers: BTreeMap<String, Value>,
    /// Lines logged by root contexts (start-up, ticks, queues) since the previous case.
    pub root_logs_contain: Vec<String>,
    /// The callouts of the stream, in order (only the fields given are compared).
    pub callouts: Option<Vec<CalloutExpect>>,
    /// Callouts root contexts made outside streams since the previous case (start-up,
    /// ticks, queues, the services'), in order.
    pub root_callouts: Option<Vec<CalloutExpect>>,
    pub local_reply: Option<bool>,
    pub logs_contain: Vec<String>,
    pub filter_state: BTreeMap<String, String>,
}

/// An expected callout.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalloutExpect {
    pub cluster: Option<String>,
    /// Headers (or gRPC initial metadata) the callout carried; `null` means absent.
    pub headers: BTreeMap<String, Value>,
    pub body: Option<Value>,
    pub service: Option<String>,
    pub method: Option<String>,
}

/// Keeps an explicit `null` as `Some(Value::Null)`.
fn some_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn header_pairs(v: &Value, what: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let bytes = |v: &Value, k: &str| {
        bytes_from_json(v).ok_or_else(|| format!("{what} {k}: expected a string or {{hex: ...}}"))
    };
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| Ok((k.clone(), bytes(v, k)?)))
            .collect(),
        Value::Array(a) => a
            .iter()
            .map(|p| match p.as_array().map(Vec::as_slice) {
                Some([Value::String(k), v]) => Ok((k.clone(), bytes(v, k)?)),
                _ => Err(format!("{what}: expected [name, value] pairs")),
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err(format!("{what}: expected a map or a list of pairs")),
    }
}

fn dotted(path: &str) -> Vec<&str> {
    path.split('.').collect()
}

impl RequestSpec {
    pub fn to_request(&self) -> Result<HttpRequest, String> {
        let mut r = HttpRequest::new(
            self.method.as_deref().unwrap_or("GET"),
            self.host.as_deref().unwrap_or("localhost"),
            self.path.as_deref().unwrap_or("/"),
        );
        if let Some(h) = &self.headers {
            for (k, v) in header_pairs(h, "headers")? {
                r = r.header(&k, v);
            }
        }
        if let Some(b) = &self.body {
            r = r.body(b.as_bytes().to_vec());
        }
        for c in &self.chunks {
            r = r.chunk(c.as_bytes().to_vec());
        }
        if let Some(t) = &self.trailers {
            for (k, v) in header_pairs(t, "trailers")? {
                r = r.trailer(&k, v);
            }
        }
        if let Some(s) = &self.source {
            r = r.source(s);
        }
        for (k, v) in &self.properties {
            r = r.property(&dotted(k), PropValue::from_json(v));
        }
        Ok(r)
    }
}

/// Plugins plus routes: what requests run against.
pub struct Target {
    pub sim: HostSim,
    /// HTTP filters, in chain order.
    pub plugins: Vec<Plugin>,
    pub routes: Routes,
    /// The network filter in front of `tcp_proxy` (a single-module target uses its plugin).
    pub network: Option<Plugin>,
    /// `tcp_proxy`'s configured cluster.
    pub tcp_cluster: Option<String>,
    /// Singleton Wasm services (`bootstrap_extensions`).
    pub services: Vec<Plugin>,
    /// Filters of the bootstrap left out, by name, in chain order.
    pub skipped_filters: Vec<String>,
    /// Added to every request in place of the left-out filters.
    pub inject: Inject,
}

impl Target {
    /// A target of HTTP filters and routes alone.
    pub fn new(sim: &HostSim, plugins: Vec<Plugin>, routes: Routes) -> Target {
        Target {
            sim: sim.clone(),
            plugins,
            routes,
            network: None,
            tcp_cluster: None,
            services: Vec::new(),
            skipped_filters: Vec::new(),
            inject: Inject::default(),
        }
    }

    pub fn run(&self, req: HttpRequest) -> HttpOutcome {
        let req = match self.inject.apply(req) {
            Ok(r) => r,
            Err(m) => {
                return HttpOutcome {
                    vm_failures: vec![m],
                    ..HttpOutcome::default()
                }
            }
        };
        FilterChain::new(&self.sim, self.plugins.iter().collect())
            .with_services(self.services.iter().collect())
            .run_one(&self.routes, req)
    }

    /// Every plugin: HTTP filters, the network filter, the services.
    fn all_plugins(&self) -> Vec<&Plugin> {
        self.plugins
            .iter()
            .chain(self.network.as_ref())
            .chain(&self.services)
            .collect()
    }

    pub fn advance(&self, d: Duration) {
        FilterChain::new(&self.sim, self.all_plugins()).advance(d);
    }

    /// Log lines of root contexts outside streams (start-up, ticks and queues while no
    /// stream was open) not taken yet, in plugin order.
    pub fn take_root_logs(&self) -> Vec<(Level, String)> {
        self.all_plugins()
            .into_iter()
            .flat_map(|p| p.take_logs())
            .collect()
    }

    /// Callouts root contexts made outside streams (start-up, ticks, queues; the
    /// services' at any time) not taken yet, in plugin order.
    pub fn take_root_callouts(&self) -> Vec<Callout> {
        self.all_plugins()
            .into_iter()
            .flat_map(|p| p.take_callouts())
            .collect()
    }

    /// Runs one TCP connection; `None` when the target has no network filter.
    pub fn tcp(&self, conn: TcpConnection) -> Option<TcpOutcome> {
        self.network
            .as_ref()
            .or(self.plugins.first())
            .map(|p| p.tcp(conn))
    }

    /// Loads an Envoy bootstrap's Wasm filters and routes, with `opts` applied to every
    /// filter.
    pub fn from_envoy(sim: &HostSim, path: &Path, opts: &LoadOptions) -> Result<Target, Error> {
        let setup = load_bootstrap_with(
            path,
            &BootstrapOptions {
                skip_filters: opts.skip_filters.clone(),
            },
        )?;
        if setup.http_filters.is_empty()
            && setup.network_filters.is_empty()
            && setup.services.is_empty()
        {
            return Err(Error::EnvoyConfig(
                "no Wasm filter in the HTTP connection manager or in front of tcp_proxy, \
                 and no envoy.bootstrap.wasm service"
                    .into(),
            ));
        }
        if setup.network_filters.len() > 1 {
            return Err(Error::EnvoyConfig(
                "only one Wasm network filter per chain is supported".into(),
            ));
        }
        setup.declare_clusters(sim);
        let load = |mut spec: PluginSpec| {
            spec.workers = opts.workers;
            spec.log_level = opts.log_level;
            // The bootstrap's own (its `node`), then the caller's on top.
            spec.properties.extend(&opts.properties);
            sim.load(spec)
        };
        let network = setup
            .network_filters
            .into_iter()
            .next()
            .map(load)
            .transpose()?;
        let plugins = setup
            .http_filters
            .into_iter()
            .map(load)
            .collect::<Result<_, _>>()?;
        // A singleton runs one VM on the main thread, whatever the worker count.
        let services = setup
            .services
            .into_iter()
            .map(|mut spec| {
                spec.log_level = opts.log_level;
                spec.properties.extend(&opts.properties);
                sim.load(spec)
            })
            .collect::<Result<_, _>>()?;
        Ok(Target {
            sim: sim.clone(),
            plugins,
            routes: setup.routes,
            network,
            tcp_cluster: setup.tcp_cluster,
            services,
            skipped_filters: setup.skipped_filters,
            inject: Inject::default(),
        })
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

/// Plugin configuration from a scenario: strings verbatim, other values as JSON.
fn config_bytes(v: &Option<Value>) -> Vec<u8> {
    match v {
        None => Vec::new(),
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(other) => other.to_string().into_bytes(),
    }
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        serde_yaml_ng::from_str(&text)
            .map_err(|e| input_err(&path.display().to_string(), e.to_string()))
    }

    /// Builds the target; relative paths are relative to `base` (the scenario's folder).
    pub fn target(&self, sim: &HostSim, base: &Path) -> Result<Target, Error> {
        for (name, u) in &self.upstreams {
            sim.set_upstream(name, u.reply());
        }
        for (key, g) in &self.grpc {
            sim.set_grpc_reply(key, g.reply(key)?);
        }
        if let Some(c) = &self.clusters {
            sim.declare_clusters(c);
        }
        let mut opts = LoadOptions {
            workers: self.workers.unwrap_or(1),
            skip_filters: self.skip_filters.clone(),
            ..LoadOptions::default()
        };
        for (k, v) in &self.properties {
            opts.properties.set(&dotted(k), PropValue::from_json(v));
        }
        if let Some(l) = &self.log_level {
            opts.log_level = Level::parse(l).ok_or_else(|| Error::Input {
                path: base.display().to_string(),
                message: format!("log_level: unknown level {l:?}"),
            })?;
        }
        let mut target = match (&self.envoy_config, &self.wasm) {
            (Some(e), None) => Target::from_envoy(sim, &resolve(base, e), &opts)?,
            (None, Some(w)) => {
                let path = resolve(base, w);
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let name = self.name.clone().unwrap_or(stem);
                let mut spec = PluginSpec::new(WasmSource::File(path), &name);
                spec.root_id = self.root_id.clone().unwrap_or(name.clone());
                spec.vm_id = self.vm_id.clone().unwrap_or(name);
                spec.configuration = config_bytes(&self.config);
                spec.fail_open = self.fail_open;
                spec.workers = opts.workers;
                spec.log_level = opts.log_level;
                spec.properties = opts.properties;
                let routes = match &self.cluster {
                    Some(c) => Routes::fixed(c),
                    None => Routes::cluster_header(
                        self.cluster_header
                            .as_deref()
                            .unwrap_or("x-wasmgate-cluster"),
                    ),
                };
                Target {
                    tcp_cluster: self.cluster.clone(),
                    ..Target::new(sim, vec![sim.load(spec)?], routes)
                }
            }
            _ => {
                return Err(input_err(
                    "scenario",
                    "give exactly one of envoy_config and wasm",
                ))
            }
        };
        if let Some(h) = &self.cluster_header {
            if self.envoy_config.is_some() {
                target.routes = Routes::cluster_header(h);
            }
        }
        if let Some(i) = &self.inject {
            target.inject = i.clone();
        }
        Ok(target)
    }
}

/// Compares an outcome with expectations; returns one line per mismatch.
pub fn check(expect: &Expect, out: &HttpOutcome) -> Vec<String> {
    let mut diffs = Vec::new();
    let show = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    if let Some(s) = expect.status {
        if s != out.status {
            diffs.push(format!("status: expected {s}, got {}", out.status));
        }
    }
    if let Some(c) = &expect.cluster {
        let want = c.as_str();
        if want != out.cluster.as_deref() {
            diffs.push(format!("cluster: expected {want:?}, got {:?}", out.cluster));
        }
    }
    if let Some(b) = &expect.body {
        if b.as_bytes() != out.response_body.as_slice() {
            diffs.push(format!(
                "body: expected {b:?}, got {}",
                show(&out.response_body)
            ));
        }
    }
    if let Some(d) = &expect.details {
        if *d != out.details {
            diffs.push(format!("details: expected {d:?}, got {:?}", out.details));
        }
    }
    if let Some(l) = expect.local_reply {
        if l != out.local_reply.is_some() {
            diffs.push(format!(
                "local_reply: expected {l}, got {:?}",
                out.local_reply.as_ref().map(|r| r.status)
            ));
        }
    }
    headers(
        &mut diffs,
        "response header",
        &expect.headers,
        &out.response_headers,
    );
    headers(
        &mut diffs,
        "upstream header",
        &expect.upstream_headers,
        out.upstream_request.as_deref().unwrap_or_default(),
    );
    for needle in &expect.logs_contain {
        if !out.logged(needle) {
            diffs.push(format!("logs: no line contains {needle:?}"));
        }
    }
    if let Some(want) = &expect.callouts {
        check_callouts(&mut diffs, "callouts", want, &out.callouts);
    }
    for (k, v) in &expect.filter_state {
        let got = out
            .filter_state
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_slice());
        if got != Some(v.as_bytes()) {
            diffs.push(format!(
                "filter_state {k}: expected {v:?}, got {:?}",
                got.map(show)
            ));
        }
    }
    diffs
}

/// Compares callouts with what a case expects: the count, and the fields given.
pub fn check_callouts(
    diffs: &mut Vec<String>,
    what: &str,
    want: &[CalloutExpect],
    got: &[Callout],
) {
    if want.len() != got.len() {
        diffs.push(format!(
            "{what}: expected {}, got {} ({:?})",
            want.len(),
            got.len(),
            got.iter().map(|c| c.cluster.as_str()).collect::<Vec<_>>()
        ));
    }
    for (k, (w, c)) in want.iter().zip(got).enumerate() {
        for (field, want, got) in [
            ("cluster", &w.cluster, &c.cluster),
            ("service", &w.service, &c.service),
            ("method", &w.method, &c.method),
        ] {
            if want.as_ref().is_some_and(|x| x != got) {
                diffs.push(format!(
                    "{what}[{k}].{field}: expected {want:?}, got {got:?}"
                ));
            }
        }
        if let Some(b) = &w.body {
            if bytes_from_json(b).as_deref() != Some(c.body.as_slice()) {
                diffs.push(format!(
                    "{what}[{k}].body: expected {b}, got {:?}",
                    String::from_utf8_lossy(&c.body)
                ));
            }
        }
        headers(
            diffs,
            &format!("{what}[{k}] header"),
            &w.headers,
            &c.headers,
        );
    }
}

/// Compares expected headers with `got`: `null` means absent, a string the only value, a
/// list every value in order.
fn headers(
    diffs: &mut Vec<String>,
    what: &str,
    want: &BTreeMap<String, Value>,
    got: &[(String, Vec<u8>)],
) {
    let show = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    for (k, v) in want {
        let name = k.to_ascii_lowercase();
        let values: Vec<&[u8]> = got
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
            .collect();
        let expected: Option<Vec<Vec<u8>>> = match v {
            Value::Null => Some(Vec::new()),
            Value::Array(a) => a.iter().map(bytes_from_json).collect(),
            v => bytes_from_json(v).map(|b| vec![b]),
        };
        if expected
            .as_ref()
            .map(|e| e.iter().map(Vec::as_slice).collect::<Vec<_>>())
            != Some(values.clone())
        {
            let got = if values.is_empty() {
                "absent".to_string()
            } else {
                values
                    .iter()
                    .map(|v| show(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            diffs.push(format!("{what} {k}: expected {v}, got {got}"));
        }
    }
}

/// Runs a scenario file; returns (passed, failed, report text).
pub fn run_file(sim: &HostSim, path: &Path) -> Result<(usize, usize, String), Error> {
    let scenario = Scenario::load(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let target = scenario.target(sim, base)?;
    let (mut passed, mut failed) = (0, 0);
    let mut report = String::new();
    if !target.skipped_filters.is_empty() {
        let _ = writeln!(
            report,
            "SKIPPED FILTERS (not run): {}",
            target.skipped_filters.join(", ")
        );
    }
    let mut record = |name: &str, diffs: Vec<String>, logs: &[(crate::types::Level, String)]| {
        if diffs.is_empty() {
            passed += 1;
            let _ = writeln!(report, "PASS {name}");
        } else {
            failed += 1;
            let _ = writeln!(report, "FAIL {name}");
            for d in diffs {
                let _ = writeln!(report, "     {d}");
            }
            for (level, msg) in logs {
                let _ = writeln!(report, "     log[{level}] {msg}");
            }
        }
    };
    for case in &scenario.cases {
        let advance = case.advance_ms + case.request.as_ref().map_or(0, |r| r.advance_ms);
        if advance > 0 {
            target.advance(Duration::from_millis(advance));
        }
        let mut root_logs = target.take_root_logs();
        let mut root_callouts = target.take_root_callouts();
        let mut out = match &case.request {
            Some(r) => {
                let req = r.to_request().map_err(|m| {
                    input_err(&path.display().to_string(), format!("{}: {m}", case.name))
                })?;
                target.run(req)
            }
            None => HttpOutcome::default(),
        };
        root_logs.extend(target.take_root_logs());
        root_callouts.extend(target.take_root_callouts());
        let mut diffs = if case.request.is_some() {
            check(&case.expect, &out)
        } else {
            Vec::new()
        };
        if let Some(want) = &case.expect.root_callouts {
            check_callouts(&mut diffs, "root_callouts", want, &root_callouts);
        }
        for needle in &case.expect.root_logs_contain {
            if !root_logs.iter().any(|(_, m)| m.contains(needle.as_str())) {
                diffs.push(format!("root logs: no line contains {needle:?}"));
            }
        }
        let mut logs = root_logs;
        logs.append(&mut out.logs);
        record(&case.name, diffs, &logs);
    }
    for case in &scenario.tcp_cases {
        if case.connection.advance_ms > 0 {
            target.advance(Duration::from_millis(case.connection.advance_ms));
        }
        let conn = case.connection.to_connection(target.tcp_cluster.clone());
        let out = target.tcp(conn).ok_or_else(|| {
            input_err(
                &path.display().to_string(),
                "tcp_cases need a network filter",
            )
        })?;
        record(&case.name, check_tcp(&case.expect, &out), &out.logs);
    }
    Ok((passed, failed, report))
}
