//! The wasmgate router and balancer as one proxy-wasm module.
//!
//! Envoy's cost per Wasm filter (a context per stream, a VM entry per callback) is paid once
//! instead of twice on a multi-cluster route. Nothing decides here: the root configures the
//! router's and the balancer's roots from one config, and each stream runs the router's
//! request logic and then the balancer's, as the two filters would in that order.

#[cfg(target_arch = "wasm32")]
mod plugin;
