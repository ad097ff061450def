//! The ways to run requests: one or several concurrent streams through a filter chain, with
//! the chain's VMs (and singleton services) running their own events in between.

use std::collections::VecDeque;
use std::time::Duration;

use crate::plugin::{HostSim, Plugin};
use crate::route_config::Routes;

use super::{HttpOutcome, HttpRequest, Session};

/// Runs one request through `chain` (in decode order) on `sim`'s clusters and clock.
pub fn run(sim: &HostSim, chain: &[&Plugin], routes: &Routes, req: HttpRequest) -> HttpOutcome {
    run_concurrent_at(sim, chain, routes, vec![(Duration::ZERO, req)])
        .pop()
        .unwrap_or_default()
}

/// Runs several streams at once through `chain`, as one Envoy worker would: every stream is
/// started in order (context created, request delivered as far as the filters let it go),
/// then the shared clock jumps from one pending event of any stream to the next. Outcomes
/// come back in the order of `reqs`.
pub fn run_concurrent(
    sim: &HostSim,
    chain: &[&Plugin],
    routes: &Routes,
    reqs: Vec<HttpRequest>,
) -> Vec<HttpOutcome> {
    let reqs = reqs.into_iter().map(|r| (Duration::ZERO, r)).collect();
    run_concurrent_at(sim, chain, routes, reqs)
}

/// Like [`run_concurrent`], but each request arrives after its offset from now (equal
/// offsets arrive in list order, before anything else due at that instant). While no
/// stream is open, the chain's VMs run their own events as [`FilterChain::advance`] does.
pub fn run_concurrent_at<'p>(
    sim: &HostSim,
    chain: &[&'p Plugin],
    routes: &'p Routes,
    reqs: Vec<(Duration, HttpRequest)>,
) -> Vec<HttpOutcome> {
    run_with_services(sim, chain, &[], routes, reqs)
}

