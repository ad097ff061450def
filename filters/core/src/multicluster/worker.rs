//! One worker's balancer: the compiled config, this worker's selection state and health view,
//! and the decisions that read or write shared health (a pick, a passive report, an active
//! check's verdict). Every context of a worker shares one (the filter keeps it in an `Rc`).

use std::cell::RefCell;

use super::active_checks::HealthChecker;
use super::balancer_host::{string_property, BalancerHost, LogLevel};
use super::health::PassiveEffect;
use super::metrics::{self, ServiceMetrics};
use super::store::update_health;
use super::{
    cookie, Balancer, HealthState, HealthView, Locality, MemberHealth, NoPick, PickInput, Reason,
    WorkerState,
};
use crate::error::ConfigError;
use crate::observe;
use crate::request::XorShift;

/// The health view of one service as last read from shared data.
struct CachedHealth {
    cas: u32,
    state: HealthState,
    view: HealthView,
}

/// Per-service mutable state of this worker.
struct ServiceState {
    worker: WorkerState,
    health: Option<CachedHealth>,
    /// Health gauges as this worker last set them, per member: (healthy, ejected).
    published: Vec<Option<(bool, bool)>>,
}

/// The outcome of one pick, kept for the response phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picked {
    pub service: usize,
    pub member: usize,
    /// The service ejects passively: its responses are worth reporting.
    pub passive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steer {
    /// The Envoy cluster to steer to, the pick, and the `wasmgate.member` filter state.
    To(String, Picked, String),
    /// No member may take it: answer 503.
    Reject,
    /// Not a service of ours (or the worker is busy): leave the request alone.
    NotOurs,
}

pub struct BalancerWorker<H> {
    host: H,
    balancer: Balancer,
    /// This root serves TCP connections (its id ends in `.tcp`), not HTTP streams.
    tcp: bool,
    services: RefCell<Vec<ServiceState>>,
    rng: RefCell<XorShift>,
    metrics: Vec<ServiceMetrics>,
}

impl<H: BalancerHost> BalancerWorker<H> {
    /// Compiles `config` and sets this worker up: the proxy's locality, each service's health
    /// record in shared data, the health-check tick, metrics. An invalid config is refused
    /// whole.
    pub fn configure(host: H, config: &[u8]) -> Result<(Self, HealthChecker), ConfigError> {
        let mut balancer = Balancer::from_json(config)?;
        let tcp = host
            .property(&["plugin_root_id"])
            .is_some_and(|id| id.ends_with(b".tcp"));
        let locality = match balancer.configured_locality() {
            Some(l) => Some(l.clone()),
            None => Locality::from_node(|path| string_property(&host, path)),
        };
        if let Some(l) = locality {
            balancer.set_locality(&l);
        }
        let now = host.now_ms();
        // Create or extend each service's health record: new members start their slow start,
        // and later writes are compare-and-swap on an existing key.
        for (i, sel) in balancer.selectors().iter().enumerate() {
            let key = balancer.health_key(i);
            let (_, cas) = host.get(key);
            let res = update_health(&host, key, |st| {
                (st.reconcile(sel.member_names(), now) || cas == 0, ())
            });
            if let Err(e) = res {
                host.log(
                    LogLevel::Warn,
                    format_args!(
                        "wasmgate.balancer: cannot initialise health of {}: {e:?}",
                        sel.name()
                    ),
                );
            }
        }
        let tick_ms = balancer
            .selectors()
            .iter()
            .filter_map(|s| s.health_policy().active.as_ref().map(|a| a.interval_ms))
            .min()
            .unwrap_or(0);
        // Both roots tick (a TCP-only deployment still checks); the lease keeps it to one.
        if tick_ms > 0 {
            host.set_tick_period_ms(tick_ms);
        }
        let seed = host.random_u64();
        let services = balancer
            .selectors()
            .iter()
            .map(|_| ServiceState {
                worker: WorkerState::new(),
                health: None,
                published: Vec::new(),
            })
            .collect();
        host.log(
            LogLevel::Info,
            format_args!(
                "wasmgate.balancer: configured {} services{}{}",
                balancer.selectors().len(),
                balancer
                    .configured_locality()
                    .map(|l| format!(
                        " at {}/{}",
                        l.region.as_deref().unwrap_or("-"),
                        l.zone.as_deref().unwrap_or("-")
                    ))
                    .unwrap_or_default(),
                if tcp { " (tcp)" } else { "" }
            ),
        );
        let metrics = metrics::define_all(&host, &balancer);
        let worker = BalancerWorker {
            host,
            balancer,
            tcp,
            services: RefCell::new(services),
            rng: RefCell::new(XorShift::new(seed)),
            metrics,
        };
        Ok((worker, HealthChecker::new(seed | 1, tick_ms)))
    }

