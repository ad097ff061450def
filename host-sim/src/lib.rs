//! host-sim: a proxy-wasm host on wasmtime that runs proxy-wasm modules under test the way
//! Envoy does, and reports where each request went.
//!
//! ```no_run
//! use host_sim::{HostSim, HttpRequest, PluginSpec, Routes, WasmSource};
//! let sim = HostSim::new()?;
//! let plugin = sim.load(PluginSpec {
//!     configuration: br#"{"routes":[]}"#.to_vec(),
//!     ..PluginSpec::new(WasmSource::File("router.wasm".into()), "wasmgate.router")
//! })?;
//! let out = plugin.http(&Routes::cluster_header("x-wasmgate-cluster"), HttpRequest::get("foo.com", "/"));
//! println!("{:?} {}", out.cluster, out.status);
//! # Ok::<(), host_sim::Error>(())
//! ```

mod abi;
pub mod bootstrap_reader;
pub mod cli;
mod disk_cache;
mod error;
mod headers;
mod http;
pub mod json;
mod memory;
mod pairs;
mod plugin;
mod properties;
mod protobuf;
mod route_config;
pub mod scenario;
mod shared;
mod state;
mod tcp;
mod types;
mod upstreams;
mod vm;

pub use error::Error;
pub use headers::HeaderMap;
pub use http::{FilterChain, HttpOutcome, HttpRequest};
pub use plugin::{HostSim, HostSimConfig, Plugin, PluginSpec, WasmSource};
pub use properties::{PropValue, PropertyOverrides};
pub use protobuf::encode_set_envoy_filter_state;
pub use route_config::{PathMatch, Route, RouteAction, Routes, VirtualHost};
pub use shared::{Metric, MetricKind};
pub use state::LocalReply;
pub use tcp::{TcpConnection, TcpOutcome};
pub use types::{AbiVersion, Level};
pub use upstreams::{Callout, GrpcReply, UpstreamReply, UpstreamRequest, Upstreams};
