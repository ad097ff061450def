//! The test harness shared by the workspace tests (`tests/tests`), the benches (`bench/`) and
//! the demo (`demo/`). Every process and server it starts is stopped when its handle drops,
//! including while a failing test unwinds.
//!
//! - Processes and servers: a real Envoy ([`envoy_process`]), local backends standing in
//!   for clusters ([`backend`]), a gRPC server ([`grpc_server`]), an S3 store ([`s3store`]).
//! - Envoy configs: hand-built bootstraps around a filter config ([`bootstrap`]), the router
//!   and balancer filters merged into the combined module ([`combined_filter`]), the
//!   balancer alone with backends that go and come back ([`balancer_setup`]), the router
//!   case table's bootstrap ([`router_case_setup`]), generated config deployed
//!   ([`deploy`]).
//! - Scenarios: Gateway API conformance files ([`conformance_runner`]), failover under load
//!   ([`failover`]), live reconfiguration through `--watch` ([`live_reconfig`]), the fuzz
//!   targets ([`fuzz_targets`]).
//! - Inputs for benches and hash tests: [`synthetic_routes`], [`hash_keysets`].
//! - Plumbing: an HTTP client ([`http_client`]), temporary directories ([`scratch`]), where
//!   the built artefacts are ([`paths`]).

pub mod backend;
pub mod balancer_setup;
pub mod bootstrap;
pub mod combined_filter;
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
