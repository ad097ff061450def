//! The conformance-style table (tests/conformance/*.yaml): Gateway API manifests, and the
//! requests sent through what the generator makes of them, with what the client and the
//! backend must see. One file is run three ways, each reduced to the same [`Seen`] and
//! checked against the same expectations: the generator's `explain` decision, the compiled
//! filters in host-sim, and a real Envoy in front of echo backends. The format is described
//! in tests/conformance/README.md.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::backend::Backend;
use crate::deploy::{inventory_yaml, Member};
use crate::envoy_process::Envoy;
use crate::free_port;
use crate::paths::{wasm, workspace_root};
use crate::scratch::Scratch;

/// One file of the table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub feature: String,
    /// Where in the Gateway API the behaviour is defined, in our words.
    pub spec: String,
    /// Multi-document YAML given to `wasmgate generate`, or the path (relative to the case
    /// file) of such a file.
    pub manifests: String,
    /// Route status the generator must report (see [`StatusExpectation`]).
    #[serde(default)]
    pub status: Vec<StatusExpectation>,
    #[serde(default)]
    pub cases: Vec<Case>,
    /// Filled in by [`load_all`]: the file the cases came from.
    #[serde(skip)]
    pub path: PathBuf,
}

/// A route's condition as the generator must report it in status.yaml, for one parent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusExpectation {
    /// `HTTPRoute` unless given.
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    /// The parent Gateway's name; needed when the route has several parents.
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default, rename = "sectionName")]
    pub section_name: Option<String>,
    /// With `kind: Gateway`: the listener whose status is checked (the Gateway's own
    /// conditions when left out).
    #[serde(default)]
    pub listener: Option<String>,
    /// With `listener`: its `attachedRoutes`.
    #[serde(default, rename = "attachedRoutes")]
    pub attached_routes: Option<u32>,
    /// With `listener`: its `supportedKinds` (kind names).
    #[serde(default, rename = "supportedKinds")]
    pub supported_kinds: Option<Vec<String>>,
    /// Condition type -> `"True/Reason"` or `"False/Reason"`.
    #[serde(default)]
    pub conditions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub request: Request,
    #[serde(rename = "expect")]
    pub want: Expect,
    /// Ways this case is not run (`explain`, `hostsim`, `envoy`), each with a reason.
    #[serde(default)]
    pub skip: BTreeMap<String, String>,
    /// Send the request this many times (one filter instance, one Envoy) and check
    /// `expect.shares` instead of each answer: for weighted splits.
    #[serde(default)]
    pub repeat: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "get")]
    pub method: String,
    pub host: String,
    /// Path with query.
    #[serde(default = "root")]
    pub path: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The declared port of the Gateway listener the request is sent to; may be left out
    /// when there is exactly one HTTP listener.
    #[serde(default)]
    pub port: Option<u16>,
    /// The Gateway, when several declare the same port.
    #[serde(default)]
    pub gateway: Option<String>,
}

fn get() -> String {
    "GET".into()
}

fn root() -> String {
    "/".into()
}

/// What must be seen. Every field left out is not checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    /// The client's status (200 when a backend answers).
    #[serde(default)]
    pub status: Option<u16>,
    /// The backend that received the request: the Service name (`namespace/name` outside
    /// `default`). `~` or left out with a non-2xx status: no backend.
    #[serde(default)]
    pub backend: Option<String>,
    /// What the backend received.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// Upstream request headers and their value (one value, exactly).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub absent_headers: Vec<String>,
    /// Response headers the client sees.
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub absent_response_headers: Vec<String>,
    /// `false`: no backend may receive the request, whatever the status (an answer the
    /// gateway gives itself, such as a CORS preflight).
    #[serde(default)]
    pub forwarded: Option<bool>,
    /// With `repeat`: each outcome (the backend's name, or the status of an answer no
    /// backend gave, such as `"500"`) -> `[least, most]` share of the answers. Every answer
    /// must be one of these outcomes.
    #[serde(default)]
    pub shares: BTreeMap<String, (f64, f64)>,
}

