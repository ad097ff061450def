//! Live reconfiguration: `wasmgate generate --xds DIR --watch` feeding a running Envoy while
//! traffic flows. The inputs are rendered from a small [`State`] (routes, the members of the
//! multi-cluster service `shop`), so a scenario is a list of states; [`Live`] writes each
//! one, measures when routing shows it, and checks every request of the steady traffic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::envoy_process::Envoy;
use crate::paths::{wasm, workspace_root};
use crate::{free_port, request, Backend, Scratch};

/// The services every route may use: two plain ones (in member cluster `c1`) and the
/// multi-cluster `shop` (in the member clusters of [`State::shop_members`]).
pub const PLAIN: [&str; 2] = ["app-a", "app-b"];
pub const MEMBERS: [&str; 4] = ["c2", "c3", "c4", "c5"];
/// The header whose value places a request on a member (DestinationRule consistentHash).
pub const AFFINITY_HEADER: &str = "x-user";

/// One route: host, path prefix, weighted backends (`shop` is the multi-cluster service).
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub host: String,
    pub path: String,
    pub backends: Vec<(String, u32)>,
}

impl Route {
    pub fn new(host: &str, path: &str, backends: &[(&str, u32)]) -> Self {
        Route {
            host: host.into(),
            path: path.into(),
            backends: backends.iter().map(|(s, w)| (s.to_string(), *w)).collect(),
        }
    }
}

/// Everything the inputs say.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub routes: Vec<Route>,
    pub shop_members: Vec<String>,
    /// Adds a malformed route (a port that is not a number): the generator must refuse the
    /// change. (A route to a Service that does not exist is not malformed: Gateway API scopes
    /// that fault to the route, which is written with a status.)
    pub invalid: bool,
}

/// The input files for `state`.
pub fn render(state: &State, endpoints: &BTreeMap<String, String>) -> Vec<(&'static str, String)> {
    let mut services = String::new();
    for s in PLAIN {
        let _ = write!(
            services,
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {s}}}\nspec:\n  ports: [{{name: http, port: 80}}]\n---\n"
        );
    }
    services.push_str(
        "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\nmetadata: {name: shop}\nspec:\n  type: ClusterSetIP\n  ports: [{name: http, protocol: TCP, port: 80}]\n---\n\
         apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: shop}\nspec:\n  host: shop\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpHeaderName: x-user}\n",
    );
    let mut inv = String::from(
        "apiVersion: wasmgate.io/v1alpha1\nkind: ClusterInventory\nmetadata: {name: live}\nspec:\n  clusters:\n",
    );
    let ep = |name: &str| endpoints.get(name).cloned().unwrap_or_default();
    let _ = write!(
        inv,
        "    - name: c1\n      labels: {{region: us}}\n      services:\n        app-a: {{80: [\"{}\"]}}\n        app-b: {{80: [\"{}\"]}}\n",
        ep("app-a"),
        ep("app-b")
    );
    for m in &state.shop_members {
        let _ = write!(
            inv,
            "    - name: {m}\n      labels: {{region: us}}\n      services:\n        shop: {{80: [\"{}\"]}}\n",
            ep(m)
        );
    }
    let mut by_host: BTreeMap<&str, Vec<&Route>> = BTreeMap::new();
    for r in &state.routes {
        by_host.entry(&r.host).or_default().push(r);
    }
    let mut routes = String::new();
    for (host, rs) in by_host {
        let _ = write!(
            routes,
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {}}}\nspec:\n  hostnames: [\"{host}\"]\n  rules:\n",
            host.replace('.', "-")
        );
        for r in rs {
            let _ = write!(
                routes,
                "    - matches: [{{path: {{type: PathPrefix, value: \"{}\"}}}}]\n      backendRefs:\n",
                r.path
            );
            for (s, w) in &r.backends {
                if s == "shop" {
                    let _ = writeln!(routes, "        - {{group: multicluster.x-k8s.io, kind: ServiceImport, name: shop, port: 80, weight: {w}}}");
                } else {
                    let _ = writeln!(routes, "        - {{name: {s}, port: 80, weight: {w}}}");
                }
            }
        }
    }
    if state.invalid {
        routes.push_str(
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: broken}\nspec:\n  hostnames: [\"broken.test\"]\n  rules:\n    - backendRefs: [{name: nope, port: eighty}]\n",
        );
    }
    vec![
        ("services.yaml", services),
        ("inventory.yaml", inv),
        ("routes.yaml", routes),
    ]
}

