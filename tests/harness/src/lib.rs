//! The test harness: local backends standing in for clusters, a real Envoy started from the
//! repo's venv, and a small HTTP client. Every process and server a test starts is stopped
//! when its handle drops, including while a failing test unwinds.

pub mod backend;
pub mod bootstrap;
pub mod conformance;
pub mod deploy;
pub mod envoy;
pub mod fuzz;
pub mod fuzz_core;
pub mod grpc;
pub mod ha;
pub mod http;
pub mod keysets;
pub mod live;
pub mod mc;
pub mod paths;
pub mod router_cases;
pub mod routesets;
pub mod s3store;
pub mod scratch;

pub use backend::{Backend, TcpBackend};
pub use envoy::Envoy;
pub use http::{get, post, post_chunked, request, request_bytes, request_raw, Response};
pub use scratch::Scratch;

/// Binds `127.0.0.1:0` and releases it, for configs that must name a port up front.
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}
