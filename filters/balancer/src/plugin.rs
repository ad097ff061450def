//! The proxy-wasm side: root (configure, health-check tick), HTTP and TCP contexts.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};
use wasmgate_core::multicluster::balancer::ServiceFrom;
use wasmgate_core::multicluster::cookie;
use wasmgate_core::multicluster::health::PassiveEffect;
use wasmgate_core::multicluster::store::{acquire_lease, update_health};
use wasmgate_core::multicluster::{
    Balancer, HealthState, HealthView, Locality, NoPick, PickInput, Reason, WorkerState,
};
use wasmgate_core::XorShift;

use crate::hostcalls::{self as host, HostStore};
use crate::metrics::{self, ServiceMetrics};
use wasmgate_core::envoy::{set_filter_state_args, TCP_PROXY_CLUSTER};
use wasmgate_core::observe;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(BalancerRoot { shared: None, tcp: false, owner: 0, pending: HashMap::new(), tick_ms: 0 })
    });
}}

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

/// What every context of a root shares: the compiled config and this worker's state.
struct Shared {
    balancer: Balancer,
    services: RefCell<Vec<ServiceState>>,
    rng: RefCell<XorShift>,
    metrics: Vec<ServiceMetrics>,
}

/// The outcome of one pick, kept for the response phase.
#[derive(Clone, Copy)]
struct Picked {
    service: usize,
    member: usize,
    /// The service ejects passively: its responses are worth reporting.
    passive: bool,
}

enum Steer {
    /// The Envoy cluster to steer to, the pick, and the `wasmgate.member` filter state.
    To(String, Picked, String),
    Reject,
    NotOurs,
}

impl Shared {
    /// Brings service `i`'s cached health view up to date: re-decoded only when shared data
    /// changed or the view's time-dependent part (slow start, an ejection ending) moved on.
    /// `now` if the caller has it; otherwise the clock is read only when the cached view has
    /// such a part or is re-decoded (a host call saved on most requests).
    fn refresh(&self, i: usize, st: &mut ServiceState, mut now: Option<u64>) {
        let Some(sel) = self.balancer.selector(i) else {
            return;
        };
        let (bytes, cas) = HostStore.get_raw(self.balancer.health_key(i));
        let stale = st.health.as_ref().is_none_or(|c| {
            c.cas != cas
                || (c.view.changes_at_ms != 0
                    && *now.get_or_insert_with(host::now_ms) >= c.view.changes_at_ms)
        });
        if stale {
            let now = now.unwrap_or_else(host::now_ms);
            let state = bytes
                .and_then(|b| HealthState::decode(&b))
                .unwrap_or_default();
            let view = state.view(sel.member_names(), now, sel.slow_start_ms());
            if let Some(m) = self.metrics.get(i) {
                metrics::publish_health(m, sel, &state, &view, now, &mut st.published);
            }
            st.health = Some(CachedHealth { cas, state, view });
        }
    }

    /// Picks a member cluster of service `i` for this request or connection.
    fn steer(&self, i: usize, input: &PickInput<'_>) -> Steer {
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
                    metrics::inc_at(&m.requests, p.member);
                    if p.reason == Reason::Panic {
                        metrics::inc(m.panic);
                    }
                    if p.tier > 0 {
                        metrics::inc(m.failover);
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
                    metrics::inc(m.rejected);
                }
                Steer::Reject
            }
        }
    }

    /// A fresh affinity key for a generated cookie, from this worker's random source (seeded
    /// from the host's `random_get` at configure time, so workers and restarts differ).
    fn new_cookie_key(&self) -> String {
        match self.rng.try_borrow_mut() {
            Ok(mut rng) => cookie::new_key(&mut *rng),
            Err(_) => cookie::new_key(&mut XorShift::new(host::random_u64())),
        }
    }

    /// Reports what a response showed about the member it came from (passive health).
    fn report(&self, picked: Picked, error: bool) {
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
        let now = host::now_ms();
        let key = self.balancer.health_key(picked.service);
        match update_health(&HostStore, key, |st| {
            // Decided on the state just read: a worker that raced us re-reads and re-decides.
            let e = st.record_response(name, error, now, policy, sel.member_names());
            (e != PassiveEffect::Unchanged, e)
        }) {
            Ok(PassiveEffect::Ejected(ms)) => {
                warn!(
                    "wasmgate.balancer: {}/{name} ejected for {ms} ms",
                    sel.name()
                );
                if let Some(m) = self.metrics.get(picked.service) {
                    metrics::inc_at(&m.ejections, picked.member);
                }
            }
            Ok(PassiveEffect::Refused) => {
                warn!(
                    "wasmgate.balancer: {}/{name} not ejected: maxEjectionPercent {} reached",
                    sel.name(),
                    policy.max_ejection_percent
                );
                if let Some(m) = self.metrics.get(picked.service) {
                    metrics::inc_at(&m.ejections_overflow, picked.member);
                }
            }
            Ok(_) => {}
            Err(e) => warn!("wasmgate.balancer: cannot record health of {name}: {e:?}"),
        }
    }
}

