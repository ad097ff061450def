//! A real S3-compatible store for the bucket tests: `s3s-fs` (installed by `make setup` into
//! `tests/.tools`), on loopback, on an ephemeral port, stopped when its handle drops.
//!
//! s3s-fs keeps each object as a file under `<root>/<bucket>/<key>`, so a test places its
//! objects there; every request still goes through the store's S3 front (and, with keys, its
//! SigV4 check).

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::paths::workspace_root;
use crate::scratch::Scratch;

/// The s3s-fs binary: `$WASMGATE_S3S_FS`, else the one `make setup` installs.
pub fn s3s_fs_binary() -> PathBuf {
    std::env::var_os("WASMGATE_S3S_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("tests/.tools/bin/s3s-fs"))
}

pub struct S3Store {
    child: Child,
    pub addr: SocketAddr,
    // Dropped after the process: the store's files and log live here.
    scratch: Scratch,
}

impl S3Store {
    /// Starts a store. With `keys` (access key, secret key) every request must carry a valid
    /// SigV4 signature; without, the store answers anyone (a public bucket).
    /// Virtual-hosted requests are accepted for `<bucket>.localhost:<port>`.
    pub fn start(label: &str, keys: Option<(&str, &str)>) -> std::io::Result<Self> {
        let scratch = Scratch::new(label)?;
        let root = scratch.path().join("data");
        std::fs::create_dir_all(&root)?;
        let port = crate::free_port()?;
        let log = std::fs::File::create(scratch.path().join("s3s-fs.log"))?;
        let mut cmd = Command::new(s3s_fs_binary());
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--domain",
                &format!("localhost:{port}"),
                "--domain",
                "localhost",
            ]);
        if let Some((access, secret)) = keys {
            cmd.args(["--access-key", access, "--secret-key", secret]);
        }
        let child = cmd
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut store = S3Store {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            scratch,
        };
        store.wait_listening(Duration::from_secs(20))?;
        Ok(store)
    }

    fn wait_listening(&mut self, limit: Duration) -> std::io::Result<()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                return Err(std::io::Error::other(format!(
                    "s3s-fs exited with {status}"
                )));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(std::io::Error::other("s3s-fs did not start listening"))
    }

    /// `http://localhost:<port>`: the endpoint a bucket names.
    pub fn endpoint(&self) -> String {
        format!("http://localhost:{}", self.addr.port())
    }

    /// Creates `bucket` (empty).
    pub fn create_bucket(&self, bucket: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(self.scratch.path().join("data").join(bucket))
    }

    /// Stores `body` as `key` of `bucket`.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) -> std::io::Result<()> {
        let path = self.scratch.path().join("data").join(bucket).join(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, body)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.scratch.path().join("s3s-fs.log")).unwrap_or_default()
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