/// What one way of running a case observed.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub status: u16,
    pub backend: Option<String>,
    pub method: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    /// Upstream headers, lower-case names; `None` when the way cannot say.
    pub headers: Option<Vec<(String, String)>>,
    pub response_headers: Vec<(String, String)>,
}

fn find<'a>(list: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    list.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Compares what was seen with what a case expects; the differences, one per line.
pub fn check(case: &Case, seen: &Seen) -> Result<(), String> {
    let w = &case.want;
    let mut diffs = Vec::new();
    let want_status = w
        .status
        .or_else(|| w.backend.is_some().then_some(200))
        .unwrap_or(200);
    if seen.status != want_status {
        diffs.push(format!("status {} (want {want_status})", seen.status));
    }
    if w.forwarded == Some(false) && seen.backend.is_some() {
        diffs.push(format!("backend {:?} (want none)", seen.backend));
    }
    if (w.backend.is_some() || want_status != 200) && seen.backend != w.backend {
        diffs.push(format!("backend {:?} (want {:?})", seen.backend, w.backend));
    }
    for (what, got, want) in [
        ("method", &seen.method, &w.method),
        ("host", &seen.host, &w.host),
        ("path", &seen.path, &w.path),
    ] {
        if want.is_some() && got != want {
            diffs.push(format!("upstream {what} {got:?} (want {want:?})"));
        }
    }
    if let Some(headers) = &seen.headers {
        for (k, v) in &w.headers {
            let got = find(headers, k);
            if got != [v.as_str()] {
                diffs.push(format!("upstream header {k}: {got:?} (want [{v:?}])"));
            }
        }
        for k in &w.absent_headers {
            let got = find(headers, k);
            if !got.is_empty() {
                diffs.push(format!("upstream header {k}: {got:?} (want none)"));
            }
        }
    }
    for (k, v) in &w.response_headers {
        let got = find(&seen.response_headers, k);
        if got != [v.as_str()] {
            diffs.push(format!("response header {k}: {got:?} (want [{v:?}])"));
        }
    }
    for k in &w.absent_response_headers {
        let got = find(&seen.response_headers, k);
        if !got.is_empty() {
            diffs.push(format!("response header {k}: {got:?} (want none)"));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", case.name, diffs.join("; ")))
    }
}

/// What one answer of a repeated case counts as: its backend, or its status.
fn outcome(seen: &Seen) -> String {
    seen.backend
        .clone()
        .unwrap_or_else(|| seen.status.to_string())
}

/// Checks the answers of a repeated case against its `shares`.
pub fn check_shares(case: &Case, seen: &[Seen]) -> Result<(), String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in seen {
        *counts.entry(outcome(s)).or_default() += 1;
    }
    let total = seen.len().max(1) as f64;
    let mut diffs = Vec::new();
    for (what, n) in &counts {
        if !case.want.shares.contains_key(what) {
            diffs.push(format!(
                "{n} answers were {what:?}, not an expected outcome"
            ));
        }
    }
    for (what, (least, most)) in &case.want.shares {
        let share = counts.get(what).copied().unwrap_or(0) as f64 / total;
        if share < *least || share > *most {
            diffs.push(format!(
                "{what:?} took {share:.3} of {total} answers (want {least}..={most})"
            ));
        }
    }
    if seen.is_empty() {
        diffs.push("no answers".into());
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", case.name, diffs.join("; ")))
    }
}

/// The folder of case files.
pub fn dir() -> PathBuf {
    workspace_root().join("tests/conformance")
}

/// Every case file, sorted by name.
pub fn load_all() -> Result<Vec<CaseFile>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .map_err(|e| format!("{}: {e}", dir().display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load_file(p)).collect()
}

pub fn load_file(path: &Path) -> Result<CaseFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut file: CaseFile =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if !file.manifests.contains('\n') {
        let p = path
            .parent()
            .unwrap_or(Path::new("."))
            .join(file.manifests.trim());
        file.manifests =
            std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    file.path = path.to_path_buf();
    Ok(file)
}

