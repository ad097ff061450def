//! The wasmgate balancer: multi-cluster backend selection as a proxy-wasm filter.
//!
//! A thin adapter over `wasmgate_core::multicluster`: per request (HTTP root) or connection
//! (network root, id ending in `.tcp`) it reads the service name and the few attributes its
//! selector needs, reads the shared health state, picks a member cluster and steers Envoy to
//! it (the `cluster_header` route's header, or `envoy.tcp_proxy.cluster` filter state). The
//! HTTP root also runs active health checks on a tick and reports passive errors.

#[cfg(target_arch = "wasm32")]
mod hostcalls;
#[cfg(target_arch = "wasm32")]
mod metrics;
#[cfg(target_arch = "wasm32")]
mod plugin;
