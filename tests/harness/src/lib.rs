//! The test harness: local backends standing in for clusters, a real Envoy started from the
//! repo's venv, and a small HTTP client. Every process and server a test starts is stopped
//! when its handle drops, including while a failing test unwinds.

pub mod backend;
pub mod balancer_setup;
pub mod bootstrap;
pub mod conformance_runner;
pub mod deploy;
pub mod envoy_process;
pub mod failover;
pub mod fuzz_targets;
pub mod grpc_server;
pub mod hash_keysets;
pub mod http_client;
pub mod live_reconfig;
pub mod paths;
pub mod router_case_setup;
pub mod s3store;
pub mod scratch;
pub mod synthetic_routes;

pub use backend::{Backend, TcpBackend};
pub use envoy_process::Envoy;
pub use http_client::{get, post, post_chunked, request, request_bytes, request_raw, Response};
pub use scratch::Scratch;

/// Binds `127.0.0.1:0` and releases it, for configs that must name a port up front.
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}
