//! Envoy's file-based xDS: the generated bootstrap's listeners, clusters and Wasm filter
//! configs moved into files Envoy watches (LDS, CDS, and one ECDS file per Wasm filter), so a
//! config change is applied by replacing files instead of restarting Envoy.
//!
//! The Wasm filters come through ECDS (`config_discovery`) so that a route change replaces
//! only the filter's configuration: the listener is unchanged, so Envoy neither rebuilds nor
//! drains it. Envoy reloads a `path_config_source` when a file is *moved* onto the path
//! (only a rename is atomic), so [`XdsWriter`] writes a temporary file and renames it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::envoy_api::{self as api, TypeUrl};

pub const LDS_FILE: &str = "lds.json";
pub const CDS_FILE: &str = "cds.json";
pub const RDS_FILE: &str = "rds.json";
pub const BOOTSTRAP_FILE: &str = "envoy.yaml";

const LISTENER_TYPE: &str = api::Listener::TYPE_URL;
const ROUTE_TYPE: &str = api::RouteConfiguration::TYPE_URL;
const CLUSTER_TYPE: &str = api::Cluster::TYPE_URL;
const EXTENSION_TYPE: &str = api::TypedExtensionConfig::TYPE_URL;
const HTTP_WASM_TYPE: &str = api::HttpWasm::TYPE_URL;
const NETWORK_WASM_TYPE: &str = api::NetworkWasm::TYPE_URL;

/// One generation of dynamic config: a bootstrap pointing at the files, and the files.
#[derive(Debug, Clone, PartialEq)]
pub struct XdsConfig {
    pub bootstrap: Value,
    /// File name in the xDS directory -> a DiscoveryResponse.
    pub files: BTreeMap<String, Value>,
    /// A digest of every resource: the same config always gets the same version.
    pub version: String,
}

impl XdsConfig {
    /// Cluster name -> the cluster resource.
    pub fn clusters(&self) -> BTreeMap<String, Value> {
        resources_by_name(self.files.get(CDS_FILE))
    }
}

fn resources_by_name(file: Option<&Value>) -> BTreeMap<String, Value> {
    file.and_then(|f| f["resources"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["name"].as_str()?.to_string(), r.clone())))
        .collect()
}

/// FNV-1a, 64 bits: a stable digest of text, the same on every machine and run.
fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn discovery_response(type_url: &str, resources: Vec<Value>) -> Value {
    let resources: Vec<Value> = resources
        .into_iter()
        .map(|mut r| {
            if let Some(o) = r.as_object_mut() {
                let mut typed = Map::new();
                typed.insert("@type".into(), json!(type_url));
                typed.extend(std::mem::take(o));
                *o = typed;
            }
            r
        })
        .collect();
    // Per file, so a file whose resources did not change is byte-for-byte the same.
    let version = digest(&Value::Array(resources.clone()).to_string());
    api::value(api::DiscoveryResponse {
        version_info: version,
        resources,
    })
}

/// The ECDS file of the Wasm filter `name`.
pub fn ecds_file(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("ecds-{safe}.json")
}

/// A Wasm filter found in a listener: where it sits and what it runs.
struct WasmFilter {
    listener: String,
    name: String,
    type_url: String,
    typed_config: Value,
}

/// Replaces every Wasm filter under `filters` (a listener's network filters or an HCM's HTTP
/// filters) with a `config_discovery` placeholder, collecting the filters.
fn extract_wasm(filters: &mut Value, listener: &str, found: &mut Vec<WasmFilter>) {
    for f in filters.as_array_mut().into_iter().flatten() {
        let type_url = f["typed_config"]["@type"].as_str().unwrap_or_default();
        if type_url == HTTP_WASM_TYPE || type_url == NETWORK_WASM_TYPE {
            found.push(WasmFilter {
                listener: listener.to_string(),
                name: f["name"].as_str().unwrap_or_default().to_string(),
                type_url: type_url.to_string(),
                typed_config: f["typed_config"].take(),
            });
            // Renamed below once every filter is known; the index finds it again.
            *f = json!({"name": f["name"].clone(), "config_discovery": {"wasmgate_index": found.len() - 1}});
        } else if let Some(http) = f["typed_config"].get_mut("http_filters") {
            extract_wasm(http, listener, found);
        }
    }
}