/// Services of the manifests and their ports: `(backend name, service name, port)`. The
/// backend name is the Service name, prefixed with `namespace/` outside `default`.
fn services(manifests: &str) -> Vec<(String, String, Option<String>, u16)> {
    let mut out = Vec::new();
    {
        for v in objects(manifests) {
            if v["kind"] != "Service" {
                continue;
            }
            let name = v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let ns = v["metadata"]["namespace"]
                .as_str()
                .filter(|n| *n != "default")
                .map(str::to_string);
            let label = match &ns {
                Some(n) => format!("{n}/{name}"),
                None => name.clone(),
            };
            for p in v["spec"]["ports"].as_array().into_iter().flatten() {
                if let Some(port) = p["port"].as_u64().and_then(|p| u16::try_from(p).ok()) {
                    out.push((label.clone(), name.clone(), ns.clone(), port));
                }
            }
        }
    }
    out
}

/// The objects of multi-document YAML, the items of `List` documents included.
fn objects(manifests: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(manifests) {
        let Ok(v) = Value::deserialize(doc) else {
            continue;
        };
        if v["kind"] == "List" {
            out.extend(v["items"].as_array().cloned().unwrap_or_default());
        } else {
            out.push(v);
        }
    }
    out
}

/// Declared listener ports of the manifests' Gateways: `(gateway, port)`.
fn gateway_ports(manifests: &str) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for v in objects(manifests) {
        if v["kind"] != "Gateway" {
            continue;
        }
        let name = v["metadata"]["name"].as_str().unwrap_or_default();
        for l in v["spec"]["listeners"].as_array().into_iter().flatten() {
            if let Some(port) = l["port"].as_u64().and_then(|p| u16::try_from(p).ok()) {
                if !out.contains(&(name.to_string(), port)) {
                    out.push((name.to_string(), port));
                }
            }
        }
    }
    out
}

/// A case file's manifests, generated against echo backends on free loopback ports.
pub struct Env {
    pub file: CaseFile,
    pub output: wasmgate::Output,
    pub backends: Vec<Backend>,
    /// Backend address -> backend name.
    pub by_address: BTreeMap<SocketAddr, String>,
    /// Cluster -> backend name, for the clusters with one endpoint.
    pub by_cluster: BTreeMap<String, String>,
    /// `(gateway, declared port)` -> where Envoy listens.
    pub ports: BTreeMap<(String, u16), SocketAddr>,
    pub admin_port: u16,
    pub scratch: Scratch,
}

