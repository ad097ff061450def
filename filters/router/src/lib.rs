//! The wasmgate router: VirtualHost routing as a proxy-wasm filter.
//!
//! A thin adapter over `wasmgate_core::RouteTable`: it reads the few request attributes the
//! table needs (once each), asks for an outcome, and turns it into host calls. Steering works
//! by writing the header Envoy's `cluster_header` route reads. A root whose id ends in
//! `.tcp` serves TCP listeners instead and steers `tcp_proxy` through filter state.

#[cfg(target_arch = "wasm32")]
mod hostcalls;
#[cfg(target_arch = "wasm32")]
mod metrics;
#[cfg(target_arch = "wasm32")]
pub mod plugin;