impl HostStore {
    fn get_raw(&self, key: &str) -> (Option<Vec<u8>>, u32) {
        wasmgate_core::multicluster::SharedStore::get(self, key)
    }
}

struct BalancerRoot {
    shared: Option<Rc<Shared>>,
    tcp: bool,
    /// This worker's id for the health-check lease.
    owner: u64,
    /// In-flight health checks: token -> (service, member).
    pending: HashMap<u32, (usize, usize)>,
    tick_ms: u64,
}

impl Context for BalancerRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        _body: usize,
        _trailers: usize,
    ) {
        let Some((svc, member)) = self.pending.remove(&token) else {
            return;
        };
        // A failed call (reset, timeout, no cluster) calls back with no headers.
        let status = (num_headers > 0)
            .then(|| host::header(MapType::HttpCallResponseHeaders, ":status"))
            .flatten()
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok());
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        self.record_check(svc, member, ok);
    }
}

impl BalancerRoot {
    fn record_check(&self, svc: usize, member: usize, ok: bool) {
        let Some(shared) = &self.shared else { return };
        let Some(sel) = shared.balancer.selector(svc) else {
            return;
        };
        let (Some(policy), Some(m)) = (
            sel.health_policy().active.as_ref(),
            sel.members().get(member),
        ) else {
            return;
        };
        let now = host::now_ms();
        let key = shared.balancer.health_key(svc);
        match update_health(&HostStore, key, |st| {
            let before = *st
                .members
                .get(&m.name)
                .unwrap_or(&wasmgate_core::multicluster::MemberHealth::new(now));
            let flip = st.record_check(&m.name, ok, now, policy);
            let changed = st.members.get(&m.name) != Some(&before);
            (changed, flip)
        }) {
            Ok(Some(up)) => {
                info!(
                    "wasmgate.balancer: {}/{} is {} (active check)",
                    sel.name(),
                    m.name,
                    if up { "up" } else { "down" }
                );
                if !up {
                    if let Some(mm) = shared.metrics.get(svc) {
                        metrics::inc_at(&mm.down, member);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => warn!(
                "wasmgate.balancer: cannot record check of {}: {e:?}",
                m.name
            ),
        }
    }

    fn locality(balancer: &Balancer) -> Option<Locality> {
        if let Some(l) = balancer.configured_locality() {
            return Some(l.clone());
        }
        // Envoy 1.40 serves the node as `xds.node`; older releases as `node`.
        let node = |path: &[&str]| {
            let xds: Vec<&str> = ["xds", "node"].iter().chain(path).copied().collect();
            let plain: Vec<&str> = ["node"].iter().chain(path).copied().collect();
            host::string_property(&xds).or_else(|| host::string_property(&plain))
        };
        let region = node(&["metadata", "REGION"]).or_else(|| node(&["locality", "region"]));
        let zone = node(&["metadata", "ZONE"]).or_else(|| node(&["locality", "zone"]));
        region
            .is_some()
            .then(|| Locality::new(region.as_deref(), zone.as_deref()))
    }
}

impl RootContext for BalancerRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut balancer = match Balancer::from_json(&config) {
            Ok(b) => b,
            Err(e) => {
                // Reject the whole config: the proxy refuses the plugin rather than run half of it.
                error!("wasmgate.balancer: invalid configuration: {e}");
                return false;
            }
        };
        self.tcp = host::property(&["plugin_root_id"]).is_some_and(|id| id.ends_with(b".tcp"));
        if let Some(l) = Self::locality(&balancer) {
            balancer.set_locality(&l);
        }
        let now = host::now_ms();
        // Create or extend each service's health record: new members start their slow start,
        // and later writes are compare-and-swap on an existing key.
        for (i, sel) in balancer.selectors().iter().enumerate() {
            let key = balancer.health_key(i);
            let (_, cas) = HostStore.get_raw(key);
            let res = update_health(&HostStore, key, |st| {
                (st.reconcile(sel.member_names(), now) || cas == 0, ())
            });
            if let Err(e) = res {
                warn!(
                    "wasmgate.balancer: cannot initialise health of {}: {e:?}",
                    sel.name()
                );
            }
        }
        self.tick_ms = balancer
            .selectors()
            .iter()
            .filter_map(|s| s.health_policy().active.as_ref().map(|a| a.interval_ms))
            .min()
            .unwrap_or(0);
        // Both roots tick (a TCP-only deployment still checks); the lease keeps it to one.
        if self.tick_ms > 0 {
            if let Err(status) = hostcalls::set_tick_period(Duration::from_millis(self.tick_ms)) {
                warn!("wasmgate.balancer: cannot set tick period: {status:?}");
            }
        }
        let seed = host::random_u64();
        self.owner = seed | 1;
        let services = balancer
            .selectors()
            .iter()
            .map(|_| ServiceState {
                worker: WorkerState::new(),
                health: None,
                published: Vec::new(),
            })
            .collect();
        info!(
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
            if self.tcp { " (tcp)" } else { "" }
        );
        let metrics = metrics::define_all(&balancer);
        self.shared = Some(Rc::new(Shared {
            balancer,
            services: RefCell::new(services),
            rng: RefCell::new(XorShift::new(seed)),
            metrics,
        }));
        true
    }

    fn on_tick(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let now = host::now_ms();
        // Every worker keeps its health view (and the health gauges) current without traffic.
        if let Ok(mut states) = shared.services.try_borrow_mut() {
            for (i, st) in states.iter_mut().enumerate() {
                shared.refresh(i, st, Some(now));
            }
        }
        // One worker checks; the others read its verdicts from shared data.
        if !acquire_lease(
            &HostStore,
            &shared.balancer.lease_key(),
            self.owner,
            now,
            self.tick_ms.saturating_mul(3),
        ) {
            return;
        }
        let mut failed = Vec::new();
        for (si, sel) in shared.balancer.selectors().iter().enumerate() {
            let Some(a) = sel.health_policy().active.as_ref() else {
                continue;
            };
            let authority = a.host.as_deref().unwrap_or(sel.name());
            for (mi, m) in sel.members().iter().enumerate() {
                if self.pending.values().any(|&p| p == (si, mi)) {
                    continue;
                }
                let headers = vec![
                    (":method", "GET"),
                    (":path", a.path.as_str()),
                    (":authority", authority),
                ];
                match hostcalls::dispatch_http_call(
                    &m.cluster,
                    headers,
                    None,
                    vec![],
                    Duration::from_millis(a.timeout_ms),
                ) {
                    Ok(token) => {
                        self.pending.insert(token, (si, mi));
                    }
                    Err(status) => {
                        warn!("wasmgate.balancer: cannot check {}: {status:?}", m.cluster);
                        failed.push((si, mi));
                    }
                }
            }
        }
        for (si, mi) in failed {
            self.record_check(si, mi, false);
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(if self.tcp {
            ContextType::StreamContext
        } else {
            ContextType::HttpContext
        })
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(BalancerHttp {
            shared: self.shared.clone(),
            picked: None,
            responded: false,
            set_cookie: None,
        }))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(BalancerTcp {
            shared: self.shared.clone(),
        }))
    }
}

