//! HTTP streams through a chain of Wasm filters, then Envoy's router and a scripted upstream,
//! then back through the filters' response callbacks.
//!
//! The engine follows Envoy's filter manager: a filter that pauses on headers stops all
//! iteration (later body chunks wait at that filter), a paused body is buffered and shown
//! whole on the next call, `proxy_continue_stream` resumes, a local reply ends decoding and
//! runs through every filter's response callbacks. Time is virtual: while the stream waits,
//! the clock jumps to the next callout response or tick.

use std::collections::VecDeque;
use std::time::Duration;

use crate::headers::HeaderMap;
use crate::plugin::{HostSim, Plugin};
use crate::properties::{PropValue, PropertyOverrides};
use crate::routes::{Decision, Routes};
use crate::state::{Access, HostAction, LocalReply, Stream};
use crate::types::Level;
use crate::upstreams::{Callout, UpstreamReply, UpstreamRequest};
use crate::vm::{CallOutcome, Callback};

/// Envoy's default `stream_idle_timeout`.
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// A downstream request.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// Request headers including the pseudo-headers.
    pub headers: HeaderMap,
    /// Body chunks, delivered one `proxy_on_request_body` call at a time.
    pub body: Vec<Vec<u8>>,
    pub trailers: Option<HeaderMap>,
    /// `source.address` (`ip:port`).
    pub source_address: String,
    /// `destination.address` (`ip:port`).
    pub destination_address: String,
    /// Property values this request answers (`source.address`, `node.metadata.X`...).
    pub properties: PropertyOverrides,
    /// Add what Envoy's connection manager adds before the filters run
    /// (`x-request-id`, `x-forwarded-proto`).
    pub envoy_headers: bool,
    /// Headers filters before the Wasm ones add (filters host-sim leaves out): after the
    /// connection manager's own.
    pub added_by_filters: Vec<(String, Vec<u8>)>,
}

impl HttpRequest {
    pub fn new(method: &str, authority: &str, path: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.add(":authority", authority);
        headers.add(":path", path);
        headers.add(":method", method);
        headers.add(":scheme", "http");
        HttpRequest {
            headers,
            body: Vec::new(),
            trailers: None,
            source_address: "127.0.0.1:50000".into(),
            destination_address: "127.0.0.1:10000".into(),
            properties: PropertyOverrides::default(),
            envoy_headers: true,
            added_by_filters: Vec::new(),
        }
    }

    pub fn get(authority: &str, path: &str) -> Self {
        Self::new("GET", authority, path)
    }

    pub fn post(authority: &str, path: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", authority, path).body(body)
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.add(name, value);
        self
    }

    /// Replaces the body with one chunk.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        self.body = if body.is_empty() {
            Vec::new()
        } else {
            vec![body]
        };
        self
    }

    /// Appends a body chunk.
    pub fn chunk(mut self, chunk: impl Into<Vec<u8>>) -> Self {
        self.body.push(chunk.into());
        self
    }

    pub fn trailer(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.trailers
            .get_or_insert_with(HeaderMap::new)
            .add(name, value);
        self
    }

    pub fn source(mut self, address: &str) -> Self {
        self.source_address = address.to_string();
        self
    }

    pub fn property(mut self, path: &[&str], value: PropValue) -> Self {
        self.properties.set(path, value);
        self
    }

    /// A header an earlier (left-out) filter adds, after Envoy's own.
    pub fn added_by_filter(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.added_by_filters
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    pub fn without_envoy_headers(mut self) -> Self {
        self.envoy_headers = false;
        self
    }
}

