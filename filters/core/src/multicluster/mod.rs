//! Multi-cluster backend selection: which member cluster of a MultiClusterService serves a
//! request (HTTP) or a connection (TCP).
//!
//! Plain Rust, no proxy-wasm: the balancer filter (and the router, when a backend names a
//! multi-cluster service) feed it the few request attributes it needs, a health view read from
//! shared data, and per-worker state.
//!
//! - [`Selector`]: compiled from one [`crate::config::MultiClusterService`]; `pick` chooses.
//! - [`swrr`]: smooth weighted round robin, exact shares per worker without a key.
//! - [`cookie`]: reading the affinity cookie, and issuing it when the service generates it.
//! - [`rendezvous`]: weighted rendezvous hashing for affinity keys.
//! - [`locality`]: zone / region / anywhere tiers with Envoy's overprovisioning math.
//! - [`health`]: active and passive health per member, serialisable for shared data.
//! - [`store`]: the shared-data abstraction (CAS-aware) with an in-memory implementation.
//! - [`balancer`]: a whole balancer config compiled: services, TCP ports, locality.
//!
//! What a running balancer decides, over the proxy behind [`BalancerHost`]:
//! - [`worker`]: one worker's state and the decisions on shared health (pick, passive
//!   report, check verdict); set up by `BalancerWorker::configure`.
//! - [`http_stream`] and [`tcp_connection`]: one request or connection, callback by callback.
//! - [`active_checks`]: the health-check lease, the tick that sends checks, their answers.
//! - [`metrics`]: the counters and gauges, and when they move.

pub mod active_checks;
pub mod balancer;
pub mod balancer_host;
pub mod cookie;
pub mod health;
pub mod http_stream;
pub mod locality;
pub mod metrics;
pub mod rendezvous;
mod select;
pub mod store;
pub mod swrr;
pub mod tcp_connection;
pub mod worker;

#[cfg(test)]
mod mock_host;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod worker_tests;

pub use active_checks::HealthChecker;
pub use balancer::Balancer;
pub use balancer_host::{BalancerHost, LogLevel, MetricKind};
pub use cookie::CookieIssuer;
pub use health::{HealthState, HealthView, MemberHealth, MemberView};
pub use http_stream::{BalancerStream, StreamAction};
pub use locality::Locality;
pub use select::{NoPick, Pick, PickInput, Reason, Selector, WorkerState};
pub use store::{MemoryStore, SharedStore, StoreError};
pub use worker::{BalancerWorker, Picked, Steer};