/// `wasmgate generate --xds DIR --watch`, killed when dropped. Its stdout and stderr lines
/// arrive on `lines`, stderr ones prefixed with `! `.
pub struct Watcher {
    child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Watcher {
    pub fn start(args: &[String]) -> std::io::Result<Self> {
        let bin = workspace_root().join("target/release/wasmgate");
        let mut child = Command::new(&bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", bin.display())))?;
        let (tx, lines) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for l in BufReader::new(err).lines().map_while(Result::ok) {
                    let _ = tx.send(format!("! {l}"));
                }
            });
        }
        Ok(Watcher { child, lines })
    }

    /// The next line, waiting at most `limit`.
    pub fn next_line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }

    /// Lines until one satisfies `done` (included), waiting at most `limit` in all.
    pub fn lines_until(&self, limit: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
        let end = Instant::now() + limit;
        let mut out = Vec::new();
        while let Some(l) = self.next_line(end.saturating_duration_since(Instant::now())) {
            let stop = done(&l);
            out.push(l);
            if stop {
                break;
            }
        }
        out
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request of the steady traffic, as it went.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub at: Instant,
    pub key: String,
    pub status: u16,
    /// The backend that answered (a member name for `shop`).
    pub backend: Option<String>,
}

/// The running system: backends, the watcher, Envoy.
pub struct Live {
    pub envoy: Envoy,
    pub http: SocketAddr,
    pub watcher: Watcher,
    pub xds_dir: PathBuf,
    input_dir: PathBuf,
    endpoints: BTreeMap<String, String>,
    // Dropped last: the inputs, xDS files and Envoy's log live here.
    backends: Vec<Backend>,
    pub scratch: Scratch,
}

#[derive(Debug)]
pub struct LiveError(pub String);

impl std::fmt::Display for LiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LiveError {}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

impl Live {
    /// Starts backends, the watcher on `first`, and Envoy on the bootstrap it wrote.
    pub fn start(label: &str, first: &State, concurrency: u32) -> Result<Live, LiveError> {
        let err = |m: String| LiveError(m);
        let scratch = Scratch::new(label).map_err(|e| err(e.to_string()))?;
        let mut backends = Vec::new();
        let mut endpoints = BTreeMap::new();
        for name in PLAIN.iter().chain(MEMBERS.iter()) {
            let b = Backend::start(name).map_err(|e| err(e.to_string()))?;
            endpoints.insert(name.to_string(), b.endpoint());
            backends.push(b);
        }
        let input_dir = scratch.path().join("in");
        let xds_dir = scratch.path().join("xds");
        std::fs::create_dir_all(&input_dir).map_err(|e| err(e.to_string()))?;
        for (name, text) in render(first, &endpoints) {
            write_atomic(&input_dir.join(name), &text).map_err(|e| err(e.to_string()))?;
        }
        let port = || free_port().map_err(|e| err(e.to_string()));
        let (http_port, admin_port) = (port()?, port()?);
        let args: Vec<String> = [
            "generate",
            "--xds",
            &xds_dir.display().to_string(),
            "--watch",
            "--http-port",
            &http_port.to_string(),
            "--admin-port",
            &admin_port.to_string(),
            "--router-wasm",
            &wasm("wasmgate_router").display().to_string(),
            "--balancer-wasm",
            &wasm("wasmgate_balancer").display().to_string(),
            "--access-log",
            "/dev/null",
            &input_dir.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let watcher = Watcher::start(&args).map_err(|e| err(e.to_string()))?;
        let first_line = watcher
            .next_line(Duration::from_secs(30))
            .unwrap_or_default();
        if !first_line.contains("initial config") {
            return Err(err(format!("the watcher did not start: {first_line}")));
        }
        let envoy = Envoy::start(&xds_dir.join("envoy.yaml"), admin_port, concurrency)
            .map_err(|e| err(e.to_string()))?;
        Ok(Live {
            envoy,
            http: SocketAddr::from(([127, 0, 0, 1], http_port)),
            watcher,
            xds_dir,
            input_dir,
            endpoints,
            backends,
            scratch,
        })
    }

    /// Writes the inputs of `state` (each file renamed into place); returns when it was done.
    pub fn write(&self, state: &State) -> Result<Instant, LiveError> {
        for (name, text) in render(state, &self.endpoints) {
            let path = self.input_dir.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                write_atomic(&path, &text).map_err(|e| LiveError(e.to_string()))?;
            }
        }
        Ok(Instant::now())
    }

