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

use crate::envoy_config::load_bootstrap;
use crate::error::Error;
use crate::http::{FilterChain, HttpOutcome, HttpRequest};
use crate::json::bytes_from_json;
use crate::plugin::{HostSim, Plugin, PluginSpec, WasmSource};
use crate::properties::{PropValue, PropertyOverrides};
use crate::routes::Routes;
use crate::tcp::{TcpConnection, TcpOutcome};
use crate::types::Level;
use crate::upstreams::UpstreamReply;

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
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            workers: 1,
            properties: PropertyOverrides::default(),
            log_level: Level::Info,
        }
    }
}

/// A scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// An Envoy bootstrap providing filters, routes and clusters...
    #[serde(default)]
    pub envoy_config: Option<String>,
    /// ...or a single Wasm module with its plugin configuration (a string, or any YAML
    /// value, which is passed as JSON).
    #[serde(default)]
    pub wasm: Option<String>,
    #[serde(default)]
    pub config: Option<Value>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub root_id: Option<String>,
    #[serde(default)]
    pub vm_id: Option<String>,
    #[serde(default)]
    pub fail_open: bool,
    /// Route by this header (default `x-wasmgate-cluster`), or everything to `cluster`.
    #[serde(default)]
    pub cluster_header: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
    /// Clusters that exist; any other name is unknown (503, like Envoy's router).
    #[serde(default)]
    pub clusters: Option<Vec<String>>,
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamSpec>,
    /// Plugin properties by dotted path, e.g. `xds.node.metadata.REGION: us`.
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    #[serde(default)]
    pub workers: Option<usize>,
    /// Lowest level the guests log at (default `info`, as Envoy's `-l info`).
    #[serde(default)]
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
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    /// The listener port the client connected to.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub data: Vec<String>,
    #[serde(default)]
    pub upstream_data: Vec<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    #[serde(default)]
    pub advance_ms: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpExpect {
    /// A cluster name, or `null` for none.
    #[serde(default, deserialize_with = "some_value")]
    pub cluster: Option<Value>,
    #[serde(default)]
    pub closed: Option<bool>,
    #[serde(default)]
    pub to_upstream: Option<String>,
    #[serde(default)]
    pub to_downstream: Option<String>,
    #[serde(default)]
    pub logs_contain: Vec<String>,
    #[serde(default)]
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
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default, alias = "authority")]
    pub host: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// `{name: value}` or `[[name, value], ...]`; a value is a string or `{hex: "..."}`.
    #[serde(default)]
    pub headers: Option<Value>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub chunks: Vec<String>,
    #[serde(default)]
    pub trailers: Option<Value>,
    /// `source.address` (`ip:port`).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    /// Virtual time to let pass before this request.
    #[serde(default)]
    pub advance_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub request: RequestSpec,
    #[serde(default)]
    pub expect: Expect,
}

/// Expected outcome; absent fields are not checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub status: Option<u16>,
    /// A cluster name, or `null` for "reached no upstream".
    #[serde(default, deserialize_with = "some_value")]
    pub cluster: Option<Value>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    /// Response headers; `null` means absent.
    #[serde(default)]
    pub headers: BTreeMap<String, Value>,
    /// Headers forwarded upstream; `null` means absent.
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, Value>,
    #[serde(default)]
    pub local_reply: Option<bool>,
    #[serde(default)]
    pub logs_contain: Vec<String>,
    #[serde(default)]
    pub filter_state: BTreeMap<String, String>,
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
}

impl Target {
    pub fn run(&self, req: HttpRequest) -> HttpOutcome {
        FilterChain::new(self.plugins.iter().collect()).http(&self.sim, &self.routes, req)
    }

    pub fn advance(&self, d: Duration) {
        FilterChain::new(self.plugins.iter().chain(self.network.as_ref()).collect()).advance(d);
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
        let setup = load_bootstrap(path)?;
        if setup.http_filters.is_empty() && setup.network_filters.is_empty() {
            return Err(Error::EnvoyConfig(
                "no Wasm filter in the HTTP connection manager or in front of tcp_proxy".into(),
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
        Ok(Target {
            sim: sim.clone(),
            plugins,
            routes: setup.routes,
            network,
            tcp_cluster: setup.tcp_cluster,
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
        if let Some(c) = &self.clusters {
            sim.declare_clusters(c);
        }
        let mut opts = LoadOptions {
            workers: self.workers.unwrap_or(1),
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
                    sim: sim.clone(),
                    plugins: vec![sim.load(spec)?],
                    routes,
                    network: None,
                    tcp_cluster: self.cluster.clone(),
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
    let mut headers =
        |what: &str, want: &BTreeMap<String, Value>, get: &dyn Fn(&str) -> Option<Vec<u8>>| {
            for (k, v) in want {
                let got = get(k);
                let ok = match (v, &got) {
                    (Value::Null, None) => true,
                    (Value::Null, Some(_)) | (_, None) => false,
                    (v, Some(g)) => bytes_from_json(v).as_deref() == Some(g.as_slice()),
                };
                if !ok {
                    diffs.push(format!(
                        "{what} {k}: expected {v}, got {}",
                        got.as_deref().map_or("absent".into(), show)
                    ));
                }
            }
        };
    headers("response header", &expect.headers, &|k| {
        out.response_header(k).map(<[u8]>::to_vec)
    });
    headers("upstream header", &expect.upstream_headers, &|k| {
        out.upstream_header(k).map(<[u8]>::to_vec)
    });
    for needle in &expect.logs_contain {
        if !out.logged(needle) {
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
                got.map(show)
            ));
        }
    }
    diffs
}

/// Runs a scenario file; returns (passed, failed, report text).
pub fn run_file(sim: &HostSim, path: &Path) -> Result<(usize, usize, String), Error> {
    let scenario = Scenario::load(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let target = scenario.target(sim, base)?;
    let (mut passed, mut failed) = (0, 0);
    let mut report = String::new();
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
        if case.request.advance_ms > 0 {
            target.advance(Duration::from_millis(case.request.advance_ms));
        }
        let req = case
            .request
            .to_request()
            .map_err(|m| input_err(&path.display().to_string(), format!("{}: {m}", case.name)))?;
        let out = target.run(req);
        record(&case.name, check(&case.expect, &out), &out.logs);
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
