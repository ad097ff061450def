//! Compiled modules on disk, so a second process starts without compiling.
//!
//! A file holds wasmtime's serialised module after the SHA-256 of those bytes. Its name is
//! the SHA-256 of the Wasm module and a hash of the engine's settings (wasmtime's
//! `precompile_compatibility_hash`: version, target, flags such as fuel), so a changed
//! module or engine never finds an old file. Reading checks the digest before wasmtime
//! sees the bytes; wasmtime checks its own header again. Writes go to a temporary file
//! renamed into place, so a reader never sees half a file.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// `$HOST_SIM_CACHE_DIR`, else `$XDG_CACHE_HOME/host-sim`, else `~/.cache/host-sim`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("HOST_SIM_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("host-sim"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The engine settings that decide whether a serialised module fits, as a stable digest.
fn engine_key(engine: &Engine) -> String {
    // `precompile_compatibility_hash` feeds a `Hasher`; collect what it writes.
    struct Collect(Sha256);
    impl Hasher for Collect {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = Collect(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex(&h.0.finalize()[..8])
}

/// Where the compiled form of `wasm` lives for `engine` (`variant` tells apart linkers that
/// resolve imports differently).
pub fn entry(dir: &Path, engine: &Engine, wasm: &[u8], variant: &str) -> PathBuf {
    let module = hex(&Sha256::digest(wasm));
    dir.join(format!("{module}-{}-{variant}.cwasm", engine_key(engine)))
}

/// The cached module, if the file exists, is whole and fits the engine.
pub fn load(engine: &Engine, path: &Path) -> Option<Module> {
    let file = std::fs::read(path).ok()?;
    let (digest, artifact) = file.split_at_checked(32)?;
    if Sha256::digest(artifact).as_slice() != digest {
        return None;
    }
    deserialize_checked(engine, artifact)
}

/// SAFETY: `Module::deserialize` runs the bytes as machine code, so they must come from
/// `Module::serialize` of a compatible engine. The only caller hands it bytes that `store`
/// wrote under a name derived from this engine's settings, whose SHA-256 was just checked
/// against the digest `store` wrote with them; wasmtime checks its own header (version,
/// target, flags) before using them.
fn deserialize_checked(engine: &Engine, artifact: &[u8]) -> Option<Module> {
    #[allow(unsafe_code)]
    unsafe {
        Module::deserialize(engine, artifact).ok()
    }
}

/// Writes `module` to `path` (best effort: a cache that cannot be written just stays cold).
pub fn store(module: &Module, path: &Path) {
    let Ok(artifact) = module.serialize() else {
        return;
    };
    let Some(dir) = path.parent() else {
        return;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let mut file = Sha256::digest(&artifact).to_vec();
    file.extend_from_slice(&artifact);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, &file).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}