/// Like [`run_concurrent_at`], with plugins that are in no stream (singleton services)
/// living on meanwhile: while the streams wait (for an upstream, a callout, a timer) the
/// services' ticks, queues and callout replies come when due, as on Envoy's main thread.
/// What they log and call goes to their own [`Plugin::take_logs`] and
/// [`Plugin::take_callouts`], not to the streams.
pub fn run_with_services<'p>(
    sim: &HostSim,
    chain: &[&'p Plugin],
    services: &[&'p Plugin],
    routes: &'p Routes,
    reqs: Vec<(Duration, HttpRequest)>,
) -> Vec<HttpOutcome> {
    let shared = sim.shared().clone();
    let t0 = shared.now();
    let mut results: Vec<Option<HttpOutcome>> = vec![None; reqs.len()];
    let mut arrivals: Vec<(u64, usize, HttpRequest)> = reqs
        .into_iter()
        .enumerate()
        .map(|(k, (d, r))| (t0.saturating_add(nanos(d)), k, r))
        .collect();
    arrivals.sort_by_key(|(t, k, _)| (*t, *k));
    let mut arrivals = VecDeque::from(arrivals);
    let mut open: Vec<(usize, Session<'p>)> = Vec::new();
    // Streams arriving now start before anything else due at this instant.
    let start_due = |arrivals: &mut VecDeque<(u64, usize, HttpRequest)>,
                     open: &mut Vec<(usize, Session<'p>)>| {
        while arrivals.front().is_some_and(|a| a.0 <= shared.now()) {
            let Some((_, k, req)) = arrivals.pop_front() else {
                break;
            };
            let mut s = Session::new(sim.clone(), chain, routes, req);
            s.start();
            open.push((k, s));
        }
    };
    start_due(&mut arrivals, &mut open);
    loop {
        let mut j = 0;
        while j < open.len() {
            open[j].1.settle();
            if open[j].1.done() {
                let (k, s) = open.remove(j);
                results[k] = Some(s.finish());
            } else {
                j += 1;
            }
        }
        if open.is_empty() {
            let Some(&(t, _, _)) = arrivals.front() else {
                break;
            };
            // No stream open: the chain's VMs live on as with `advance` until the next
            // arrival, which then comes before any event due at its instant.
            let now = shared.now();
            if t > now + 1 {
                let everyone = chain.iter().chain(services).copied().collect();
                FilterChain::new(everyone).advance(Duration::from_nanos(t - 1 - now));
            }
            shared.advance_to(t);
            start_due(&mut arrivals, &mut open);
            continue;
        }
        // Every open stream waits: jump to the next thing that can happen to any of them.
        let mut next = arrivals.front().map(|(t, _, _)| *t);
        for (_, s) in &open {
            next = min_opt(
                next,
                min_opt(s.upstream_due.as_ref().map(|u| u.0), s.timeout_due),
            );
        }
        for (plugin, worker) in open_vms(&open) {
            next = min_opt(next, plugin.vm(worker).next_event_time());
        }
        for service in services {
            for w in 0..service.workers() {
                next = min_opt(next, service.vm(w).next_event_time());
            }
        }
        let deadline = open
            .iter()
            .map(|(_, s)| s.deadline)
            .min()
            .unwrap_or(u64::MAX);
        match next {
            Some(t) if t <= deadline => {
                shared.advance_to(t);
                start_due(&mut arrivals, &mut open);
                run_vm_events(&mut open);
                for service in services {
                    service.advance(Duration::ZERO);
                }
            }
            _ => {
                shared.advance_to(deadline);
                for (_, s) in open.iter_mut().filter(|(_, s)| s.deadline <= deadline) {
                    s.expire();
                }
            }
        }
    }
    results.into_iter().map(Option::unwrap_or_default).collect()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The VMs the open streams' filters run on, each once, in stream then chain order.
fn open_vms<'p>(open: &[(usize, Session<'p>)]) -> Vec<(&'p Plugin, usize)> {
    let mut vms: Vec<(&'p Plugin, usize)> = Vec::new();
    for (_, s) in open {
        for slot in &s.slots {
            if !vms
                .iter()
                .any(|(p, w)| std::ptr::eq(*p, slot.plugin) && *w == slot.worker)
            {
                vms.push((slot.plugin, slot.worker));
            }
        }
    }
    vms
}

/// Delivers every VM event due now to the stream whose context it targets. Events for the
/// root context (ticks, queues) or for no open stream count for every open stream, as they
/// would for each one alone.
fn run_vm_events(open: &mut [(usize, Session<'_>)]) {
    let Some(now) = open.first().map(|(_, s)| s.now()) else {
        return;
    };
    for (plugin, worker) in open_vms(open) {
        loop {
            let mut vm = plugin.vm(worker);
            let Some((ctx, ev)) = vm.pop_due(now) else {
                break;
            };
            let before = vm.host_calls();
            let owner = open.iter().enumerate().find_map(|(j, (_, s))| {
                s.slots
                    .iter()
                    .position(|sl| {
                        std::ptr::eq(sl.plugin, plugin)
                            && sl.worker == worker
                            && sl.ctx == ctx
                            && sl.active
                    })
                    .map(|t| (j, t))
            });
            match owner {
                Some((j, t)) => {
                    let s = &mut open[j].1;
                    let mut out =
                        vm.deliver(ctx, ev, Some((&mut s.stream, &mut s.slots[t].access)));
                    s.out.callouts.append(&mut out.callouts);
                    s.calls += vm.host_calls().saturating_sub(before);
                    drop(vm);
                    s.absorb(Some(t), None, out);
                }
                None => {
                    let out = vm.deliver(ctx, ev, None);
                    let calls = vm.host_calls().saturating_sub(before);
                    drop(vm);
                    for (_, s) in open.iter_mut() {
                        s.out.logs.extend(out.logs.iter().cloned());
                        s.out.callouts.extend(out.callouts.iter().cloned());
                        s.calls += calls;
                    }
                }
            }
        }
    }
}
impl HostSim {
    /// Runs a request through Envoy's router alone, with no Wasm filter: the baseline a
    /// filter's behaviour and cost compare with.
    pub fn http_baseline(&self, routes: &Routes, req: HttpRequest) -> HttpOutcome {
        run(self, &[], routes, req)
    }
}

impl Plugin {
    /// Runs one HTTP request through this plugin alone.
    pub fn http(&self, routes: &Routes, req: HttpRequest) -> HttpOutcome {
        run(self.sim(), &[self], routes, req)
    }

    /// Runs several HTTP requests through this plugin as concurrent streams on its VMs;
    /// outcomes in request order. See [`run_concurrent`].
    pub fn http_concurrent(&self, routes: &Routes, reqs: Vec<HttpRequest>) -> Vec<HttpOutcome> {
        run_concurrent(self.sim(), &[self], routes, reqs)
    }

    /// Like [`Plugin::http_concurrent`], each request arriving after its offset from now.
    pub fn http_concurrent_at(
        &self,
        routes: &Routes,
        reqs: Vec<(Duration, HttpRequest)>,
    ) -> Vec<HttpOutcome> {
        run_concurrent_at(self.sim(), &[self], routes, reqs)
    }
}

/// Several filters applied in order to each stream (Envoy's `http_filters` list).
pub struct FilterChain<'p> {
    pub filters: Vec<&'p Plugin>,
}

impl<'p> FilterChain<'p> {
    pub fn new(filters: Vec<&'p Plugin>) -> Self {
        FilterChain { filters }
    }

    /// Runs one request; a chain without filters is Envoy's router alone (a baseline).
    pub fn http(&self, sim: &HostSim, routes: &Routes, req: HttpRequest) -> HttpOutcome {
        run(sim, &self.filters, routes, req)
    }

    /// Runs several requests as concurrent streams through the chain; outcomes in request
    /// order. See [`run_concurrent`].
    pub fn http_concurrent(
        &self,
        sim: &HostSim,
        routes: &Routes,
        reqs: Vec<HttpRequest>,
    ) -> Vec<HttpOutcome> {
        run_concurrent(sim, &self.filters, routes, reqs)
    }

    /// Like [`FilterChain::http_concurrent`], each request arriving after its offset from now.
    pub fn http_concurrent_at(
        &self,
        sim: &HostSim,
        routes: &Routes,
        reqs: Vec<(Duration, HttpRequest)>,
    ) -> Vec<HttpOutcome> {
        run_concurrent_at(sim, &self.filters, routes, reqs)
    }

    /// Advances the shared clock, firing every filter's timers and callouts.
    pub fn advance(&self, d: Duration) {
        if let Some(first) = self.filters.first() {
            let target = first.sim().shared().now() + d.as_nanos() as u64;
            loop {
                let next = self
                    .filters
                    .iter()
                    .enumerate()
                    .flat_map(|(k, p)| (0..p.workers()).map(move |w| (k, w)))
                    .filter_map(|(k, w)| self.filters[k].vm(w).next_event_time().map(|t| (t, k, w)))
                    .min();
                let Some((t, k, _)) = next.filter(|(t, _, _)| *t <= target) else {
                    break;
                };
                first.sim().shared().advance_to(t);
                self.filters[k].advance(Duration::ZERO);
            }
            first.sim().shared().advance_to(target);
        }
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