    /// Sends `host path` (with the affinity header `key`) until `seen` accepts the response
    /// or `limit` passes; returns how long after `since` it was accepted.
    pub fn time_until(
        &self,
        since: Instant,
        limit: Duration,
        host: &str,
        path: &str,
        key: &str,
        seen: impl Fn(u16, Option<&str>) -> bool,
    ) -> Option<Duration> {
        while since.elapsed() < limit {
            if let Ok((status, backend)) = probe(self.http, host, path, key) {
                if seen(status, backend.as_deref()) {
                    return Some(since.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Stops the backend standing in for `name` (a member cluster or plain service).
    pub fn stop_backend(&mut self, name: &str) {
        for b in self.backends.iter_mut().filter(|b| b.name == name) {
            b.stop();
        }
    }

    /// The sum of Envoy's counters and gauges whose name contains `part`.
    pub fn stat_containing(&self, part: &str) -> u64 {
        let Ok(r) =
            crate::http_client::get(self.envoy.admin, "admin", &format!("/stats?filter={part}"))
        else {
            return 0;
        };
        r.text()
            .lines()
            .filter_map(|l| l.split_once(": ")?.1.trim().parse::<u64>().ok())
            .sum()
    }

    /// Envoy's resident memory, from /proc.
    pub fn envoy_rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.envoy.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }
}

/// One request, read only up to the end of its body: Envoy answers a local reply on a
/// `connection: close` request at once but closes the connection a second later (its
/// `delayed_close_timeout`), so reading to the end would time the close, not the routing.
/// Returns the status and the `x-backend` header.
pub fn probe(
    addr: SocketAddr,
    host: &str,
    path: &str,
    key: &str,
) -> std::io::Result<(u16, Option<String>)> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\n{AFFINITY_HEADER}: {key}\r\nconnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf)?;
        raw.extend_from_slice(buf.get(..n).unwrap_or_default());
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let header = |name: &str| {
                head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
            };
            let length: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if n == 0 || raw.len() >= end + 4 + length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                return Ok((status, header("x-backend")));
            }
        }
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Steady traffic in background threads until dropped: each worker sends `GET host /` with
/// an affinity key from `keys` in turn, at about `per_second` requests a second.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
}

impl Traffic {
    pub fn start(
        http: SocketAddr,
        host: &str,
        keys: &[String],
        workers: usize,
        per_second: u32,
    ) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let gap = Duration::from_secs_f64(workers as f64 / f64::from(per_second.max(1)));
        let threads = (0..workers)
            .map(|w| {
                let (stop, outcomes, host) = (stop.clone(), outcomes.clone(), host.to_string());
                let keys: Vec<String> = keys.iter().skip(w).step_by(workers).cloned().collect();
                std::thread::spawn(move || {
                    let mut next = Instant::now();
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let key = keys.get(i % keys.len().max(1)).cloned().unwrap_or_default();
                        i += 1;
                        let headers: [(&str, &[u8]); 1] = [(AFFINITY_HEADER, key.as_bytes())];
                        let at = Instant::now();
                        let (status, backend) = match request(http, "GET", &host, "/", &headers) {
                            Ok(r) => (r.status, r.backend()),
                            Err(_) => (0, None),
                        };
                        if let Ok(mut o) = outcomes.lock() {
                            o.push(Outcome {
                                at,
                                key,
                                status,
                                backend,
                            });
                        }
                        next += gap;
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            threads,
            outcomes,
        }
    }

    /// The outcomes so far.
    pub fn snapshot(&self) -> Vec<Outcome> {
        self.outcomes.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Stops the workers and returns every outcome.
    pub fn finish(mut self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.outcomes.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
