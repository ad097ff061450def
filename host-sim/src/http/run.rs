//! The one way to run HTTP streams: a [`FilterChain`] (Envoy's `http_filters`, possibly
//! empty, with the singleton services that live beside it) runs one request or several
//! concurrent ones; the chain's VMs (and the services) run their own events in between.

use std::collections::VecDeque;
use std::time::Duration;

use crate::plugin::{HostSim, Plugin};
use crate::route_config::Routes;

use super::phase::FilterStatus;
use super::{HttpOutcome, HttpRequest, Session};

/// Several filters applied in order to each stream (Envoy's `http_filters` list; none is
/// Envoy's router alone, the baseline a filter compares with), and the plugins that live
/// beside the streams without being in them (singleton services).
pub struct FilterChain<'p> {
    sim: HostSim,
    filters: Vec<&'p Plugin>,
    services: Vec<&'p Plugin>,
}

impl<'p> FilterChain<'p> {
    /// The filters in decode order, on `sim`'s clusters and clock.
    pub fn new(sim: &HostSim, filters: Vec<&'p Plugin>) -> Self {
        FilterChain {
            sim: sim.clone(),
            filters,
            services: Vec::new(),
        }
    }

    /// Plugins in no stream (singleton services) that live on while the streams wait:
    /// their ticks, queues and callout replies come when due, as on Envoy's main thread.
    /// What they log and call goes to their own [`Plugin::take_logs`] and
    /// [`Plugin::take_callouts`], not to the streams.
    pub fn with_services(mut self, services: Vec<&'p Plugin>) -> Self {
        self.services = services;
        self
    }

    /// Runs one request; see [`FilterChain::run`].
    pub fn run_one(&self, routes: &Routes, req: HttpRequest) -> HttpOutcome {
        self.run(routes, [req]).pop().unwrap_or_default()
    }

    /// Runs the requests as concurrent streams, as one Envoy worker would: each opens at its
    /// [`HttpRequest::arriving_after`] offset from now (equal offsets in list order, before
    /// anything else due at that instant; its contexts created, the request delivered as far
    /// as the filters let it go), then the shared clock jumps from one pending event of any
    /// stream to the next. While no stream is open, the VMs run their own events as
    /// [`FilterChain::advance`] does. Outcomes come back in request order.
    pub fn run<'r>(
        &'r self,
        routes: &'r Routes,
        reqs: impl IntoIterator<Item = HttpRequest>,
    ) -> Vec<HttpOutcome> {
        let sim = &self.sim;
        let chain: &[&'r Plugin] = &self.filters;
        let services = &self.services;
        let shared = sim.shared().clone();
        let t0 = shared.now();
        let mut arrivals: Vec<(u64, usize, HttpRequest)> = reqs
            .into_iter()
            .enumerate()
            .map(|(k, r)| (t0.saturating_add(nanos(r.arrives_after)), k, r))
            .collect();
        let mut results: Vec<Option<HttpOutcome>> = vec![None; arrivals.len()];
        arrivals.sort_by_key(|(t, k, _)| (*t, *k));
        let mut arrivals = VecDeque::from(arrivals);
        let mut open: Vec<(usize, Session<'r>)> = Vec::new();
        // Streams arriving now start before anything else due at this instant.
        let start_due = |arrivals: &mut VecDeque<(u64, usize, HttpRequest)>,
                         open: &mut Vec<(usize, Session<'r>)>| {
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
                // No stream open: the VMs live on as with `advance` until the next
                // arrival, which then comes before any event due at its instant.
                let now = shared.now();
                if t > now + 1 {
                    self.advance(Duration::from_nanos(t - 1 - now));
                }
                shared.advance_to(t);
                start_due(&mut arrivals, &mut open);
                continue;
            }
            // Every open stream waits: jump to the next thing that can happen to any of them.
            let mut next = arrivals.front().map(|(t, _, _)| *t);
            for (_, s) in &open {
                next = min_opt(next, s.next_event());
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

    /// Advances the shared clock, firing every filter's and service's timers and callouts.
    pub fn advance(&self, d: Duration) {
        let everyone: Vec<&Plugin> = self.filters.iter().chain(&self.services).copied().collect();
        let shared = self.sim.shared();
        let target = shared.now() + d.as_nanos() as u64;
        loop {
            let next = everyone
                .iter()
                .enumerate()
                .flat_map(|(k, p)| (0..p.workers()).map(move |w| (k, w)))
                .filter_map(|(k, w)| everyone[k].vm(w).next_event_time().map(|t| (t, k)))
                .min();
            let Some((t, k)) = next.filter(|(t, _)| *t <= target) else {
                break;
            };
            shared.advance_to(t);
            everyone[k].advance(Duration::ZERO);
        }
        shared.advance_to(target);
    }
}

impl Plugin {
    /// Runs one HTTP request through this plugin alone (a [`FilterChain`] of one).
    pub fn http(&self, routes: &Routes, req: HttpRequest) -> HttpOutcome {
        FilterChain::new(self.sim(), vec![self]).run_one(routes, req)
    }
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
                            && sl.status == FilterStatus::Running
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
fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