/// Moves every HCM's inline route configuration into RDS: the route's retry count follows the
/// number of members, and a listener whose content changes is rebuilt and drained by Envoy.
fn extract_routes(filters: &mut Value, dir: &Path, routes: &mut BTreeMap<String, Value>) {
    for f in filters.as_array_mut().into_iter().flatten() {
        let hcm = &mut f["typed_config"];
        let Some(rc) = hcm.as_object_mut().and_then(|o| o.remove("route_config")) else {
            continue;
        };
        let base = rc["name"].as_str().unwrap_or("wasmgate").to_string();
        // The same name with another content gets its own name.
        let mut name = base.clone();
        let mut n = 1;
        while routes.get(&name).is_some_and(|r| *r != rc) {
            n += 1;
            name = format!("{base}-{n}");
        }
        let mut rc = rc;
        rc["name"] = json!(name);
        routes.insert(name.clone(), rc);
        hcm["rds"] = api::value(api::Rds {
            route_config_name: name,
            config_source: api::file_source(&dir.join(RDS_FILE)),
        });
    }
}

fn fill_placeholders(filters: &mut Value, placeholders: &[Value]) {
    for f in filters.as_array_mut().into_iter().flatten() {
        if let Some(i) = f["config_discovery"]["wasmgate_index"].as_u64() {
            if let Some(p) = placeholders.get(i as usize) {
                *f = p.clone();
            }
        } else if let Some(http) = f["typed_config"].get_mut("http_filters") {
            fill_placeholders(http, placeholders);
        }
    }
}