    pub fn host(&self) -> &H {
        &self.host
    }

    pub fn balancer(&self) -> &Balancer {
        &self.balancer
    }

    pub fn serves_tcp(&self) -> bool {
        self.tcp
    }

    /// Brings every service's health view (and the health gauges) up to date, at `now_ms`.
    pub fn refresh_all(&self, now_ms: u64) {
        if let Ok(mut states) = self.services.try_borrow_mut() {
            for (i, st) in states.iter_mut().enumerate() {
                self.refresh(i, st, Some(now_ms));
            }
        }
    }

    /// Brings service `i`'s cached health view up to date: re-decoded only when shared data
    /// changed or the view's time-dependent part (slow start, an ejection ending) moved on.
    /// `now` if the caller has it; otherwise the clock is read only when the cached view has
    /// such a part or is re-decoded (a host call saved on most requests).
    fn refresh(&self, i: usize, st: &mut ServiceState, mut now: Option<u64>) {
        let Some(sel) = self.balancer.selector(i) else {
            return;
        };
        let (bytes, cas) = self.host.get(self.balancer.health_key(i));
        let stale = st.health.as_ref().is_none_or(|c| {
            c.cas != cas
                || (c.view.changes_at_ms != 0
                    && *now.get_or_insert_with(|| self.host.now_ms()) >= c.view.changes_at_ms)
        });
        if stale {
            let now = now.unwrap_or_else(|| self.host.now_ms());
            let state = bytes
                .and_then(|b| HealthState::decode(&b))
                .unwrap_or_default();
            let view = state.view(sel.member_names(), now, sel.slow_start_ms());
            if let Some(m) = self.metrics.get(i) {
                metrics::publish_health(&self.host, m, sel, &state, &view, now, &mut st.published);
            }
            st.health = Some(CachedHealth { cas, state, view });
        }
    }

    /// Picks a member cluster of service `i` for this request or connection.
    pub fn steer(&self, i: usize, input: &PickInput<'_>) -> Steer {
        let Some(sel) = self.balancer.selector(i) else {
            return Steer::NotOurs;
        };
        let (Ok(mut states), Ok(mut rng)) =
            (self.services.try_borrow_mut(), self.rng.try_borrow_mut())
        else {
            return Steer::NotOurs;
        };
        let Some(st) = states.get_mut(i) else {
            return Steer::NotOurs;
        };
        self.refresh(i, st, None);
        let ServiceState { worker, health, .. } = st;
        let all_healthy;
        let view = match health {
            Some(c) => &c.view,
            None => {
                all_healthy = HealthView::all_healthy(sel.members().len());
                &all_healthy
            }
        };
        let m = self.metrics.get(i);
        match sel.pick(input, view, worker, &mut *rng) {
            Ok(p) => {
                if let Some(m) = m {
                    metrics::inc_at(&self.host, &m.requests, p.member);
                    if p.reason == Reason::Panic {
                        metrics::inc(&self.host, m.panic);
                    }
                    if p.tier > 0 {
                        metrics::inc(&self.host, m.failover);
                    }
                }
                let member = sel.members().get(p.member).map_or("", |m| m.name.as_str());
                Steer::To(
                    p.cluster.to_string(),
                    Picked {
                        service: i,
                        member: p.member,
                        passive: sel.health_policy().passive.is_some(),
                    },
                    observe::member_state(sel.name(), member, p.reason, p.tier),
                )
            }
            Err(NoPick::AllUnhealthy) => {
                if let Some(m) = m {
                    metrics::inc(&self.host, m.rejected);
                }
                Steer::Reject
            }
        }
    }

