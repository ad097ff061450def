//! Support for running the router case table (tests/router-cases/router_cases.yaml) against
//! a real Envoy and against host-sim from the same Envoy bootstrap.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use wasmgate_core::config::RouterConfig;
use wasmgate_core::route_table::default_cluster_name;

use crate::bootstrap::{HttpBootstrap, WasmFilter};

/// The cluster that stands for "the proxy's own routing" in pass-through cases.
pub const PASS_THROUGH: &str = "proxy-own-routing";

/// Every upstream cluster a router config can steer to.
pub fn clusters_of(config: &RouterConfig) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in &config.routes {
        let http = r
            .http
            .iter()
            .flat_map(|h| &h.rules)
            .flat_map(|rule| rule.backend.iter().chain(&rule.backends));
        let tcp = r
            .tcp
            .iter()
            .flat_map(|t| &t.rules)
            .flat_map(|rule| rule.backend.iter().chain(&rule.backends));
        for b in http.chain(tcp) {
            out.insert(
                b.cluster
                    .clone()
                    .unwrap_or_else(|| default_cluster_name(&b.service, b.port)),
            );
        }
        let buckets = r
            .http
            .iter()
            .flat_map(|h| &h.rules)
            .flat_map(|rule| &rule.bucket);
        out.extend(buckets.map(|b| b.cluster.clone()));
    }
    out.insert(PASS_THROUGH.to_string());
    out
}

/// The port every case's listener is declared on, whatever port it really listens on: the
/// native runner passes it as the listener port, the others map their port to it through
/// `listenerPorts`, so a redirect's Location is the same in all three.
pub const DECLARED_LISTENER_PORT: u16 = 80;

/// The bootstrap both runners use: the router, a `cluster_header` route, and a fallback
/// route to [`PASS_THROUGH`] for requests the router leaves alone.
pub fn case_bootstrap(
    config: &RouterConfig,
    listen: SocketAddr,
    admin: SocketAddr,
    clusters: Vec<(String, SocketAddr)>,
) -> HttpBootstrap {
    let mut config = config.clone();
    config
        .listener_ports
        .entry(listen.port())
        .or_insert(DECLARED_LISTENER_PORT);
    HttpBootstrap {
        listen,
        admin,
        filters: vec![WasmFilter::router(
            serde_json::to_string(&config).unwrap_or_default(),
        )],
        cluster_header: config.cluster_header.clone(),
        pass_through: Some(PASS_THROUGH.into()),
        clusters,
    }
}