/// The response header carrying Envoy's upstream attempt count.
const ATTEMPT_COUNT: &str = "x-envoy-attempt-count";

struct BalancerHttp {
    shared: Option<Rc<Shared>>,
    picked: Option<Picked>,
    responded: bool,
    /// A generated affinity cookie to hand to the client with the response.
    set_cookie: Option<String>,
}

impl Context for BalancerHttp {}

impl HttpContext for BalancerHttp {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let b = &shared.balancer;
        let cluster_header = b.cluster_header();
        let service = match b.service_from() {
            // Composed after the router: the router wrote the service name into its header.
            ServiceFrom::Router(h) | ServiceFrom::Header(h) => {
                host::header(MapType::HttpRequestHeaders, h)
            }
            ServiceFrom::Host => host::header(MapType::HttpRequestHeaders, ":authority"),
        }
        .and_then(|v| b.service(&v));
        // After the router, the cluster header is the router's (it already removed any client
        // value); alone, a client value is removed unless a pick overwrites it.
        let router_owns_cluster_header = match b.service_from() {
            ServiceFrom::Router(_) => true,
            ServiceFrom::Header(h) => h == cluster_header,
            ServiceFrom::Host => false,
        };
        let strip = || {
            if !router_owns_cluster_header {
                host::set_header(cluster_header, None);
            }
        };
        let Some((i, sel)) = service.and_then(|i| Some((i, b.selector(i)?))) else {
            strip();
            return Action::Continue;
        };
        let values: Vec<(&str, Vec<u8>)> = sel
            .needed_headers()
            .iter()
            .filter_map(|n| host::header(MapType::HttpRequestHeaders, n).map(|v| (n.as_str(), v)))
            .collect();
        let headers: Vec<(&str, &[u8])> = values.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let source = if sel.needs_source_address() {
            host::property(&["source", "address"])
        } else {
            None
        };
        // A request without the service's generated affinity cookie is placed by a fresh key,
        // which its response hands over: the next requests carry it and land here again.
        let issue = sel.cookie_to_issue(&headers);
        let key = issue.map(|_| shared.new_cookie_key());
        let input = PickInput {
            headers: &headers,
            source_address: source.as_deref(),
            affinity_key: key.as_deref().map(str::as_bytes),
        };
        match shared.steer(i, &input) {
            Steer::To(cluster, picked, why) => {
                host::set_header(cluster_header, Some(&cluster));
                host::set_filter_state(observe::MEMBER_STATE, &why);
                self.picked = Some(picked);
                self.set_cookie = issue.zip(key.as_deref()).map(|(c, k)| c.set_cookie(k));
                Action::Continue
            }
            Steer::Reject => {
                strip();
                let body = b"no healthy member cluster\n";
                if let Err(status) = hostcalls::send_http_response(
                    503,
                    vec![("x-wasmgate-reason", "no-healthy-cluster")],
                    Some(body),
                ) {
                    warn!("wasmgate.balancer: cannot send local reply: {status:?}");
                }
                Action::Pause
            }
            Steer::NotOurs => {
                strip();
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.responded = true;
        if let Some(v) = self.set_cookie.take() {
            host::add_response_header("set-cookie", &v);
        }
        // Envoy's count of upstream attempts (the generated route asks for it with
        // `include_attempt_count_in_response`); an Envoy detail the client need not see. Read
        // only when this stream's pick is reported; removed unread otherwise (one host call).
        let report = self.shared.as_ref().zip(self.picked.filter(|p| p.passive));
        let attempts = report.and_then(|_| {
            host::header(MapType::HttpResponseHeaders, ATTEMPT_COUNT)
                .and_then(|s| std::str::from_utf8(&s).ok()?.trim().parse::<u32>().ok())
        });
        host::remove_response_header(ATTEMPT_COUNT);
        if let Some((shared, picked)) = report {
            let status = host::header(MapType::HttpResponseHeaders, ":status")
                .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok());
            // Envoy answers 503 itself when it cannot connect: that counts as a reset. A
            // response after a retry came from another member (the failover cluster moves a
            // retry on): the first attempt, on the picked member, failed.
            let retried = attempts.is_some_and(|a| a > 1);
            shared.report(picked, retried || status.is_none_or(|s| s >= 500));
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        // A stream that ended without response headers was reset upstream.
        if let (false, Some(shared), Some(picked)) = (
            self.responded,
            &self.shared,
            self.picked.filter(|p| p.passive),
        ) {
            shared.report(picked, true);
        }
    }
}

struct BalancerTcp {
    shared: Option<Rc<Shared>>,
}

impl Context for BalancerTcp {}

impl StreamContext for BalancerTcp {
    fn on_new_connection(&mut self) -> Action {
        let Some(shared) = &self.shared else {
            return Action::Continue;
        };
        let port = host::int_property(&["destination", "port"]).and_then(|p| u16::try_from(p).ok());
        let Some(i) = port.and_then(|p| shared.balancer.tcp_service(p)) else {
            // Not a multi-cluster port: tcp_proxy's own cluster applies.
            return Action::Continue;
        };
        let needs_source = shared
            .balancer
            .selector(i)
            .is_some_and(|s| s.needs_source_address());
        let source = if needs_source {
            host::property(&["source", "address"])
        } else {
            None
        };
        let input = PickInput {
            headers: &[],
            source_address: source.as_deref(),
            affinity_key: None,
        };
        match shared.steer(i, &input) {
            Steer::To(_, picked, _) => {
                // A connection goes to the member's own cluster: tcp_proxy does not retry
                // into an aggregate cluster's next member the way the HTTP router does.
                let cluster = shared
                    .balancer
                    .selector(picked.service)
                    .and_then(|s| s.members().get(picked.member))
                    .map_or("", |m| m.cluster.as_str());
                let args = set_filter_state_args(TCP_PROXY_CLUSTER, cluster);
                if let Err(status) =
                    hostcalls::call_foreign_function("set_envoy_filter_state", Some(&args))
                {
                    warn!("wasmgate.balancer: set_envoy_filter_state failed: {status:?}");
                }
            }
            Steer::Reject | Steer::NotOurs => {
                warn!("wasmgate.balancer: no healthy member for tcp port {port:?}; closing");
                if let Err(status) = hostcalls::close_downstream() {
                    warn!("wasmgate.balancer: close failed: {status:?}");
                }
            }
        }
        Action::Continue
    }
}
