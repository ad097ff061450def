//! Counters per service and member cluster. Envoy shows them in `/stats` as
//! `wasmcustom.wasmgate.balancer.<service>.<member>.requests` and so on.

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use wasmgate_core::multicluster::{Balancer, HealthState, HealthView, Selector};

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

fn counter(name: &str) -> Option<u32> {
    define(MetricType::Counter, name)
}

fn gauge(name: &str) -> Option<u32> {
    define(MetricType::Gauge, name)
}

fn define(kind: MetricType, name: &str) -> Option<u32> {
    match hostcalls::define_metric(kind, name) {
        Ok(id) => Some(id),
        Err(status) => {
            warn!("wasmgate.balancer: cannot define metric {name}: {status:?}");
            None
        }
    }
}

pub fn define_all(balancer: &Balancer) -> Vec<ServiceMetrics> {
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

pub fn inc(id: Option<u32>) {
    if let Some(id) = id {
        if let Err(status) = hostcalls::increment_metric(id, 1) {
            warn!("wasmgate.balancer: cannot increment metric {id}: {status:?}");
        }
    }
}

pub fn inc_at(ids: &[Option<u32>], i: usize) {
    inc(ids.get(i).copied().flatten());
}

fn set(id: Option<u32>, value: u64) {
    if let Some(id) = id {
        if let Err(status) = hostcalls::record_metric(id, value) {
            warn!("wasmgate.balancer: cannot record metric {id}: {status:?}");
        }
    }
}

/// Sets the health gauges of one service from a freshly read health state, where they differ
/// from what this worker last set (`published`, per member: healthy, ejected). Every worker
/// reads the same shared state, so whichever writes last writes the same values.
pub fn publish_health(
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
        set(m.healthy.get(i).copied().flatten(), u64::from(now.0));
        set(m.ejected.get(i).copied().flatten(), u64::from(now.1));
        *last = Some(now);
    }
}
