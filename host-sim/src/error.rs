//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

use crate::types::Level;

/// Everything that can go wrong while loading a plugin or reading input files.
#[derive(Debug)]
pub enum Error {
    /// A file could not be read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The wasmtime engine could not be built.
    Engine(String),
    /// The bytes are not a valid Wasm module.
    Compile(String),
    /// The module imports a function this host does not serve (Envoy refuses such modules).
    MissingImport { module: String, name: String },
    /// The module exports none of `proxy_abi_version_0_2_1`, `_0_2_0`, `_0_1_0`.
    UnknownAbi,
    /// An export exists with the wrong signature.
    BadExport { name: String, detail: String },
    /// The module has no `memory` export or no allocator (`malloc` / `proxy_on_memory_allocate`).
    MissingExport(&'static str),
    /// Instantiation failed (limits, start function trap...).
    Instantiate(String),
    /// The guest trapped while starting (`_initialize`, `proxy_on_vm_start`, `proxy_on_configure`).
    StartTrapped {
        phase: &'static str,
        message: String,
        logs: Vec<(Level, String)>,
    },
    /// `proxy_on_vm_start` returned false.
    VmStartRejected { logs: Vec<(Level, String)> },
    /// `proxy_on_configure` returned false: Envoy rejects the configuration.
    ConfigureRejected { logs: Vec<(Level, String)> },
    /// An Envoy bootstrap could not be understood.
    EnvoyConfig(String),
    /// A bootstrap has a filter host-sim cannot run (Lua, ext_authz...) in a chain it runs.
    UnsupportedFilter {
        name: String,
        type_url: String,
        /// Where it sits, as a field path of the bootstrap.
        position: String,
    },
    /// A scenario, request or configuration file is malformed.
    Input { path: String, message: String },
}

impl Error {
    /// The guest's log lines captured before the failure, if any.
    pub fn logs(&self) -> &[(Level, String)] {
        match self {
            Error::StartTrapped { logs, .. }
            | Error::VmStartRejected { logs }
            | Error::ConfigureRejected { logs } => logs,
            _ => &[],
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::Engine(m) => write!(f, "cannot create the wasmtime engine: {m}"),
            Error::Compile(m) => write!(f, "cannot compile the Wasm module: {m}"),
            Error::MissingImport { module, name } => write!(
                f,
                "Failed to load Wasm module due to a missing import: {module}.{name}"
            ),
            Error::UnknownAbi => write!(
                f,
                "Wasm module is missing the Proxy-Wasm ABI version or requires an unsupported version"
            ),
            Error::BadExport { name, detail } => {
                write!(f, "export {name} has an unexpected signature: {detail}")
            }
            Error::MissingExport(name) => write!(f, "Wasm module is missing {name}"),
            Error::Instantiate(m) => write!(f, "cannot instantiate the Wasm module: {m}"),
            Error::StartTrapped { phase, message, .. } => {
                write!(f, "Wasm VM trapped in {phase}: {message}")
            }
            Error::VmStartRejected { .. } => write!(f, "Wasm VM failed to start (proxy_on_vm_start returned false)"),
            Error::ConfigureRejected { logs } => {
                write!(f, "Unable to configure Wasm plugin (proxy_on_configure returned false)")?;
                if let Some((_, last)) = logs.iter().rev().find(|(l, _)| *l >= Level::Warn) {
                    write!(f, ": {last}")?;
                }
                Ok(())
            }
            Error::EnvoyConfig(m) => write!(f, "unsupported Envoy configuration: {m}"),
            Error::UnsupportedFilter {
                name,
                type_url,
                position,
            } => write!(
                f,
                "host-sim cannot run filter {name:?} ({type_url}) at {position}; \
                 --skip-filter {name} (scenario: skip_filters) leaves it out"
            ),
            Error::Input { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
