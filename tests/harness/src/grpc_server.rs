//! A real gRPC server on loopback (`tests/grpc/echo_server.py`, grpcio from the repo's venv,
//! installed by `make setup`), killed and reaped when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::paths::workspace_root;

pub struct GrpcServer {
    child: Child,
    /// Held open: the server stops when its standard input closes.
    _stdin: Option<ChildStdin>,
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl GrpcServer {
    /// Starts the server and waits (10 s at most) for the port it listens on.
    pub fn start() -> Result<Self, String> {
        let root = workspace_root();
        let python = root.join(".venv/bin/python");
        let script = root.join("tests/grpc/echo_server.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: {e} (run `make setup`)", python.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let log = calls.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("port ") {
                    let _ = port_tx.send(port.trim().parse::<u16>().ok());
                } else if let Ok(v) = serde_json::from_str(&line) {
                    if let Ok(mut c) = log.lock() {
                        c.push(v);
                    }
                }
            }
        });
        let mut server = GrpcServer {
            child,
            _stdin: stdin,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            calls,
        };
        match port_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Some(port)) => {
                server.addr.set_port(port);
                Ok(server)
            }
            _ => Err(format!(
                "the gRPC server ({}) did not report its port; is grpcio installed (`make setup`)?",
                script.display()
            )),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every call received so far: `{"method", "metadata": [[k, v]], "message": hex}`.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
