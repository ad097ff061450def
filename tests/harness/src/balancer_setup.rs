//! Multi-cluster harness: HTTP backends that can be stopped and restored on the same port
//! (a member cluster going away and coming back), and a hand-written Envoy bootstrap that
//! runs the balancer alone: an HTTP listener whose `cluster_header` route follows the
//! balancer, an optional TCP listener with the balancer's network root before `tcp_proxy`,
//! and one STATIC cluster per local backend.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

use crate::bootstrap::{socket, static_cluster};
use crate::envoy_process::{Envoy, EnvoyError};
use crate::free_port;
use crate::scratch::Scratch;

/// The balancer module built by `cargo build --release --target wasm32-wasip1 -p wasmgate-balancer`.
pub fn balancer_wasm() -> PathBuf {
    crate::paths::wasm("wasmgate_balancer")
}

/// An HTTP backend on a fixed loopback port that can be stopped (connections refused) and
/// restored. Every answer is 200 with `x-backend: <name>` and closes the connection.
pub struct FlipBackend {
    pub name: String,
    addr: SocketAddr,
    served: Arc<AtomicU64>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl FlipBackend {
    pub fn start(name: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let mut b = FlipBackend {
            name: name.to_string(),
            addr,
            served: Arc::new(AtomicU64::new(0)),
            running: None,
        };
        b.serve(listener)?;
        Ok(b)
    }

    fn serve(&mut self, listener: TcpListener) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (name, served, flag) = (self.name.clone(), self.served.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (name, served) = (name.clone(), served.clone());
                        std::thread::spawn(move || answer(&name, conn, &served));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            // The listener drops here: the port refuses connections until restored.
        });
        self.running = Some((stop, thread));
        Ok(())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered so far (health checks included).
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    pub fn stop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = thread.join();
        }
    }

    /// Listens again on the same port.
    pub fn restore(&mut self) -> std::io::Result<()> {
        if self.running.is_none() {
            let listener = TcpListener::bind(self.addr)?;
            self.serve(listener)?;
        }
        Ok(())
    }
}

impl Drop for FlipBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn answer(name: &str, conn: TcpStream, served: &AtomicU64) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    // Read the head; requests from Envoy here carry no body.
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == b"\r\n" || line == b"\n" => break,
            Ok(_) => {}
        }
    }
    served.fetch_add(1, Ordering::Relaxed);
    let body = format!("{name}\n");
    let resp = format!(
        "HTTP/1.1 200 OK\r\nx-backend: {name}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = out.write_all(resp.as_bytes());
}

fn wasm_config(root_id: &str, configuration: &str) -> Value {
    json!({
        "name": root_id,
        "root_id": root_id,
        "vm_config": {
            "vm_id": "wasmgate",
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": balancer_wasm().display().to_string()}}
        },
        "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": configuration
        }
    })
}

/// An Envoy running the balancer alone.
pub struct McEnvoy {
    pub envoy: Envoy,
    pub http: SocketAddr,
    pub tcp: Option<SocketAddr>,
    // Dropped last: Envoy's log lives here.
    pub scratch: Scratch,
}

/// What to run: the balancer's JSON, the clusters (name -> backend address), and for TCP the
/// listener port and `tcp_proxy`'s fallback cluster.
pub struct McSetup {
    pub configuration: String,
    pub clusters: Vec<(String, SocketAddr)>,
    pub tcp: Option<(u16, String)>,
    /// Envoy worker threads (each runs its own VM).
    pub concurrency: u32,
    /// The bootstrap's `node.metadata` (e.g. `{"REGION": "eu"}`), which the balancer reads
    /// for its locality when the config has none.
    pub node_metadata: Option<Value>,
}

impl McSetup {
    pub fn bootstrap(&self, http_port: u16, admin_port: u16) -> Value {
        let local = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let mut listeners = vec![json!({
            "name": "http",
            "address": socket(local(http_port)),
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "mc",
                    "route_config": {"name": "mc", "virtual_hosts": [{
                        "name": "mc", "domains": ["*"], "routes": [{
                            "match": {"prefix": "/", "headers": [{"name": "x-wasmgate-cluster", "present_match": true}]},
                            "route": {"cluster_header": "x-wasmgate-cluster"}
                        }]
                    }]},
                    "http_filters": [
                        {"name": "wasmgate.balancer", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                            "config": wasm_config("wasmgate.balancer", &self.configuration)
                        }},
                        {"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                        }}
                    ]
                }
            }]}]
        })];
        if let Some((port, fallback)) = &self.tcp {
            listeners.push(json!({
                "name": "tcp",
                "address": socket(local(*port)),
                "filter_chains": [{"filters": [
                    {"name": "wasmgate.balancer.tcp", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
                        "config": wasm_config("wasmgate.balancer.tcp", &self.configuration)
                    }},
                    {"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                        "stat_prefix": "tcp",
                        "cluster": fallback
                    }}
                ]}]
            }));
        }
        let clusters: Vec<Value> = self
            .clusters
            .iter()
            .map(|(name, addr)| static_cluster(name, *addr))
            .collect();
        let mut boot = json!({
            "admin": {"address": socket(local(admin_port))},
            "static_resources": {"listeners": listeners, "clusters": clusters}
        });
        if let Some(m) = &self.node_metadata {
            boot["node"] = json!({"id": "wasmgate-test", "cluster": "wasmgate", "metadata": m});
        }
        boot
    }

    /// Writes the bootstrap and starts Envoy on free loopback ports.
    pub fn start(&self, label: &str) -> Result<McEnvoy, EnvoyError> {
        let io = |e: std::io::Error| EnvoyError::Spawn(e);
        let scratch = Scratch::new(label).map_err(io)?;
        let (http_port, admin_port) = (free_port().map_err(io)?, free_port().map_err(io)?);
        let text = serde_json::to_string_pretty(&self.bootstrap(http_port, admin_port))
            .map_err(|e| io(std::io::Error::other(e)))?;
        let path = scratch.write("envoy.yaml", &text).map_err(io)?;
        let envoy = Envoy::start(&path, admin_port, self.concurrency.max(1))?;
        Ok(McEnvoy {
            envoy,
            http: SocketAddr::from(([127, 0, 0, 1], http_port)),
            tcp: self
                .tcp
                .as_ref()
                .map(|(p, _)| SocketAddr::from(([127, 0, 0, 1], *p))),
            scratch,
        })
    }
}