/// The final state of one HTTP stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpOutcome {
    /// Status the client sees; 0 when the stream was reset.
    pub status: u16,
    pub reset: bool,
    /// Envoy's response code details (`via_upstream`, `route_not_found`, `wasm_fail_stream`...).
    pub details: String,
    /// The upstream cluster the router sent the request to.
    pub cluster: Option<String>,
    /// Set when a filter called `proxy_send_local_response`.
    pub local_reply: Option<LocalReply>,
    /// Request headers as forwarded upstream.
    pub upstream_request: Option<Vec<(String, Vec<u8>)>>,
    pub upstream_request_body: Vec<u8>,
    /// Request trailers as forwarded upstream (empty when there were none).
    pub upstream_request_trailers: Vec<(String, Vec<u8>)>,
    pub response_headers: Vec<(String, Vec<u8>)>,
    pub response_body: Vec<u8>,
    pub response_trailers: Vec<(String, Vec<u8>)>,
    pub logs: Vec<(Level, String)>,
    /// proxy_* host calls the guests made for this stream.
    pub host_calls: u64,
    /// Filter state set through `set_envoy_filter_state`.
    pub filter_state: Vec<(String, Vec<u8>)>,
    /// Traps (and calls into already-failed VMs) during this stream.
    pub vm_failures: Vec<String>,
    /// `http_call`s and gRPC calls the guests started during this stream, in order.
    pub callouts: Vec<Callout>,
}

impl HttpOutcome {
    pub fn response_header(&self, name: &str) -> Option<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.response_headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of a response header, in order.
    pub fn response_header_values(&self, name: &str) -> Vec<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.response_headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    /// Every value of a header forwarded upstream, in order.
    pub fn upstream_header_values(&self, name: &str) -> Vec<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.upstream_request
            .iter()
            .flatten()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    pub fn upstream_header(&self, name: &str) -> Option<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.upstream_request
            .as_ref()?
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Whether some log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.logs.iter().any(|(_, m)| m.contains(needle))
    }
}

#[derive(Clone, Debug)]
enum Ev {
    Headers { end: bool },
    Data { chunk: Vec<u8>, end: bool },
    Trailers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Decode,
    Encode,
}

/// One direction of one filter, as Envoy's filter manager tracks it.
#[derive(Default)]
struct DirState {
    stopped_all: bool,
    headers_held: bool,
    headers_end: bool,
    queue: VecDeque<Ev>,
    buffering: bool,
    buffered: Vec<u8>,
    buffered_end: bool,
    trailers_held: bool,
}

struct Slot<'p> {
    plugin: &'p Plugin,
    worker: usize,
    ctx: u32,
    /// Context created: the filter takes part in the stream.
    active: bool,
    /// The VM failed during this stream and the filter failed it closed.
    failed: bool,
    /// The VM had failed before the stream: the filter fails it when headers reach it.
    doomed: Option<String>,
    access: Access,
    dec: DirState,
    enc: DirState,
}

enum Flow {
    Continue,
    Stop,
}

struct Session<'p> {
    sim: HostSim,
    slots: Vec<Slot<'p>>,
    routes: &'p Routes,
    stream: Box<Stream>,
    out: HttpOutcome,
    decision: Option<Decision>,
    decode_done: bool,
    router_headers: bool,
    dispatched: bool,
    upstream_due: Option<(u64, UpstreamReply)>,
    timeout_due: Option<u64>,
    pending_local: Option<(LocalReply, bool)>,
    pending_resumes: VecDeque<(usize, Dir)>,
    local_replies: u8,
    enc_gen: u32,
    client_headers: Option<HeaderMap>,
    client_end: bool,
    deadline: u64,
    /// Request body chunks not yet sent into the filters.
    request_body: Vec<Vec<u8>>,
    /// A HEAD request: Envoy sends the response headers only (local replies too).
    head: bool,
    /// The response reached the client as headers only.
    ended_with_headers: bool,
    /// Host calls made by callbacks run for this stream.
    calls: u64,
}

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

