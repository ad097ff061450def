//! wasmgate's core: the filter-config schema, its validation, the compiled route table and
//! backend selection. Plain Rust with no proxy-wasm dependency, so it is tested and
//! benchmarked natively; the filters are thin adapters over it.

// Tests may unwrap and index: a failing test should panic loudly.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod combined;
pub mod config;
pub mod effects;
pub mod error;
pub mod filter_state;
pub mod multicluster;
pub mod observe;
pub mod regex_budget;
pub mod request;
pub mod route_table;
pub mod seeded_hash;
pub mod template;
pub mod weighted;

pub use config::{BalancerConfig, RouterConfig};
pub use effects::{apply_edits, apply_request, HeaderMap, Step, VecHeaders};
pub use error::{ConfigError, ConfigErrorKind};
pub use request::{FixedRandom, Random, RequestView, XorShift};
pub use route_table::{
    BackendEdits, Forward, HeaderEdits, Outcome, Reply, RouteTable, RuleRef, TcpOutcome,
};
