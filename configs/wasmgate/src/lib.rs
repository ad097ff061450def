//! The wasmgate config generator: Kubernetes-style YAML in (the seed's VirtualHost,
//! MultiClusterService and MultiClusterIngress, Gateway API Gateway and HTTPRoute, the MCS
//! API's ServiceImport, Services and a cluster inventory); filter JSON, Envoy config and Istio
//! manifests out.

pub mod buckets;
pub mod change;
pub mod emit;
pub mod envoy_api;
pub mod envoy_bootstrap;
pub mod error;
pub mod explain;
pub mod gateway_filters;
pub mod ha;
pub mod istio;
pub mod istio_api;
pub mod listeners;
pub mod load;
pub mod model;
pub mod namespaces;
pub mod policy;
pub mod resolve;
pub mod router_rules;
pub mod status;
pub mod watch;
pub mod xds;

pub use emit::{generate, ListenerOutput, Options, Output};
pub use error::{Errors, GenError};
pub use load::{load, Inputs};
