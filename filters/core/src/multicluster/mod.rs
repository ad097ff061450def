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

pub mod balancer;
pub mod cookie;
pub mod health;
pub mod locality;
pub mod rendezvous;
mod select;
pub mod store;
pub mod swrr;

#[cfg(test)]
mod tests;

pub use balancer::Balancer;
pub use cookie::CookieIssuer;
pub use health::{HealthState, HealthView, MemberHealth, MemberView};
pub use locality::Locality;
pub use select::{NoPick, Pick, PickInput, Reason, Selector, WorkerState};
pub use store::{MemoryStore, SharedStore, StoreError};
