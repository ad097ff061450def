//! A temporary directory removed on drop (kept when `WASMGATE_KEEP_SCRATCH` is set).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Scratch {
    dir: PathBuf,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Scratch {
    pub fn new(label: &str) -> std::io::Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wasmgate-{label}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn write(&self, name: &str, contents: &str) -> std::io::Result<PathBuf> {
        let p = self.dir.join(name);
        std::fs::write(&p, contents)?;
        Ok(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("WASMGATE_KEEP_SCRATCH").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
