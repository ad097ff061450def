//! The wasmgate balancer: multi-cluster backend selection as a proxy-wasm filter.
//!
//! A thin adapter over `wasmgate_core::multicluster`, which decides everything: per request
//! (HTTP root) or connection (network root, id ending in `.tcp`) which member cluster to
//! steer to, passive health from responses, and the active health checks on a tick. This
//! crate only turns proxy-wasm callbacks into calls on it (`plugin.rs`) and implements its
//! `BalancerHost` trait with host calls (`hostcalls.rs`).

#[cfg(target_arch = "wasm32")]
mod hostcalls;
#[cfg(target_arch = "wasm32")]
pub mod plugin;
