//! The wasmgate config generator: Kubernetes-style YAML in; filter JSON and Envoy config out.

pub mod emit;
pub mod error;
pub mod load;
pub mod model;

pub use emit::{generate, Options, Output};
pub use error::{Errors, GenError};
pub use load::{load, Inputs};