impl<'p> Session<'p> {
    fn new(sim: HostSim, chain: &[&'p Plugin], routes: &'p Routes, req: HttpRequest) -> Self {
        let now = sim.shared().now();
        let id = sim.shared().next_vm_uid();
        let mut headers = req.headers;
        let head = headers.get(":method") == Some(b"HEAD".as_slice());
        if req.envoy_headers {
            if headers.get("x-forwarded-proto").is_none() {
                headers.add("x-forwarded-proto", "http");
            }
            if headers.get("x-request-id").is_none() {
                headers.add("x-request-id", format!("00000000-0000-4000-8000-{id:012x}"));
            }
        }
        for (k, v) in &req.added_by_filters {
            headers.add(k, v);
        }
        let stream = Box::new(Stream {
            request_headers: headers,
            request_trailers: req.trailers.unwrap_or_default(),
            overrides: req.properties,
            source_address: req.source_address,
            destination_address: req.destination_address,
            connection_id: id,
            start_nanos: now,
            request_size: req.body.iter().map(|c| c.len() as u64).sum(),
            ..Stream::default()
        });
        let slots = chain
            .iter()
            .map(|p| Slot {
                plugin: p,
                worker: p.pick_worker(),
                ctx: 0,
                active: false,
                failed: false,
                doomed: None,
                access: Access::default(),
                dec: DirState::default(),
                enc: DirState::default(),
            })
            .collect();
        Session {
            sim,
            slots,
            routes,
            stream,
            out: HttpOutcome::default(),
            decision: None,
            decode_done: false,
            router_headers: false,
            dispatched: false,
            upstream_due: None,
            timeout_due: None,
            pending_local: None,
            pending_resumes: VecDeque::new(),
            local_replies: 0,
            enc_gen: 0,
            client_headers: None,
            client_end: false,
            deadline: now + STREAM_IDLE_TIMEOUT.as_nanos() as u64,
            request_body: req.body,
            head,
            ended_with_headers: false,
            calls: 0,
        }
    }

    fn now(&self) -> u64 {
        self.sim.shared().now()
    }

    /// Starts the stream: creates the filters' contexts and sends the request in as far as
    /// the filters let it go without time passing.
    fn start(&mut self) {
        // The connection manager resolves the route before any filter runs; `xds.*`
        // properties describe that (possibly stale) route.
        let d = self.routes.resolve(&self.stream.request_headers);
        self.stream.route = d.info();
        self.stream.virtual_host = d.virtual_host();
        self.decision = Some(d);
        for i in 0..self.slots.len() {
            self.create_context(i);
        }
        let has_trailers = !self.stream.request_trailers.is_empty();
        let chunks = std::mem::take(&mut self.request_body);
        let mut events = vec![Ev::Headers {
            end: chunks.is_empty() && !has_trailers,
        }];
        let n = chunks.len();
        for (k, chunk) in chunks.into_iter().enumerate() {
            events.push(Ev::Data {
                chunk,
                end: k + 1 == n && !has_trailers,
            });
        }
        if has_trailers {
            events.push(Ev::Trailers);
        }
        for ev in events {
            self.decode(0, ev);
            self.settle();
        }
    }

    /// Whether the client got its whole answer (or the stream was reset).
    fn done(&self) -> bool {
        self.out.reset || self.client_end
    }

    fn create_context(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        let mut vm = slot.plugin.vm(slot.worker);
        let before = vm.host_calls();
        let r = match &vm.failed {
            Some(m) => Err(m.clone()),
            None => vm.create_stream_context(),
        };
        self.calls += vm.host_calls().saturating_sub(before);
        self.out.logs.extend(vm.take_logs());
        drop(vm);
        match r {
            Ok(ctx) => {
                slot.ctx = ctx;
                slot.active = true;
            }
            Err(msg) if slot.plugin.fail_open() => self.out.vm_failures.push(msg),
            Err(msg) => slot.doomed = Some(msg),
        }
    }

    /// Envoy's `CHECK_FAIL_HTTP`: a failed VM lets the stream through when `fail_open`,
    /// otherwise fails it with a 503.
    fn vm_failed(&mut self, i: usize, msg: String) {
        self.out.vm_failures.push(msg);
        let slot = &mut self.slots[i];
        if slot.plugin.fail_open() {
            slot.active = false;
        } else if !slot.failed {
            slot.failed = true;
            self.request_local_reply(
                LocalReply {
                    status: 503,
                    headers: Vec::new(),
                    body: Vec::new(),
                    details: "wasm_fail_stream".into(),
                    grpc_status: 14,
                },
                false,
            );
        }
    }

    /// Applies deferred local replies and resumptions until nothing is left to do now.
    fn settle(&mut self) {
        loop {
            if let Some((lr, from_filter)) = self.pending_local.take() {
                self.apply_local_reply(lr, from_filter);
                continue;
            }
            if let Some((i, dir)) = self.pending_resumes.pop_front() {
                self.resume(i, dir);
                continue;
            }
            if let Some((due, _)) = &self.upstream_due {
                if *due <= self.now() {
                    if let Some((_, reply)) = self.upstream_due.take() {
                        self.upstream_response(reply);
                    }
                    continue;
                }
            }
            if self.timeout_due.is_some_and(|t| t <= self.now()) {
                self.timeout_due = None;
                self.upstream_due = None;
                self.request_local_reply(
                    envoy_reply(504, "upstream request timeout", "upstream_response_timeout"),
                    false,
                );
                continue;
            }
            return;
        }
    }

    /// The stream reached its idle timeout with nothing left to happen before it.
    fn expire(&mut self) {
        if self.client_headers.is_none() {
            self.request_local_reply(
                envoy_reply(408, "stream timeout", "stream_idle_timeout"),
                false,
            );
            self.deadline = u64::MAX;
        } else {
            self.out.reset = true;
        }
    }

    fn call(&mut self, i: usize, cb: Callback, dir: Dir) -> Flow {
        if !self.slots[i].active || self.slots[i].failed {
            return Flow::Continue;
        }
        let out = {
            let slot = &mut self.slots[i];
            let mut vm = slot.plugin.vm(slot.worker);
            let before = vm.host_calls();
            let out = vm.call(slot.ctx, cb, &mut self.stream, &mut slot.access);
            self.calls += vm.host_calls().saturating_sub(before);
            out
        };
        self.absorb(Some(i), Some(dir), out)
    }

    /// Applies a callback's logs, failures and deferred actions. `dir` is the direction of
    /// the callback in progress, whose own resumption just turns into `Continue`.
    fn absorb(&mut self, slot: Option<usize>, dir: Option<Dir>, out: CallOutcome) -> Flow {
        self.out.logs.extend(out.logs);
        self.out.callouts.extend(out.callouts);
        let mut stop = false;
        let mut resume_self = false;
        for (ctx, action) in out.actions {
            let target = slot.filter(|i| self.slots[*i].ctx == ctx).or_else(|| {
                let owner = slot.map(|i| self.slots[i].plugin as *const Plugin);
                self.slots
                    .iter()
                    .position(|s| Some(s.plugin as *const Plugin) == owner && s.ctx == ctx)
            });
            let Some(t) = target else {
                continue;
            };
            match action {
                HostAction::LocalReply(lr) => {
                    if Some(t) == slot {
                        stop = true;
                    }
                    self.request_local_reply(lr, true);
                }
                HostAction::Continue(kind @ (0 | 1)) => {
                    let d = if kind == 0 { Dir::Decode } else { Dir::Encode };
                    // Envoy drops the filter's request map and body pointers on continue.
                    let a = &mut self.slots[t].access;
                    a.request_headers = false;
                    a.request_trailers = false;
                    if a.body == Some(0) {
                        a.body = None;
                    }
                    if Some(t) == slot && Some(d) == dir {
                        resume_self = true;
                    } else {
                        self.pending_resumes.push_back((t, d));
                    }
                }
                HostAction::Close(0 | 1) => {
                    self.out.reset = true;
                    self.decode_done = true;
                    stop = true;
                }
                HostAction::Continue(_) | HostAction::Close(_) => {}
            }
        }
        match out.result {
            Err(msg) => {
                if let Some(i) = slot {
                    self.vm_failed(i, msg);
                    if self.slots[i].failed {
                        return Flow::Stop;
                    }
                }
                Flow::Continue
            }
            Ok(v) if stop || (v != 0 && !resume_self) => Flow::Stop,
            Ok(_) => Flow::Continue,
        }
    }

    fn request_local_reply(&mut self, lr: LocalReply, from_filter: bool) {
        if self.pending_local.is_none() {
            self.pending_local = Some((lr, from_filter));
        }
        // Nothing more reaches the filters or the router once a reply is on its way.
        self.decode_done = true;
    }

    fn apply_local_reply(&mut self, lr: LocalReply, from_filter: bool) {
        if self.out.reset {
            return;
        }
        if self.client_headers.is_some() || self.local_replies >= 2 {
            // The response already started: Envoy can only reset the stream.
            self.out.reset = true;
            return;
        }
        self.local_replies += 1;
        if from_filter && self.out.local_reply.is_none() {
            self.out.local_reply = Some(lr.clone());
        }
        self.upstream_due = None;
        self.timeout_due = None;
        self.enc_gen += 1;
        for s in &mut self.slots {
            s.enc = DirState::default();
            s.access.response_headers = false;
            s.access.response_trailers = false;
        }
        // Envoy builds the map from the status, then the filter's headers, then, with a
        // body, its length and (unless the filter gave one) its type; without a body it
        // removes both.
        let mut h = HeaderMap::new();
        h.add(":status", lr.status.to_string());
        for (k, v) in &lr.headers {
            h.add(k, v);
        }
        if lr.body.is_empty() {
            h.remove("content-length");
            h.remove("content-type");
        } else {
            h.replace("content-length", lr.body.len().to_string());
            if h.get("content-type").is_none() {
                h.add("content-type", "text/plain");
            }
        }
        self.stream.response_headers = h;
        self.stream.response_trailers = HeaderMap::new();
        self.stream.response_code = Some(lr.status);
        self.stream.response_details = lr.details.clone();
        self.out.details = lr.details;
        // A HEAD request gets the headers (with the body's length) and no body.
        let body = if self.head { Vec::new() } else { lr.body };
        self.start_encode(body, false);
    }

    fn start_encode(&mut self, body: Vec<u8>, trailers: bool) {
        let chunks = if body.is_empty() {
            Vec::new()
        } else {
            vec![body]
        };
        self.start_encode_chunks(chunks, trailers);
    }

    fn start_encode_chunks(&mut self, chunks: Vec<Vec<u8>>, trailers: bool) {
        let end_with_headers = chunks.is_empty() && !trailers;
        self.encode(
            0,
            Ev::Headers {
                end: end_with_headers,
            },
        );
        let n = chunks.len();
        for (k, chunk) in chunks.into_iter().enumerate() {
            self.encode(
                0,
                Ev::Data {
                    chunk,
                    end: k + 1 == n && !trailers,
                },
            );
        }
        if trailers {
            self.encode(0, Ev::Trailers);
        }
    }

    fn decode(&mut self, mut i: usize, mut ev: Ev) {
        while i < self.slots.len() {
            if self.decode_done {
                return;
            }
            if let Some(msg) = self.slots[i].doomed.take() {
                self.vm_failed(i, msg);
                return;
            }
            if !self.slots[i].active || self.slots[i].failed {
                i += 1;
                continue;
            }
            match self.step(i, Dir::Decode, ev) {
                Some(next) => ev = next,
                None => return,
            }
            i += 1;
        }
        if !self.decode_done {
            self.router(ev);
        }
    }

    fn encode(&mut self, mut p: usize, mut ev: Ev) {
        let generation = self.enc_gen;
        let n = self.slots.len();
        while p < n {
            if self.out.reset || generation != self.enc_gen {
                return;
            }
            let i = n - 1 - p;
            if !self.slots[i].active || self.slots[i].failed {
                p += 1;
                continue;
            }
            match self.step(i, Dir::Encode, ev) {
                Some(next) => ev = next,
                None => return,
            }
            p += 1;
        }
        if generation == self.enc_gen && !self.out.reset {
            self.deliver_to_client(ev);
        }
    }

    /// Runs one event through filter `i`; `Some(event)` to pass on, `None` when it stopped.
    fn step(&mut self, i: usize, dir: Dir, ev: Ev) -> Option<Ev> {
        let state = self.dir_state(i, dir);
        if state.stopped_all {
            state.queue.push_back(ev);
            return None;
        }
        match ev {
            Ev::Headers { end } => {
                let headers = if dir == Dir::Decode {
                    self.slots[i].access.request_headers = true;
                    self.stream.request_headers.len()
                } else {
                    self.slots[i].access.response_headers = true;
                    self.stream.response_headers.len()
                } as u32;
                let cb = match dir {
                    Dir::Decode => Callback::RequestHeaders { headers, end },
                    Dir::Encode => Callback::ResponseHeaders { headers, end },
                };
                match self.call(i, cb, dir) {
                    Flow::Continue => {
                        let a = &mut self.slots[i].access;
                        match dir {
                            Dir::Decode => a.request_headers = false,
                            Dir::Encode => a.response_headers = false,
                        }
                        Some(Ev::Headers { end })
                    }
                    Flow::Stop => {
                        let st = self.dir_state(i, dir);
                        st.stopped_all = true;
                        st.headers_held = true;
                        st.headers_end = end;
                        None
                    }
                }
            }
            Ev::Data { chunk, end } => {
                let st = self.dir_state(i, dir);
                let mut body = std::mem::take(&mut st.buffered);
                body.extend_from_slice(&chunk);
                let size = body.len() as u32;
                self.stream.body = body;
                let kind = if dir == Dir::Decode { 0 } else { 1 };
                self.slots[i].access.body = Some(kind);
                let cb = match dir {
                    Dir::Decode => Callback::RequestBody { size, end },
                    Dir::Encode => Callback::ResponseBody { size, end },
                };
                let flow = self.call(i, cb, dir);
                let body = std::mem::take(&mut self.stream.body);
                self.slots[i].access.body = None;
                let st = self.dir_state(i, dir);
                match flow {
                    Flow::Continue => {
                        st.buffering = false;
                        Some(Ev::Data { chunk: body, end })
                    }
                    Flow::Stop => {
                        st.buffering = true;
                        st.buffered = body;
                        st.buffered_end = end;
                        None
                    }
                }
            }
            Ev::Trailers => {
                // A filter that buffers the body sees (and may edit) it whole at the
                // trailers, as Envoy hands out its decoding / encoding buffer.
                let buffering = self.dir_state(i, dir).buffering;
                if buffering {
                    self.stream.body = std::mem::take(&mut self.dir_state(i, dir).buffered);
                    self.slots[i].access.body = Some(if dir == Dir::Decode { 0 } else { 1 });
                }
                let trailers = if dir == Dir::Decode {
                    self.slots[i].access.request_trailers = true;
                    self.stream.request_trailers.len()
                } else {
                    self.slots[i].access.response_trailers = true;
                    self.stream.response_trailers.len()
                } as u32;
                let cb = match dir {
                    Dir::Decode => Callback::RequestTrailers { trailers },
                    Dir::Encode => Callback::ResponseTrailers { trailers },
                };
                let flow = self.call(i, cb, dir);
                if buffering {
                    self.slots[i].access.body = None;
                    self.dir_state(i, dir).buffered = std::mem::take(&mut self.stream.body);
                }
                let a = &mut self.slots[i].access;
                match dir {
                    Dir::Decode => a.request_trailers = false,
                    Dir::Encode => a.response_trailers = false,
                }
                match flow {
                    Flow::Continue => {
                        self.flush_buffered(i, dir);
                        Some(Ev::Trailers)
                    }
                    Flow::Stop => {
                        self.dir_state(i, dir).trailers_held = true;
                        None
                    }
                }
            }
        }
    }

    /// A buffering filter that lets trailers through releases its buffered body first.
    fn flush_buffered(&mut self, i: usize, dir: Dir) {
        let st = self.dir_state(i, dir);
        if st.buffering {
            st.buffering = false;
            let chunk = std::mem::take(&mut st.buffered);
            self.pipe(dir, i, true, Ev::Data { chunk, end: false });
        }
    }

    fn dir_state(&mut self, i: usize, dir: Dir) -> &mut DirState {
        match dir {
            Dir::Decode => &mut self.slots[i].dec,
            Dir::Encode => &mut self.slots[i].enc,
        }
    }

    /// Sends `ev` into the pipeline at filter `i` (`after`: at the filter after `i`).
    fn pipe(&mut self, dir: Dir, i: usize, after: bool, ev: Ev) {
        let n = self.slots.len();
        match dir {
            Dir::Decode => self.decode(i + usize::from(after), ev),
            Dir::Encode => self.encode(n - 1 - i + usize::from(after), ev),
        }
    }

    fn resume(&mut self, i: usize, dir: Dir) {
        if (dir == Dir::Decode && self.decode_done) || self.out.reset {
            return;
        }
        let st = self.dir_state(i, dir);
        if st.stopped_all {
            st.stopped_all = false;
            let held = std::mem::take(&mut st.headers_held);
            let end = st.headers_end;
            let queued = std::mem::take(&mut st.queue);
            if held {
                self.pipe(dir, i, true, Ev::Headers { end });
            }
            for ev in queued {
                self.pipe(dir, i, false, ev);
            }
        } else if st.buffering {
            st.buffering = false;
            let chunk = std::mem::take(&mut st.buffered);
            let end = st.buffered_end;
            self.pipe(dir, i, true, Ev::Data { chunk, end });
        } else if st.trailers_held {
            st.trailers_held = false;
            self.pipe(dir, i, true, Ev::Trailers);
        }
    }

    fn router(&mut self, ev: Ev) {
        let end = match ev {
            Ev::Headers { end } => {
                self.router_headers = true;
                self.route_request();
                end
            }
            Ev::Data { chunk, end } => {
                self.out.upstream_request_body.extend_from_slice(&chunk);
                end
            }
            Ev::Trailers => {
                self.out.upstream_request_trailers = self.stream.request_trailers.to_vec();
                true
            }
        };
        if end && !self.decode_done && self.out.cluster.is_some() && !self.dispatched {
            self.dispatch();
        }
    }

    /// Envoy's router: re-resolve the route if a filter cleared it, then pick the cluster.
    fn route_request(&mut self) {
        if self.stream.route_cleared || self.decision.is_none() {
            let d = self.routes.resolve(&self.stream.request_headers);
            self.stream.route = d.info();
            self.stream.virtual_host = d.virtual_host();
            self.stream.route_cleared = false;
            self.decision = Some(d);
        }
        let reply = match self.decision.clone() {
            None | Some(Decision::NoRoute { .. }) => envoy_reply(404, "", "route_not_found"),
            Some(Decision::Direct { status, body, .. }) => LocalReply {
                status,
                headers: Vec::new(),
                body,
                details: "direct_response".into(),
                grpc_status: -1,
            },
            Some(Decision::NoCluster { .. }) => envoy_reply(
                self.routes.cluster_not_found_status,
                "",
                "cluster_not_found",
            ),
            Some(Decision::Cluster {
                cluster,
                timeout,
                remove_headers,
                ..
            }) => {
                if self.sim.upstreams().exists(&cluster) {
                    self.stream.upstream_address = Some(self.sim.upstreams().address(&cluster));
                    self.out.cluster = Some(cluster);
                    self.timeout_due = Some(self.now() + timeout.as_nanos() as u64);
                    let mut headers = self.stream.request_headers.clone();
                    for name in &remove_headers {
                        headers.remove(name);
                    }
                    headers.replace(
                        "x-envoy-expected-rq-timeout-ms",
                        timeout.as_millis().to_string(),
                    );
                    self.out.upstream_request = Some(headers.to_vec());
                    return;
                }
                envoy_reply(
                    self.routes.cluster_not_found_status,
                    "",
                    "cluster_not_found",
                )
            }
        };
        self.request_local_reply(reply, false);
    }

    fn dispatch(&mut self) {
        self.dispatched = true;
        let Some(cluster) = self.out.cluster.clone() else {
            return;
        };
        let req = UpstreamRequest {
            cluster,
            headers: HeaderMap::from_pairs(self.out.upstream_request.clone().unwrap_or_default()),
            body: self.out.upstream_request_body.clone(),
            from_http_call: false,
        };
        let reply = self.sim.upstreams().reply(&req);
        let due = self.now() + reply.delay.as_nanos() as u64;
        if self.timeout_due.is_some_and(|t| due > t) {
            return; // the route timeout fires first
        }
        self.upstream_due = Some((due, reply));
    }

    fn upstream_response(&mut self, reply: UpstreamReply) {
        self.timeout_due = None;
        if reply.reset {
            let body = "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
            self.request_local_reply(
                envoy_reply(
                    503,
                    body,
                    "upstream_reset_before_response_started{connection_termination}",
                ),
                false,
            );
            return;
        }
        self.stream.response_headers = reply.header_map();
        self.stream.response_trailers =
            HeaderMap::from_pairs(reply.trailers.iter().map(|(k, v)| (k.as_bytes(), v)));
        self.stream.response_code = Some(reply.status);
        self.stream.response_details = "via_upstream".into();
        self.out.details = "via_upstream".into();
        if self.head {
            // Envoy's codec reads no body after the headers of a reply to HEAD.
            self.start_encode_chunks(Vec::new(), false);
            return;
        }
        let trailers = !reply.trailers.is_empty();
        self.start_encode_chunks(reply.chunks(), trailers);
    }

    fn deliver_to_client(&mut self, ev: Ev) {
        match ev {
            Ev::Headers { end } => {
                self.client_headers = Some(self.stream.response_headers.clone());
                self.client_end |= end;
                self.ended_with_headers = end;
            }
            Ev::Data { chunk, end } => {
                self.out.response_body.extend_from_slice(&chunk);
                self.client_end |= end;
            }
            Ev::Trailers => {
                self.out.response_trailers = self.stream.response_trailers.to_vec();
                self.client_end = true;
            }
        }
    }

    fn finish(mut self) -> HttpOutcome {
        // Access log, then filter destruction, like Envoy's connection manager. The request
        // is complete now (`request.duration`).
        self.stream.end_nanos = Some(self.now());
        for cb in [Callback::Log, Callback::Done, Callback::Delete] {
            for i in 0..self.slots.len() {
                if self.slots[i].ctx == 0 {
                    continue;
                }
                let slot = &mut self.slots[i];
                let mut vm = slot.plugin.vm(slot.worker);
                if vm.failed.is_some() {
                    continue;
                }
                // The maps the filter still holds (a request map it never let go on, as
                // after a local reply from its request headers) stay writable.
                let mut access = Access {
                    log_phase: matches!(cb, Callback::Log),
                    body: None,
                    ..slot.access
                };
                let before = vm.host_calls();
                let out = vm.call(slot.ctx, cb, &mut self.stream, &mut access);
                self.calls += vm.host_calls().saturating_sub(before);
                drop(vm);
                self.out.logs.extend(out.logs);
                self.out.callouts.extend(out.callouts);
                if let Err(m) = out.result {
                    self.out.vm_failures.push(m);
                }
            }
        }
        let mut out = self.out;
        out.host_calls = self.calls;
        if let Some(h) = self.client_headers.filter(|_| !out.reset) {
            out.status = h
                .get_str(":status")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            out.response_headers = h.to_vec();
            if self.ended_with_headers && !self.head && codec_adds_zero_length(out.status, &h) {
                // Envoy's HTTP/1.1 codec frames a response that ends with its headers.
                out.response_headers
                    .push(("content-length".into(), b"0".to_vec()));
            }
        } else {
            out.status = 0;
            out.reset = true;
        }
        out.filter_state = self
            .stream
            .filter_state
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out
    }
}

/// Whether a response that ends with its headers gets `content-length: 0` on the wire:
/// not for 1xx, 204 and 304, nor when it already says how it is framed.
fn codec_adds_zero_length(status: u16, h: &HeaderMap) -> bool {
    !(status < 200 || status == 204 || status == 304)
        && h.get("content-length").is_none()
        && h.get("transfer-encoding").is_none()
}

fn envoy_reply(status: u16, body: &str, details: &str) -> LocalReply {
    LocalReply {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
        details: details.to_string(),
        grpc_status: -1,
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
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
