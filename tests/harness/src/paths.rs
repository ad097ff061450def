//! Where the built artefacts and tools live, relative to the workspace root.

use std::path::PathBuf;

pub fn workspace_root() -> PathBuf {
    // This crate is tests/harness: the root is two levels up.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A filter module built by `make build` (release, wasm32-wasip1).
pub fn wasm(name: &str) -> PathBuf {
    workspace_root()
        .join("target/wasm32-wasip1/release")
        .join(format!("{name}.wasm"))
}

/// The Envoy binary: `$WASMGATE_ENVOY`, else the one `make setup` installs into `.venv`.
pub fn envoy_binary() -> PathBuf {
    std::env::var_os("WASMGATE_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/envoy"))
}

pub fn examples() -> PathBuf {
    workspace_root().join("configs/examples")
}
