//! A real Envoy process, stopped (killed and reaped) when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::paths::envoy_binary;

pub struct Envoy {
    child: Child,
    pub admin: SocketAddr,
    pub log: PathBuf,
}

#[derive(Debug)]
pub enum EnvoyError {
    /// The binary is missing: `make setup` installs it; tests never skip for this.
    Missing(PathBuf),
    Spawn(std::io::Error),
    /// Envoy exited or never became ready; carries the end of its log.
    NotReady(String),
}

impl std::fmt::Display for EnvoyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvoyError::Missing(p) => write!(f, "no Envoy at {} (run `make setup`)", p.display()),
            EnvoyError::Spawn(e) => write!(f, "cannot start Envoy: {e}"),
            EnvoyError::NotReady(log) => write!(f, "Envoy did not become ready:\n{log}"),
        }
    }
}

impl std::error::Error for EnvoyError {}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Envoy {
    /// Validates a bootstrap with `envoy --mode validate`; returns Envoy's output on failure.
    pub fn validate(config: &Path) -> Result<(), String> {
        let bin = envoy_binary();
        let out = Command::new(&bin)
            .args([
                "--mode",
                "validate",
                "--disable-hot-restart",
                "-l",
                "error",
                "-c",
            ])
            .arg(config)
            .output()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Starts Envoy on `config` and waits until its admin `/ready` answers LIVE.
    pub fn start(config: &Path, admin_port: u16, concurrency: u32) -> Result<Self, EnvoyError> {
        let bin = envoy_binary();
        if !bin.exists() {
            return Err(EnvoyError::Missing(bin));
        }
        let log = config.with_extension("envoy.log");
        let child = Command::new(&bin)
            .arg("-c")
            .arg(config)
            .args(["--disable-hot-restart", "-l", "info"])
            // Access logs reach their file within 100 ms, so tests can read them.
            .args(["--file-flush-interval-msec", "100", "--concurrency"])
            .arg(concurrency.to_string())
            .arg("--log-path")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(EnvoyError::Spawn)?;
        let mut envoy = Envoy {
            child,
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            log,
        };
        envoy.wait_ready(Duration::from_secs(60))?;
        Ok(envoy)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), EnvoyError> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(EnvoyError::NotReady(format!(
                    "exited with {status}\n{}",
                    tail(&self.log, 40)
                )));
            }
            if let Ok(r) = crate::http_client::get(self.admin, "admin", "/ready") {
                if r.status == 200 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(EnvoyError::NotReady(tail(&self.log, 40)))
    }

    /// The process id, to pin it or read its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A counter or gauge from the admin `/stats` page.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let r = crate::http_client::get(self.admin, "admin", &format!("/stats?filter=^{name}$"))
            .ok()?;
        r.text().lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(": ")?
                .trim()
                .parse()
                .ok()
        })
    }

    /// Every counter and gauge whose name starts with `prefix`.
    pub fn stats_with_prefix(&self, prefix: &str) -> Vec<(String, u64)> {
        let Ok(r) =
            crate::http_client::get(self.admin, "admin", &format!("/stats?filter=^{prefix}"))
        else {
            return Vec::new();
        };
        r.text()
            .lines()
            .filter_map(|l| {
                let (name, value) = l.split_once(": ")?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// Envoy's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