impl Env {
    pub fn new(file: CaseFile) -> Result<Env, String> {
        let label = file
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let scratch = Scratch::new(&format!("conf-{label}")).map_err(|e| e.to_string())?;
        let mut backends = Vec::new();
        let mut by_address = BTreeMap::new();
        let mut member = Member {
            name: "local".into(),
            ..Member::default()
        };
        let mut manifests = file.manifests.clone();
        for (label, name, ns, port) in services(&file.manifests) {
            let b = Backend::start(&label).map_err(|e| e.to_string())?;
            by_address.insert(b.addr(), label.clone());
            // A Service whose endpoints the manifests give themselves (an EndpointSlice
            // `PORT(NAME)`) stays out of the inventory.
            let placeholder = format!("PORT({name})");
            if manifests.contains(&placeholder) {
                manifests = manifests.replace(&placeholder, &b.addr().port().to_string());
            } else {
                // Outside `default` the inventory names the Service `namespace/name`, so
                // Services of one name in two namespaces keep their own endpoints.
                let key = match ns {
                    Some(ns) => format!("{ns}/{name}"),
                    None => name,
                };
                member.endpoints.push((key, port, b.endpoint()));
            }
            backends.push(b);
        }
        let manifests = scratch
            .write("manifests.yaml", &manifests)
            .map_err(|e| e.to_string())?;
        let inventory = scratch
            .write("inventory.yaml", &inventory_yaml(&[member]))
            .map_err(|e| e.to_string())?;
        let loaded = wasmgate::load(&[manifests, inventory]).map_err(|e| format!("load: {e}"))?;
        let free = || free_port().map_err(|e| e.to_string());
        let mut opts = wasmgate::Options {
            router_wasm: wasm("wasmgate_router"),
            balancer_wasm: wasm("wasmgate_balancer"),
            http_port: free()?,
            admin_port: free()?,
            access_log: scratch.path().join("access.log").display().to_string(),
            ..wasmgate::Options::default()
        };
        let mut ports = BTreeMap::new();
        for (gw, declared) in gateway_ports(&file.manifests) {
            let actual = free()?;
            opts.gateway_port_map.insert((gw.clone(), declared), actual);
            ports.insert((gw, declared), SocketAddr::from(([127, 0, 0, 1], actual)));
        }
        if ports.is_empty() {
            ports.insert(
                (String::new(), opts.http_port),
                SocketAddr::from(([127, 0, 0, 1], opts.http_port)),
            );
        }
        let output = wasmgate::generate(&loaded, &opts).map_err(|e| format!("generate: {e}"))?;
        let mut by_cluster = BTreeMap::new();
        for c in output.envoy["static_resources"]["clusters"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let eps: Vec<&Value> = c["load_assignment"]["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| e["lb_endpoints"].as_array().into_iter().flatten())
                .collect();
            if let [ep] = eps.as_slice() {
                let s = &ep["endpoint"]["address"]["socket_address"];
                let addr = format!(
                    "{}:{}",
                    s["address"].as_str().unwrap_or_default(),
                    s["port_value"]
                );
                if let Some(name) = addr
                    .parse::<SocketAddr>()
                    .ok()
                    .and_then(|a| by_address.get(&a))
                {
                    by_cluster.insert(
                        c["name"].as_str().unwrap_or_default().to_string(),
                        name.clone(),
                    );
                }
            }
        }
        Ok(Env {
            file,
            output,
            backends,
            by_address,
            by_cluster,
            ports,
            admin_port: opts.admin_port,
            scratch,
        })
    }

    /// The `(gateway, declared port)` a request goes to.
    pub fn listener_of(&self, r: &Request) -> Result<(String, u16), String> {
        let fits: Vec<&(String, u16)> = self
            .ports
            .keys()
            .filter(|(gw, p)| {
                r.port.is_none_or(|want| want == *p)
                    && r.gateway.as_ref().is_none_or(|want| want == gw)
            })
            .collect();
        match fits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(format!(
                "no listener for port {:?} gateway {:?}",
                r.port, r.gateway
            )),
            _ => Err(format!(
                "port {:?} gateway {:?} is ambiguous: give `port` (and `gateway`)",
                r.port, r.gateway
            )),
        }
    }