    /// A fresh affinity key for a generated cookie, from this worker's random source (seeded
    /// from the host at configure time, so workers and restarts differ).
    pub fn new_cookie_key(&self) -> String {
        match self.rng.try_borrow_mut() {
            Ok(mut rng) => cookie::new_key(&mut *rng),
            Err(_) => cookie::new_key(&mut XorShift::new(self.host.random_u64())),
        }
    }

    /// Reports what a response showed about the member it came from (passive health).
    pub fn report(&self, picked: Picked, error: bool) {
        let Some(sel) = self.balancer.selector(picked.service) else {
            return;
        };
        let Some(policy) = sel.health_policy().passive.as_ref() else {
            return;
        };
        let Some(name) = sel.members().get(picked.member).map(|m| m.name.as_str()) else {
            return;
        };
        // A success for a member with a clean record changes nothing: skip the shared write.
        if !error {
            let clean = self.services.try_borrow().ok().is_some_and(|s| {
                s.get(picked.service)
                    .and_then(|s| s.health.as_ref())
                    .is_some_and(|c| {
                        c.state
                            .get(name)
                            .is_none_or(|h| h.errors == 0 && h.ejections == 0)
                    })
            });
            if clean {
                return;
            }
        }
        let now = self.host.now_ms();
        let key = self.balancer.health_key(picked.service);
        let warn = |args: std::fmt::Arguments<'_>| self.host.log(LogLevel::Warn, args);
        match update_health(&self.host, key, |st| {
            // Decided on the state just read: a worker that raced us re-reads and re-decides.
            let e = st.record_response(name, error, now, policy, sel.member_names());
            (e != PassiveEffect::Unchanged, e)
        }) {
            Ok(PassiveEffect::Ejected(ms)) => {
                warn(format_args!(
                    "wasmgate.balancer: {}/{name} ejected for {ms} ms",
                    sel.name()
                ));
                if let Some(m) = self.metrics.get(picked.service) {
                    metrics::inc_at(&self.host, &m.ejections, picked.member);
                }
            }
            Ok(PassiveEffect::Refused) => {
                warn(format_args!(
                    "wasmgate.balancer: {}/{name} not ejected: maxEjectionPercent {} reached",
                    sel.name(),
                    policy.max_ejection_percent
                ));
                if let Some(m) = self.metrics.get(picked.service) {
                    metrics::inc_at(&self.host, &m.ejections_overflow, picked.member);
                }
            }
            Ok(_) => {}
            Err(e) => warn(format_args!(
                "wasmgate.balancer: cannot record health of {name}: {e:?}"
            )),
        }
    }

    /// Records an active check's verdict on member `member` of service `svc` in shared health.
    pub fn record_check(&self, svc: usize, member: usize, ok: bool) {
        let Some(sel) = self.balancer.selector(svc) else {
            return;
        };
        let (Some(policy), Some(m)) = (
            sel.health_policy().active.as_ref(),
            sel.members().get(member),
        ) else {
            return;
        };
        let now = self.host.now_ms();
        let key = self.balancer.health_key(svc);
        match update_health(&self.host, key, |st| {
            let before = *st.members.get(&m.name).unwrap_or(&MemberHealth::new(now));
            let flip = st.record_check(&m.name, ok, now, policy);
            let changed = st.members.get(&m.name) != Some(&before);
            (changed, flip)
        }) {
            Ok(Some(up)) => {
                self.host.log(
                    LogLevel::Info,
                    format_args!(
                        "wasmgate.balancer: {}/{} is {} (active check)",
                        sel.name(),
                        m.name,
                        if up { "up" } else { "down" }
                    ),
                );
                if !up {
                    if let Some(mm) = self.metrics.get(svc) {
                        metrics::inc_at(&self.host, &mm.down, member);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => self.host.log(
                LogLevel::Warn,
                format_args!(
                    "wasmgate.balancer: cannot record check of {}: {e:?}",
                    m.name
                ),
            ),
        }
    }
}