/// Splits a static bootstrap (as [`crate::envoy_bootstrap::bootstrap`] writes it) into a dynamic
/// bootstrap reading `dir` and the files for `dir`. `dir` should be absolute: Envoy resolves
/// the paths from its own working directory.
pub fn split(bootstrap: &Value, dir: &Path) -> XdsConfig {
    let mut listeners: Vec<Value> = bootstrap["static_resources"]["listeners"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let clusters: Vec<Value> = bootstrap["static_resources"]["clusters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut found = Vec::new();
    let mut routes = BTreeMap::new();
    for l in &mut listeners {
        let name = l["name"].as_str().unwrap_or_default().to_string();
        for chain in l["filter_chains"].as_array_mut().into_iter().flatten() {
            extract_wasm(&mut chain["filters"], &name, &mut found);
            extract_routes(&mut chain["filters"], dir, &mut routes);
        }
    }
    // One ECDS resource per distinct filter: the same name with the same config on several
    // listeners is one resource; a name with different configs gets one per listener.
    let mut configs_of: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for f in &found {
        configs_of
            .entry(&f.name)
            .or_default()
            .insert(f.typed_config.to_string());
    }
    let mut files = BTreeMap::new();
    let mut placeholders = Vec::new();
    for f in &found {
        let shared = configs_of.get(f.name.as_str()).map_or(1, BTreeSet::len) == 1;
        let resource = if shared {
            f.name.clone()
        } else {
            format!("{}@{}", f.name, f.listener)
        };
        let file = ecds_file(&resource);
        placeholders.push(api::value(api::DiscoveredFilter {
            name: f.name.clone(),
            config_discovery: api::ExtensionConfigSource {
                config_source: api::file_source(&dir.join(&file)),
                type_urls: vec![f.type_url.clone()],
            },
        }));
        files.entry(file).or_insert_with(|| {
            let config = api::TypedExtensionConfig {
                name: resource,
                typed_config: f.typed_config.clone(),
            };
            discovery_response(EXTENSION_TYPE, vec![api::value(config)])
        });
    }
    for l in &mut listeners {
        for chain in l["filter_chains"].as_array_mut().into_iter().flatten() {
            fill_placeholders(&mut chain["filters"], &placeholders);
        }
    }
    if !routes.is_empty() {
        files.insert(
            RDS_FILE.to_string(),
            discovery_response(ROUTE_TYPE, routes.into_values().collect()),
        );
    }
    files.insert(
        LDS_FILE.to_string(),
        discovery_response(LISTENER_TYPE, listeners),
    );
    files.insert(
        CDS_FILE.to_string(),
        discovery_response(CLUSTER_TYPE, clusters),
    );
    let versions: Vec<&str> = files
        .values()
        .filter_map(|f| f["version_info"].as_str())
        .collect();
    let version = digest(&versions.join(","))
        .get(..12)
        .unwrap_or_default()
        .to_string();
    let mut dynamic = bootstrap.clone();
    if let Some(o) = dynamic.as_object_mut() {
        o.remove("static_resources");
        // File-based LDS and CDS still want the node to have an id and a cluster.
        o.entry("node").or_insert_with(|| {
            api::value(api::Node {
                id: "wasmgate".into(),
                cluster: "wasmgate".into(),
            })
        });
        let sources = api::DynamicResources {
            lds_config: api::file_source(&dir.join(LDS_FILE)),
            cds_config: api::file_source(&dir.join(CDS_FILE)),
        };
        o.insert("dynamic_resources".into(), api::value(sources));
    }
    XdsConfig {
        bootstrap: dynamic,
        files,
        version,
    }
}

/// How long a new cluster gets to become active in Envoy before filter configs that route to
/// it are written, and how long a removed cluster is kept for requests already in it.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub settle: Duration,
    pub drain: Duration,
}

impl Timing {
    /// For one-shot generation: order the writes, do not wait.
    pub const IMMEDIATE: Timing = Timing {
        settle: Duration::ZERO,
        drain: Duration::ZERO,
    };
    /// For `--watch`: Envoy activates a static cluster within milliseconds; in-flight
    /// requests to a removed member get a few seconds.
    pub const WATCH: Timing = Timing {
        settle: Duration::from_millis(150),
        drain: Duration::from_secs(5),
    };
}

/// Writes generations of [`XdsConfig`] into a directory in the order that keeps requests
/// working: clusters that appear first, then the filter configs and listeners, and clusters
/// that disappear only after a drain period (the filters stop choosing them at once).
pub struct XdsWriter {
    dir: PathBuf,
    timing: Timing,
    /// What each file holds now.
    written: BTreeMap<String, String>,
    /// The final cluster file, once the drain period of removed clusters ends.
    pending_cds: Option<(Instant, Value)>,
}

#[derive(Debug)]
pub struct WriteError(pub String);

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WriteError {}

/// Replaces `path` atomically: a temporary file in the same directory, renamed into place.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), WriteError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{}.tmp", name.unwrap_or_default()));
    let fail = |e: std::io::Error| WriteError(format!("{}: {e}", path.display()));
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

fn render(file: &Value) -> String {
    serde_json::to_string_pretty(file).unwrap_or_default() + "\n"
}

impl XdsWriter {
    /// A writer for `dir`, which remembers what `dir` already holds (a previous run's files),
    /// so clusters a previous run wrote are kept until the filters no longer choose them.
    pub fn new(dir: &Path, timing: Timing) -> Result<Self, WriteError> {
        std::fs::create_dir_all(dir).map_err(|e| WriteError(format!("{}: {e}", dir.display())))?;
        let mut written = BTreeMap::new();
        for entry in std::fs::read_dir(dir)
            .map_err(|e| WriteError(format!("{}: {e}", dir.display())))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == LDS_FILE || name == CDS_FILE || name == RDS_FILE || name.starts_with("ecds-")
            {
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    written.insert(name, text);
                }
            }
        }
        Ok(XdsWriter {
            dir: dir.to_path_buf(),
            timing,
            written,
            pending_cds: None,
        })
    }

    fn put(&mut self, name: &str, file: &Value) -> Result<bool, WriteError> {
        let text = render(file);
        if self.written.get(name) == Some(&text) {
            return Ok(false);
        }
        write_atomic(&self.dir.join(name), &text)?;
        self.written.insert(name.to_string(), text);
        Ok(true)
    }

    fn current_clusters(&self) -> BTreeMap<String, Value> {
        let file = self
            .written
            .get(CDS_FILE)
            .and_then(|t| serde_json::from_str::<Value>(t).ok());
        resources_by_name(file.as_ref())
    }

    /// Writes one generation; the bootstrap too when it changed (that one needs a restart).
    /// Returns the names of the files written.
    pub fn apply(&mut self, config: &XdsConfig) -> Result<Vec<String>, WriteError> {
        let mut wrote = Vec::new();
        let bootstrap = serde_yaml_ng::to_string(&config.bootstrap)
            .map_err(|e| WriteError(format!("{BOOTSTRAP_FILE}: {e}")))?;
        let path = self.dir.join(BOOTSTRAP_FILE);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(bootstrap.as_str()) {
            write_atomic(&path, &bootstrap)?;
            wrote.push(BOOTSTRAP_FILE.to_string());
        }
        let old = self.current_clusters();
        let new = config.clusters();
        let added = new.keys().any(|n| !old.contains_key(n));
        let removed: Vec<&Value> = old
            .iter()
            .filter(|(n, _)| !new.contains_key(*n))
            .map(|(_, c)| c)
            .collect();
        let final_cds = config.files.get(CDS_FILE).cloned().unwrap_or_default();
        // 1. Clusters: the new set plus the removed ones, still drained.
        let mut kept: Vec<Value> = new.values().cloned().collect();
        kept.extend(removed.iter().map(|c| (*c).clone()));
        let mut kept_file = discovery_response(CLUSTER_TYPE, strip_types(kept));
        if removed.is_empty() || self.timing.drain.is_zero() {
            kept_file = final_cds.clone();
        }
        if self.put(CDS_FILE, &kept_file)? {
            wrote.push(CDS_FILE.to_string());
            if added && !self.timing.settle.is_zero() {
                std::thread::sleep(self.timing.settle);
            }
        }
        // 2. Filter configs and routes, then listeners.
        for (name, file) in &config.files {
            if name != CDS_FILE && name != LDS_FILE && self.put(name, file)? {
                wrote.push(name.clone());
            }
        }
        if let Some(lds) = config.files.get(LDS_FILE) {
            if self.put(LDS_FILE, lds)? {
                wrote.push(LDS_FILE.to_string());
            }
        }
        // 3. The removed clusters go once the drain period ends (see `tick`).
        self.pending_cds =
            (kept_file != final_cds).then(|| (Instant::now() + self.timing.drain, final_cds));
        Ok(wrote)
    }

    /// When a drain period has ended, writes the cluster file without the drained clusters.
    pub fn tick(&mut self, now: Instant) -> Result<Option<String>, WriteError> {
        match self.pending_cds.take() {
            Some((at, file)) if at <= now => {
                self.put(CDS_FILE, &file)?;
                Ok(Some(CDS_FILE.to_string()))
            }
            other => {
                self.pending_cds = other;
                Ok(None)
            }
        }
    }

    /// When the next `tick` has work to do.
    pub fn next_tick(&self) -> Option<Instant> {
        self.pending_cds.as_ref().map(|(at, _)| *at)
    }
}