    /// The generated Envoy listener (JSON) a request reaches.
    pub fn envoy_listener(&self, r: &Request) -> Result<Value, String> {
        let key = self.listener_of(r)?;
        let addr = self.ports.get(&key).copied();
        self.output.envoy["static_resources"]["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| {
                let s = &l["address"]["socket_address"];
                addr.is_some_and(|a| {
                    s["port_value"].as_u64() == Some(u64::from(a.port()))
                        && s["address"].as_str() == Some(&a.ip().to_string())
                })
            })
            .cloned()
            .ok_or_else(|| format!("no Envoy listener for {key:?}"))
    }

    /// The router config of the listener a request reaches (from the generated bootstrap).
    pub fn router_of(&self, r: &Request) -> Result<wasmgate_core::config::RouterConfig, String> {
        let l = self.envoy_listener(r)?;
        let filters = &l["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"];
        let conf = filters
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["name"] == "wasmgate.router")
            .map(|f| &f["typed_config"]["config"]["configuration"]["value"])
            .and_then(Value::as_str)
            .ok_or("the listener runs no router")?;
        serde_json::from_str(conf).map_err(|e| e.to_string())
    }

    /// The case through the generator's own decision (`wasmgate explain`), `repeat`
    /// times; weighted choices come from a seeded random source.
    pub fn explain(&self, case: &Case) -> Result<Vec<Seen>, String> {
        let mut rng = wasmgate_core::XorShift::new(0x5eed);
        (0..case.repeat.unwrap_or(1))
            .map(|_| self.explain_once(case, &mut rng))
            .collect()
    }

    fn explain_once(
        &self,
        case: &Case,
        rng: &mut dyn wasmgate_core::Random,
    ) -> Result<Seen, String> {
        use wasmgate::explain::{decide_with, Decision, Probe};
        let r = &case.request;
        let router = self.router_of(r)?;
        let probe = Probe {
            method: r.method.clone(),
            host: r.host.clone(),
            path: r.path.clone(),
            headers: r.headers.clone(),
            port: r.port,
        };
        let mut seen = Seen::default();
        match decide_with(&router, &probe, rng)? {
            Decision::Forward {
                service,
                cluster,
                authority,
                path,
                request_headers,
                response_headers,
            } => {
                seen.status = 200;
                seen.backend = match cluster {
                    Some(c) => self.by_cluster.get(&c).cloned().or(Some(service)),
                    None => Some(service),
                };
                seen.method = Some(r.method.clone());
                seen.host = Some(authority.unwrap_or_else(|| r.host.clone()));
                seen.path = Some(path.unwrap_or_else(|| r.path.clone()));
                let mut headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect();
                for e in &request_headers {
                    apply(&mut headers, e);
                }
                seen.headers = Some(headers);
                let mut resp = Vec::new();
                for e in &response_headers {
                    apply(&mut resp, e);
                }
                seen.response_headers = resp;
            }
            Decision::Reply {
                status, headers, ..
            } => {
                seen.status = status;
                seen.response_headers = headers;
            }
            Decision::NoMatch => seen.status = 404,
        }
        Ok(seen)
    }

    /// The file's cases through the compiled filters in host-sim, configured from the
    /// generated bootstrap (the listener each request reaches).
    pub fn hostsim(&self, cases: &[&Case]) -> Vec<Result<Vec<Seen>, String>> {
        let sim = match host_sim::HostSim::new() {
            Ok(s) => s,
            Err(e) => return cases.iter().map(|_| Err(e.to_string())).collect(),
        };
        cases
            .iter()
            .map(|case| self.hostsim_one(&sim, case))
            .collect()
    }

    /// One case, `repeat` times through one instance of the filters (so that their random
    /// source moves on as in a proxy; host-sim seeds it from its virtual clock, so the
    /// answers are the same on every run).
    fn hostsim_one(&self, sim: &host_sim::HostSim, case: &Case) -> Result<Vec<Seen>, String> {
        let r = &case.request;
        let mut boot = self.output.envoy.clone();
        boot["static_resources"]["listeners"] = Value::Array(vec![self.envoy_listener(r)?]);
        let setup = host_sim::bootstrap_reader::parse_bootstrap(&boot.to_string(), Path::new("."))
            .map_err(|e| e.to_string())?;
        setup.declare_clusters(sim);
        let plugins = setup
            .http_filters
            .iter()
            .map(|spec| sim.load(spec.clone()).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let chain = host_sim::FilterChain::new(sim, plugins.iter().collect());
        (0..case.repeat.unwrap_or(1))
            .map(|_| self.hostsim_request(&setup, &chain, r))
            .collect()
    }

    fn hostsim_request(
        &self,
        setup: &host_sim::bootstrap_reader::EnvoySetup,
        chain: &host_sim::FilterChain<'_>,
        r: &Request,
    ) -> Result<Seen, String> {
        let mut req = host_sim::HttpRequest::new(&r.method, &r.host, &r.path);
        for (k, v) in &r.headers {
            req.headers.add(k.to_ascii_lowercase(), v.as_bytes());
        }
        // The request arrives on that listener's real port (`destination.port`), as in Envoy.
        req.destination_address = self.ports[&self.listener_of(r)?].to_string();
        let out = chain.run_one(&setup.routes, req);
        if !out.vm_failures.is_empty() {
            return Err(format!("the VM failed: {:?}", out.vm_failures));
        }
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let mut seen = Seen {
            status: out.status,
            response_headers: out
                .response_headers
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect(),
            ..Seen::default()
        };
        if let (None, Some(cluster), Some(up)) =
            (&out.local_reply, &out.cluster, &out.upstream_request)
        {
            seen.backend = Some(
                self.by_cluster
                    .get(cluster)
                    .cloned()
                    .unwrap_or_else(|| format!("(cluster {cluster})")),
            );
            let pseudo = |name: &str| up.iter().find(|(k, _)| k == name).map(|(_, v)| text(v));
            seen.method = pseudo(":method");
            seen.host = pseudo(":authority");
            seen.path = pseudo(":path");
            seen.headers = Some(
                up.iter()
                    .filter(|(k, _)| !k.starts_with(':'))
                    .map(|(k, v)| (k.clone(), text(v)))
                    .collect(),
            );
        }
        Ok(seen)
    }

    /// Starts one Envoy on the generated bootstrap; stopped when the guard drops.
    pub fn start_envoy(&self) -> Result<Envoy, String> {
        let yaml = serde_yaml_ng::to_string(&self.output.envoy).map_err(|e| e.to_string())?;
        let path = self
            .scratch
            .write("envoy.yaml", &yaml)
            .map_err(|e| e.to_string())?;
        Envoy::start(&path, self.admin_port, 1).map_err(|e| e.to_string())
    }

    /// One case through a running Envoy, `repeat` times.
    pub fn envoy(&self, case: &Case) -> Result<Vec<Seen>, String> {
        (0..case.repeat.unwrap_or(1))
            .map(|_| self.envoy_once(case))
            .collect()
    }

    fn envoy_once(&self, case: &Case) -> Result<Seen, String> {
        let r = &case.request;
        let key = self.listener_of(r)?;
        let addr = self.ports[&key];
        let headers: Vec<(&str, &[u8])> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        let resp = crate::http_client::request(addr, &r.method, &r.host, &r.path, &headers)
            .map_err(|e| format!("request to {addr}: {e}"))?;
        let mut seen = Seen {
            status: resp.status,
            response_headers: resp.headers.clone(),
            ..Seen::default()
        };
        if let Some(name) = resp.backend() {
            let body = resp.json();
            seen.backend = Some(name);
            seen.method = body["method"].as_str().map(str::to_string);
            seen.path = body["path"].as_str().map(str::to_string);
            let headers: Vec<(String, String)> = body["headers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| Some((h[0].as_str()?.to_string(), h[1].as_str()?.to_string())))
                .collect();
            seen.host = find(&headers, "host").first().map(|h| h.to_string());
            seen.headers = Some(headers);
            // The echo backend's own headers are not the gateway's doing.
            seen.response_headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("x-backend"));
        }
        Ok(seen)
    }
}

