//! One TCP connection through the balancer: its listener port names the service; the pick
//! steers `tcp_proxy` through filter state.

use super::balancer_host::{int_property, BalancerHost, LogLevel};
use super::worker::{BalancerWorker, Steer};
use super::PickInput;

/// A new TCP connection: steer it to a member of the service its listener port names, or
/// close it when none may take it. Other ports keep `tcp_proxy`'s own cluster.
pub fn on_new_connection<H: BalancerHost>(w: &BalancerWorker<H>) {
    let host = w.host();
    let b = w.balancer();
    let port = int_property(host, &["destination", "port"]).and_then(|p| u16::try_from(p).ok());
    let Some(i) = port.and_then(|p| b.tcp_service(p)) else {
        return;
    };
    let needs_source = b.selector(i).is_some_and(|s| s.needs_source_address());
    let source = if needs_source {
        host.property(&["source", "address"])
    } else {
        None
    };
    let input = PickInput {
        headers: &[],
        source_address: source.as_deref(),
        affinity_key: None,
    };
    match w.steer(i, &input) {
        Steer::To(_, picked, _) => {
            // A connection goes to the member's own cluster: tcp_proxy does not retry into an
            // aggregate cluster's next member the way the HTTP router does.
            let cluster = b
                .selector(picked.service)
                .and_then(|s| s.members().get(picked.member))
                .map_or("", |m| m.cluster.as_str());
            host.set_tcp_cluster(cluster);
        }
        Steer::Reject | Steer::NotOurs => {
            host.log(
                LogLevel::Warn,
                format_args!("wasmgate.balancer: no healthy member for tcp port {port:?}; closing"),
            );
            host.close_downstream();
        }
    }
}
