//! HTTP streams through a chain of Wasm filters, then Envoy's router and a scripted upstream,
//! then back through the filters' response callbacks.
//!
//! The engine follows Envoy's filter manager: a filter that pauses on headers stops all
//! iteration (later body chunks wait at that filter), a paused body is buffered and shown
//! whole on the next call, `proxy_continue_stream` resumes, a local reply ends decoding and
//! runs through every filter's response callbacks. Time is virtual: while the stream waits,
//! the clock jumps to the next callout response or tick.

mod iteration;
mod local_reply;
mod phase;
mod request;
mod router;
mod run;
mod stream_end;

use std::collections::VecDeque;
use std::time::Duration;

use crate::plugin::{HostSim, Plugin};
use crate::route_config::{Decision, Routes};
use crate::state::{Access, HostAction, LocalReply, Stream};
use crate::vm::{CallOutcome, Callback};

use phase::{ClientPhase, Dir, Ev, FilterPhase, FilterStatus, RequestPhase, UpstreamPhase};

pub use request::{HttpOutcome, HttpRequest};
use router::envoy_reply;
pub use run::FilterChain;

/// Envoy's default `stream_idle_timeout`.
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// One filter of the chain in one stream.
struct Slot<'p> {
    plugin: &'p Plugin,
    worker: usize,
    /// Its stream context (0 until created).
    ctx: u32,
    status: FilterStatus,
    access: Access,
    dec: FilterPhase,
    enc: FilterPhase,
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
    request: RequestPhase,
    upstream: UpstreamPhase,
    pending_local: Option<(LocalReply, bool)>,
    pending_resumes: VecDeque<(usize, Dir)>,
    local_replies: u8,
    enc_gen: u32,
    client: ClientPhase,
    deadline: u64,
    /// Request body chunks not yet sent into the filters.
    request_body: Vec<Vec<u8>>,
    /// A HEAD request: Envoy sends the response headers only (local replies too).
    head: bool,
    /// Host calls made by callbacks run for this stream.
    calls: u64,
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
                status: FilterStatus::Skipped,
                access: Access::default(),
                dec: FilterPhase::Passing,
                enc: FilterPhase::Passing,
            })
            .collect();
        Session {
            sim,
            slots,
            routes,
            stream,
            out: HttpOutcome::default(),
            decision: None,
            request: RequestPhase::Open,
            upstream: UpstreamPhase::Idle,
            pending_local: None,
            pending_resumes: VecDeque::new(),
            local_replies: 0,
            enc_gen: 0,
            client: ClientPhase::Waiting,
            deadline: now + STREAM_IDLE_TIMEOUT.as_nanos() as u64,
            request_body: req.body,
            head,
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
            self.iterate(Dir::Decode, 0, ev);
            self.settle();
        }
    }

    /// When the next upstream event (reply or route timeout) is due, if any.
    fn next_event(&self) -> Option<u64> {
        self.upstream.next_event()
    }

    /// Whether the client got its whole answer (or the stream was reset).
    fn done(&self) -> bool {
        self.client.is_over()
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
                slot.status = FilterStatus::Running;
            }
            Err(msg) if slot.plugin.fail_open() => self.out.vm_failures.push(msg),
            Err(msg) => slot.status = FilterStatus::Doomed(msg),
        }
    }

    /// Envoy's `CHECK_FAIL_HTTP`: a failed VM lets the stream through when `fail_open`,
    /// otherwise fails it with a 503.
    fn vm_failed(&mut self, i: usize, msg: String) {
        self.out.vm_failures.push(msg);
        let slot = &mut self.slots[i];
        if slot.plugin.fail_open() {
            slot.status = FilterStatus::Skipped;
        } else if slot.status != FilterStatus::FailedClosed {
            slot.status = FilterStatus::FailedClosed;
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
            let now = self.now();
            if let UpstreamPhase::Waiting { timeout_at, reply } = &mut self.upstream {
                if reply.as_ref().is_some_and(|(due, _)| *due <= now) {
                    if let Some((_, reply)) = reply.take() {
                        self.upstream = UpstreamPhase::Idle;
                        self.upstream_response(reply);
                    }
                    continue;
                }
                if *timeout_at > now {
                    return;
                }
                self.upstream = UpstreamPhase::Idle;
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
        if self.client.headers().is_none() {
            self.request_local_reply(
                envoy_reply(408, "stream timeout", "stream_idle_timeout"),
                false,
            );
            self.deadline = u64::MAX;
        } else {
            self.client = ClientPhase::Reset;
        }
    }

    fn call(&mut self, i: usize, cb: Callback, dir: Dir) -> Flow {
        if self.slots[i].status != FilterStatus::Running {
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
                    self.client = ClientPhase::Reset;
                    self.request = RequestPhase::Done;
                    stop = true;
                }
                HostAction::Continue(_) | HostAction::Close(_) => {}
            }
        }
        match out.result {
            Err(msg) => {
                if let Some(i) = slot {
                    self.vm_failed(i, msg);
                    if self.slots[i].status == FilterStatus::FailedClosed {
                        return Flow::Stop;
                    }
                }
                Flow::Continue
            }
            Ok(v) if stop || (v != 0 && !resume_self) => Flow::Stop,
            Ok(_) => Flow::Continue,
        }
    }
}
