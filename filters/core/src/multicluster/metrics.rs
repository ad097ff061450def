//! The balancer's counters and gauges per service and member cluster: which exist, and when
//! they move. Envoy shows them in `/stats` as
//! `wasmcustom.wasmgate.balancer.<service>.<member>.requests` and so on.

use super::balancer_host::{BalancerHost, MetricKind};
use super::{Balancer, HealthState, HealthView, Selector};

/// Metric ids of one service (`None` where the host refused to define one).
#[derive(Debug, Default)]
pub struct ServiceMetrics {
    /// Per member: requests (or connections) sent there.
    pub requests: Vec<Option<u32>>,
    /// Per member: passive ejections this proxy caused.
    pub ejections: Vec<Option<u32>>,
    /// Per member: ejections this proxy refused because `maxEjectionPercent` of the members
    /// were already ejected (Envoy's `outlier_detection.ejections_overflow`).
    pub ejections_overflow: Vec<Option<u32>>,
    /// Per member: active-check verdicts that took it down.
    pub down: Vec<Option<u32>>,
    /// Picks made in panic mode (no member healthy).
    pub panic: Option<u32>,
    /// Requests answered 503 because no member was healthy.
    pub rejected: Option<u32>,
    /// Picks that left the proxy's own zone.
    pub failover: Option<u32>,
    /// Gauge per member: 1 while selection may pick it (checked up and not ejected).
    pub healthy: Vec<Option<u32>>,
    /// Gauge per member: 1 while it is passively ejected.
    pub ejected: Vec<Option<u32>>,
}

/// Defines every service's metrics, in service order.
pub fn define_all(host: &impl BalancerHost, balancer: &Balancer) -> Vec<ServiceMetrics> {
    let counter = |name: &str| host.define_metric(MetricKind::Counter, name);
    let gauge = |name: &str| host.define_metric(MetricKind::Gauge, name);
    balancer
        .selectors()
        .iter()
        .map(|s| {
            let base = format!("wasmgate.balancer.{}", s.name());
            let per_member = |what: &str| {
                s.member_names()
                    .map(|m| counter(&format!("{base}.{m}.{what}")))
                    .collect()
            };
            let per_member_gauge = |what: &str| {
                s.member_names()
                    .map(|m| gauge(&format!("{base}.{m}.{what}")))
                    .collect()
            };
            ServiceMetrics {
                requests: per_member("requests"),
                ejections: per_member("ejections"),
                ejections_overflow: per_member("ejections_overflow"),
                down: per_member("health_check_down"),
                panic: counter(&format!("{base}.panic")),
                rejected: counter(&format!("{base}.rejected")),
                failover: counter(&format!("{base}.failover")),
                healthy: per_member_gauge("healthy"),
                ejected: per_member_gauge("ejected"),
            }
        })
        .collect()
}

pub fn inc(host: &impl BalancerHost, id: Option<u32>) {
    if let Some(id) = id {
        host.increment_metric(id);
    }
}

pub fn inc_at(host: &impl BalancerHost, ids: &[Option<u32>], i: usize) {
    inc(host, ids.get(i).copied().flatten());
}

fn set(host: &impl BalancerHost, id: Option<u32>, value: u64) {
    if let Some(id) = id {
        host.record_metric(id, value);
    }
}

/// Sets the health gauges of one service from a freshly read health state, where they differ
/// from what this worker last set (`published`, per member: healthy, ejected). Every worker
/// reads the same shared state, so whichever writes last writes the same values.
pub fn publish_health(
    host: &impl BalancerHost,
    m: &ServiceMetrics,
    sel: &Selector,
    state: &HealthState,
    view: &HealthView,
    now_ms: u64,
    published: &mut Vec<Option<(bool, bool)>>,
) {
    published.resize(sel.members().len(), None);
    for ((i, name), last) in sel.member_names().enumerate().zip(published.iter_mut()) {
        let now = (
            view.get(i).healthy,
            state.get(name).is_some_and(|h| h.ejected(now_ms)),
        );
        if *last == Some(now) {
            continue;
        }
        set(host, m.healthy.get(i).copied().flatten(), u64::from(now.0));
        set(host, m.ejected.get(i).copied().flatten(), u64::from(now.1));
        *last = Some(now);
    }
}
