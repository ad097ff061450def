//! Active health checks: on each tick one worker (the lease holder) sends a check to every
//! member of every service that has them; each answer is a verdict in shared health, which
//! every worker reads.

use std::collections::HashMap;

use super::balancer_host::{BalancerHost, CheckRequest};
use super::store::acquire_lease;
use super::worker::BalancerWorker;

/// The root's side of active checks: its lease id and the checks in flight.
#[derive(Debug)]
pub struct HealthChecker {
    /// This worker's id for the health-check lease.
    owner: u64,
    /// In-flight checks: token -> (service, member).
    pending: HashMap<u32, (usize, usize)>,
    /// The tick period (the shortest check interval); 0 without active checks.
    tick_ms: u64,
}

impl HealthChecker {
    pub fn new(owner: u64, tick_ms: u64) -> Self {
        HealthChecker {
            owner,
            pending: HashMap::new(),
            tick_ms,
        }
    }

    pub fn tick_ms(&self) -> u64 {
        self.tick_ms
    }

    /// The checks sent and not yet answered, as (service, member).
    pub fn in_flight(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.pending.values().copied()
    }

    /// On the root's tick: refreshes this worker's health view, then, if this worker holds
    /// (or takes) the lease, checks every member that has no check in flight.
    pub fn on_tick<H: BalancerHost>(&mut self, worker: &BalancerWorker<H>) {
        let host = worker.host();
        let now = host.now_ms();
        // Every worker keeps its health view (and the health gauges) current without traffic.
        worker.refresh_all(now);
        // One worker checks; the others read its verdicts from shared data. The lease
        // outlives three ticks, so a worker that stops ticking is replaced.
        let balancer = worker.balancer();
        if !acquire_lease(
            host,
            &balancer.lease_key(),
            self.owner,
            now,
            self.tick_ms.saturating_mul(3),
        ) {
            return;
        }
        let mut failed = Vec::new();
        for (si, sel) in balancer.selectors().iter().enumerate() {
            let Some(a) = sel.health_policy().active.as_ref() else {
                continue;
            };
            let authority = a.host.as_deref().unwrap_or(sel.name());
            for (mi, m) in sel.members().iter().enumerate() {
                if self.pending.values().any(|&p| p == (si, mi)) {
                    continue;
                }
                let check = CheckRequest {
                    cluster: &m.cluster,
                    headers: [
                        (":method", "GET"),
                        (":path", a.path.as_str()),
                        (":authority", authority),
                    ],
                    timeout_ms: a.timeout_ms,
                };
                match host.dispatch_check(&check) {
                    Some(token) => {
                        self.pending.insert(token, (si, mi));
                    }
                    None => failed.push((si, mi)),
                }
            }
        }
        for (si, mi) in failed {
            worker.record_check(si, mi, false);
        }
    }

    /// A check's answer arrived (`answered` false: it failed, reset or timed out, and came
    /// back without headers). Any 2xx status is a pass.
    pub fn on_response<H: BalancerHost>(
        &mut self,
        worker: &BalancerWorker<H>,
        token: u32,
        answered: bool,
    ) {
        let Some((svc, member)) = self.pending.remove(&token) else {
            return;
        };
        let status = answered
            .then(|| worker.host().check_response_header(":status"))
            .flatten()
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok());
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        worker.record_check(svc, member, ok);
    }
}