/// Resources read back from a written file carry `@type`; `discovery_response` adds it again.
fn strip_types(resources: Vec<Value>) -> Vec<Value> {
    resources
        .into_iter()
        .map(|mut r| {
            if let Some(o) = r.as_object_mut() {
                o.remove("@type");
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bootstrap() -> Value {
        let wasm = |root: &str, ty: &str, conf: &str| json!({"name": root, "typed_config": {"@type": ty, "config": {"root_id": root, "configuration": conf}}});
        json!({
            "admin": {"address": {}},
            "static_resources": {
                "listeners": [
                    {"name": "http_1", "filter_chains": [{"filters": [{"name": "hcm", "typed_config": {
                        "http_filters": [wasm("wasmgate.router", HTTP_WASM_TYPE, "A"), {"name": "envoy.filters.http.router"}]
                    }}]}]},
                    {"name": "http_2", "filter_chains": [{"filters": [{"name": "hcm", "typed_config": {
                        "http_filters": [wasm("wasmgate.router", HTTP_WASM_TYPE, "A"), {"name": "envoy.filters.http.router"}]
                    }}]}]},
                    {"name": "tcp_9", "filter_chains": [{"filters": [
                        wasm("wasmgate.router.tcp", NETWORK_WASM_TYPE, "A"), {"name": "tcp_proxy"}
                    ]}]}
                ],
                "clusters": [{"name": "a"}, {"name": "b"}]
            }
        })
    }

    #[test]
    fn wasm_filters_move_to_one_ecds_file_each_and_listeners_point_at_them() {
        let x = split(&bootstrap(), Path::new("/x"));
        let names: Vec<&str> = x.files.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "cds.json",
                "ecds-wasmgate.router.json",
                "ecds-wasmgate.router.tcp.json",
                "lds.json"
            ]
        );
        let lds = &x.files["lds.json"]["resources"];
        let http = &lds[0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0];
        assert_eq!(http["name"], "wasmgate.router");
        assert_eq!(
            http["config_discovery"]["config_source"]["path_config_source"]["path"],
            "/x/ecds-wasmgate.router.json"
        );
        assert_eq!(http["config_discovery"]["type_urls"][0], HTTP_WASM_TYPE);
        let ecds = &x.files["ecds-wasmgate.router.json"]["resources"][0];
        assert_eq!(ecds["@type"], EXTENSION_TYPE);
        assert_eq!(ecds["typed_config"]["config"]["configuration"], "A");
        assert_eq!(x.bootstrap.get("static_resources"), None);
        assert_eq!(
            x.bootstrap["dynamic_resources"]["cds_config"]["path_config_source"]["path"],
            "/x/cds.json"
        );
        assert_eq!(x.clusters().len(), 2);
    }

    #[test]
    fn a_filter_with_different_configs_per_listener_gets_one_resource_per_listener() {
        let mut b = bootstrap();
        b["static_resources"]["listeners"][1]["filter_chains"][0]["filters"][0]["typed_config"]
            ["http_filters"][0]["typed_config"]["config"]["configuration"] = json!("B");
        let x = split(&b, Path::new("/x"));
        assert!(x.files.contains_key("ecds-wasmgate.router_http_1.json"));
        assert!(x.files.contains_key("ecds-wasmgate.router_http_2.json"));
        let r = &x.files["ecds-wasmgate.router_http_2.json"]["resources"][0];
        assert_eq!(r["name"], "wasmgate.router@http_2");
    }

    #[test]
    fn a_route_change_changes_only_the_filter_file_and_the_version() {
        let a = split(&bootstrap(), Path::new("/x"));
        let mut b = bootstrap();
        for l in 0..2 {
            b["static_resources"]["listeners"][l]["filter_chains"][0]["filters"][0]
                ["typed_config"]["http_filters"][0]["typed_config"]["config"]["configuration"] =
                json!("B");
        }
        let b = split(&b, Path::new("/x"));
        assert_ne!(a.version, b.version);
        let changed: Vec<&String> = a
            .files
            .keys()
            .filter(|k| a.files[*k] != b.files[*k])
            .collect();
        assert_eq!(changed, ["ecds-wasmgate.router.json"]);
        assert_eq!(split(&bootstrap(), Path::new("/x")).version, a.version);
    }

    #[test]
    fn route_configs_move_to_rds_so_a_retry_change_leaves_listeners_alone() {
        let with_retries = |n: u32| {
            let mut b = bootstrap();
            for l in 0..2 {
                b["static_resources"]["listeners"][l]["filter_chains"][0]["filters"][0]
                    ["typed_config"]["route_config"] =
                    json!({"name": "wasmgate", "virtual_hosts": [{"retries": n}]});
            }
            split(&b, Path::new("/x"))
        };
        let (a, b) = (with_retries(1), with_retries(2));
        let hcm =
            &a.files[LDS_FILE]["resources"][1]["filter_chains"][0]["filters"][0]["typed_config"];
        assert_eq!(hcm.get("route_config"), None);
        assert_eq!(hcm["rds"]["route_config_name"], "wasmgate");
        assert_eq!(
            hcm["rds"]["config_source"]["path_config_source"]["path"],
            "/x/rds.json"
        );
        assert_eq!(a.files[RDS_FILE]["resources"].as_array().unwrap().len(), 1);
        assert_eq!(a.files[LDS_FILE], b.files[LDS_FILE]);
        assert_ne!(a.files[RDS_FILE], b.files[RDS_FILE]);
    }

    fn scratch(label: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wasmgate-xds-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn cluster_names(dir: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(dir.join(CDS_FILE)).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        resources_by_name(Some(&v)).into_keys().collect()
    }

    #[test]
    fn a_removed_cluster_stays_until_the_drain_period_ends() {
        let dir = scratch("drain");
        let timing = Timing {
            settle: Duration::ZERO,
            drain: Duration::from_secs(3600),
        };
        let mut w = XdsWriter::new(&dir, timing).unwrap();
        w.apply(&split(&bootstrap(), &dir)).unwrap();
        let mut b = bootstrap();
        b["static_resources"]["clusters"] = json!([{"name": "a"}]);
        let wrote = w.apply(&split(&b, &dir)).unwrap();
        assert!(!wrote.contains(&CDS_FILE.to_string()), "{wrote:?}");
        assert_eq!(cluster_names(&dir), ["a", "b"]);
        assert_eq!(w.tick(Instant::now()).unwrap(), None);
        let at = w.next_tick().unwrap();
        assert_eq!(w.tick(at).unwrap().as_deref(), Some(CDS_FILE));
        assert_eq!(cluster_names(&dir), ["a"]);
        assert_eq!(w.next_tick(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_are_replaced_by_rename_and_unchanged_files_are_not_rewritten() {
        let dir = scratch("rename");
        let mut w = XdsWriter::new(&dir, Timing::IMMEDIATE).unwrap();
        let x = split(&bootstrap(), &dir);
        let first = w.apply(&x).unwrap();
        assert_eq!(first.len(), 5, "{first:?}");
        let ino = |n: &str| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(dir.join(n)).unwrap().ino()
        };
        let before = ino(CDS_FILE);
        assert!(w.apply(&x).unwrap().is_empty());
        let mut b = bootstrap();
        b["static_resources"]["clusters"] = json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]);
        assert_eq!(w.apply(&split(&b, &dir)).unwrap(), [CDS_FILE]);
        assert_ne!(
            ino(CDS_FILE),
            before,
            "a new inode: the file was renamed into place"
        );
        // A new writer on the same directory knows what is there.
        let mut again = XdsWriter::new(&dir, Timing::IMMEDIATE).unwrap();
        assert!(again.apply(&split(&b, &dir)).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