fn apply(headers: &mut Vec<(String, String)>, e: &wasmgate::explain::Edits) {
    for (k, v) in &e.set {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        headers.push((k.to_ascii_lowercase(), v.clone()));
    }
    for (k, v) in &e.add {
        headers.push((k.to_ascii_lowercase(), v.clone()));
    }
    for k in &e.remove {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
    }
}

/// Which way a file is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Explain,
    HostSim,
    Envoy,
}

impl Way {
    pub fn key(self) -> &'static str {
        match self {
            Way::Explain => "explain",
            Way::HostSim => "hostsim",
            Way::Envoy => "envoy",
        }
    }
}

/// Runs every case of every file one way; the failures, each naming its file.
pub fn run_all(way: Way) -> Vec<String> {
    let files = match load_all() {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let mut failures = Vec::new();
    for file in files {
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for f in run_file(file, way) {
            failures.push(format!("{name}: {f}"));
        }
    }
    failures
}

/// Runs one file's cases one way (one Envoy for the whole file).
pub fn run_file(file: CaseFile, way: Way) -> Vec<String> {
    let env = match Env::new(file) {
        Ok(e) => e,
        Err(e) => return vec![e],
    };
    let cases: Vec<&Case> = env
        .file
        .cases
        .iter()
        .filter(|c| !c.skip.contains_key(way.key()))
        .collect();
    let results: Vec<Result<Vec<Seen>, String>> = match way {
        Way::Explain => cases.iter().map(|c| env.explain(c)).collect(),
        Way::HostSim => env.hostsim(&cases),
        Way::Envoy => {
            let _envoy = match env.start_envoy() {
                Ok(e) => e,
                Err(e) => return vec![e],
            };
            cases.iter().map(|c| env.envoy(c)).collect()
        }
    };
    let mut failures = Vec::new();
    if way == Way::Explain {
        failures.extend(check_status(
            &env.file.status,
            &env.output.status,
            &env.output.gateways,
        ));
    }
    for (case, seen) in cases.iter().zip(results) {
        match seen {
            Ok(seen) => {
                let checked = match (case.repeat, seen.as_slice()) {
                    (Some(_), all) => check_shares(case, all),
                    (None, [one]) => check(case, one),
                    (None, _) => Err(format!("{}: {} answers", case.name, seen.len())),
                };
                if let Err(d) = checked {
                    failures.push(d);
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    failures
}

fn condition_text(c: &wasmgate::status::Condition) -> String {
    format!("{}/{}", if c.status { "True" } else { "False" }, c.reason)
}

/// Compares a Gateway's (or one of its listeners') status with what a file expects.
fn check_gateway_status(
    w: &StatusExpectation,
    gateways: &[wasmgate::status::GatewayStatus],
) -> Vec<String> {
    let ns = w.namespace.as_deref().unwrap_or("default");
    let id = format!("Gateway {ns}/{}", w.name);
    let Some(g) = gateways
        .iter()
        .find(|g| g.name == w.name && g.namespace == ns)
    else {
        return vec![format!("status: no status for {id}")];
    };
    let mut failures = Vec::new();
    let (what, conditions) = match &w.listener {
        None => (id.clone(), &g.conditions),
        Some(name) => {
            let Some(l) = g.listeners.iter().find(|l| l.name == *name) else {
                return vec![format!("status: {id} has no listener {name:?}")];
            };
            let what = format!("{id} listener {name}");
            if let Some(n) = w.attached_routes.filter(|n| *n != l.attached_routes) {
                failures.push(format!(
                    "status: {what} attachedRoutes {} (want {n})",
                    l.attached_routes
                ));
            }
            if let Some(k) = w
                .supported_kinds
                .as_ref()
                .filter(|k| **k != l.supported_kinds)
            {
                failures.push(format!(
                    "status: {what} supportedKinds {:?} (want {k:?})",
                    l.supported_kinds
                ));
            }
            (what, &l.conditions)
        }
    };
    for (ty, expected) in &w.conditions {
        let seen = conditions.iter().find(|c| c.kind == ty).map(condition_text);
        if seen.as_deref() != Some(expected.as_str()) {
            failures.push(format!("status: {what} {ty}: {seen:?} (want {expected:?})"));
        }
    }
    failures
}

/// Compares the generator's route and Gateway status with what a file expects.
pub fn check_status(
    want: &[StatusExpectation],
    got: &[wasmgate::status::RouteStatus],
    gateways: &[wasmgate::status::GatewayStatus],
) -> Vec<String> {
    let mut failures = Vec::new();
    for w in want {
        if w.kind.as_deref() == Some("Gateway") {
            failures.extend(check_gateway_status(w, gateways));
            continue;
        }
        let kind = w.kind.as_deref().unwrap_or("HTTPRoute");
        let ns = w.namespace.as_deref().unwrap_or("default");
        let Some(route) = got
            .iter()
            .find(|r| r.kind == kind && r.name == w.name && r.namespace == ns)
        else {
            failures.push(format!("status: no status for {kind} {ns}/{}", w.name));
            continue;
        };
        let parents: Vec<_> = route
            .parents
            .iter()
            .filter(|p| w.parent.as_ref().is_none_or(|n| *n == p.name))
            .filter(|p| w.section_name.is_none() || p.section_name == w.section_name)
            .collect();
        let [parent] = parents.as_slice() else {
            failures.push(format!(
                "status: {kind} {ns}/{} has {} parents matching {:?}/{:?}",
                w.name,
                parents.len(),
                w.parent,
                w.section_name
            ));
            continue;
        };
        for (ty, expected) in &w.conditions {
            let seen = parent
                .conditions
                .iter()
                .find(|c| c.kind == ty)
                .map(|c| format!("{}/{}", if c.status { "True" } else { "False" }, c.reason));
            if seen.as_deref() != Some(expected.as_str()) {
                failures.push(format!(
                    "status: {kind} {ns}/{} {ty}: {seen:?} (want {expected:?})",
                    w.name
                ));
            }
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_found_inside_list_documents() {
        let file = load_file(&dir().join("kubectl-documents.yaml")).unwrap();
        let found: Vec<String> = services(&file.manifests).into_iter().map(|s| s.0).collect();
        assert_eq!(found, ["web"]);
    }
}
