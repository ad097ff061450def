//! One instance of a plugin's module (one Envoy worker's VM): the wasmtime store, the
//! guest's callbacks, and the VM's own asynchronous events (ticks, callouts, queues).

use std::sync::Arc;

use wasmtime::{
    Instance, InstancePre, Store, StoreLimitsBuilder, TypedFunc, WasmParams, WasmResults,
};

use crate::error::Error;
use crate::shared::{lock, Shared};
use crate::state::{Access, ContextKind, HostAction, HostState, PendingGrpc, PluginInfo, Stream};
use crate::types::{Level, Status};

type F1 = TypedFunc<i32, ()>;
type F1R = TypedFunc<i32, i32>;
type F2 = TypedFunc<(i32, i32), ()>;
type F2R = TypedFunc<(i32, i32), i32>;
type F3 = TypedFunc<(i32, i32, i32), ()>;
type F3R = TypedFunc<(i32, i32, i32), i32>;
type F5 = TypedFunc<(i32, i32, i32, i32, i32), ()>;

/// The guest's exported callbacks; `None` when the module does not export one.
#[derive(Default)]
struct Exports {
    initialize: Option<TypedFunc<(), ()>>,
    start: Option<TypedFunc<(), ()>>,
    main: Option<TypedFunc<(i32, i32), i32>>,
    context_create: Option<F2>,
    vm_start: Option<F2R>,
    configure: Option<F2R>,
    tick: Option<F1>,
    queue_ready: Option<F2>,
    new_connection: Option<F1R>,
    downstream_data: Option<F3R>,
    downstream_close: Option<F2>,
    upstream_data: Option<F3R>,
    upstream_close: Option<F2>,
    request_headers: Option<F3R>,
    request_body: Option<F3R>,
    request_trailers: Option<F2R>,
    response_headers: Option<F3R>,
    response_body: Option<F3R>,
    response_trailers: Option<F2R>,
    http_call_response: Option<F5>,
    grpc_close: Option<F3>,
    grpc_receive: Option<F3>,
    done: Option<F1R>,
    log: Option<F1>,
    delete: Option<F1>,
}

fn typed<P: WasmParams, R: WasmResults>(
    store: &mut Store<HostState>,
    inst: &Instance,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, Error> {
    match inst.get_func(&mut *store, name) {
        None => Ok(None),
        Some(f) => f
            .typed::<P, R>(&*store)
            .map(Some)
            .map_err(|e| Error::BadExport {
                name: name.to_string(),
                detail: e.to_string(),
            }),
    }
}

impl Exports {
    fn resolve(store: &mut Store<HostState>, i: &Instance) -> Result<Self, Error> {
        Ok(Exports {
            initialize: typed(store, i, "_initialize")?,
            start: typed(store, i, "_start")?,
            main: typed(store, i, "main")?,
            context_create: typed(store, i, "proxy_on_context_create")?,
            vm_start: typed(store, i, "proxy_on_vm_start")?,
            configure: typed(store, i, "proxy_on_configure")?,
            tick: typed(store, i, "proxy_on_tick")?,
            queue_ready: typed(store, i, "proxy_on_queue_ready")?,
            new_connection: typed(store, i, "proxy_on_new_connection")?,
            downstream_data: typed(store, i, "proxy_on_downstream_data")?,
            downstream_close: typed(store, i, "proxy_on_downstream_connection_close")?,
            upstream_data: typed(store, i, "proxy_on_upstream_data")?,
            upstream_close: typed(store, i, "proxy_on_upstream_connection_close")?,
            request_headers: typed(store, i, "proxy_on_request_headers")?,
            request_body: typed(store, i, "proxy_on_request_body")?,
            request_trailers: typed(store, i, "proxy_on_request_trailers")?,
            response_headers: typed(store, i, "proxy_on_response_headers")?,
            response_body: typed(store, i, "proxy_on_response_body")?,
            response_trailers: typed(store, i, "proxy_on_response_trailers")?,
            http_call_response: typed(store, i, "proxy_on_http_call_response")?,
            grpc_close: typed(store, i, "proxy_on_grpc_close")?,
            grpc_receive: typed(store, i, "proxy_on_grpc_receive")?,
            done: typed(store, i, "proxy_on_done")?,
            log: typed(store, i, "proxy_on_log")?,
            delete: typed(store, i, "proxy_on_delete")?,
        })
    }
}

/// A guest callback the stream engines invoke.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Callback {
    RequestHeaders { headers: u32, end: bool },
    RequestBody { size: u32, end: bool },
    RequestTrailers { trailers: u32 },
    ResponseHeaders { headers: u32, end: bool },
    ResponseBody { size: u32, end: bool },
    ResponseTrailers { trailers: u32 },
    NewConnection,
    DownstreamData { size: u32, end: bool },
    UpstreamData { size: u32, end: bool },
    DownstreamClose { peer: u32 },
    UpstreamClose { peer: u32 },
    Log,
    Done,
    Delete,
}

/// An asynchronous event a VM has due.
#[derive(Debug)]
pub(crate) enum VmEvent {
    Tick,
    HttpResponse { token: u32 },
    GrpcClose { token: u32 },
    QueueReady { token: u32 },
}

/// What one callback did.
pub(crate) struct CallOutcome {
    /// The callback's return value (0 when it returns nothing or is not exported);
    /// `Err` with the trap message when it trapped or the VM had already failed.
    pub result: Result<i32, String>,
    pub actions: Vec<(u32, HostAction)>,
    pub logs: Vec<(Level, String)>,
    pub callouts: Vec<crate::upstreams::Callout>,
}

pub(crate) struct Vm {
    store: Store<HostState>,
    /// Shared so a callback can hold its function while the store is borrowed mutably;
    /// cloning the typed functions themselves costs a type-registry lock each.
    ex: Arc<Exports>,
    /// Set once the guest trapped: Envoy never calls a failed VM again.
    pub failed: Option<String>,
    fuel: Option<u64>,
    next_context: u32,
    pub uid: u64,
}

pub(crate) struct VmOptions {
    pub fuel: Option<u64>,
    pub memory_limit: usize,
}

impl Vm {
    /// Instantiates the module and runs its start-up: `_initialize` (or `_start`), then the
    /// root context's `proxy_on_context_create`, `proxy_on_vm_start`, `proxy_on_configure`.
    pub fn start(
        pre: &InstancePre<HostState>,
        info: Arc<PluginInfo>,
        shared: Arc<Shared>,
        opts: &VmOptions,
    ) -> Result<Vm, Error> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(opts.memory_limit)
            .build();
        let mut store = Store::new(pre.module().engine(), HostState::new(info, shared, limits));
        store.limiter(|s| &mut s.limits);
        if let Some(f) = opts.fuel {
            store
                .set_fuel(f)
                .map_err(|e| Error::Instantiate(e.to_string()))?;
        }
        let inst = pre
            .instantiate(&mut store)
            .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
        let memory = inst
            .get_memory(&mut store, "memory")
            .ok_or(Error::MissingExport("memory"))?;
        let malloc = match typed::<i32, i32>(&mut store, &inst, "malloc")? {
            Some(f) => f,
            None => typed::<i32, i32>(&mut store, &inst, "proxy_on_memory_allocate")?
                .ok_or(Error::MissingExport("malloc or proxy_on_memory_allocate"))?,
        };
        let ex = Arc::new(Exports::resolve(&mut store, &inst)?);
        let uid = store.data().vm_uid;
        store.data_mut().memory = Some(memory);
        store.data_mut().malloc = Some(malloc);
        let mut vm = Vm {
            store,
            ex,
            failed: None,
            fuel: opts.fuel,
            next_context: 1,
            uid,
        };

        let trapped = |vm: &mut Vm, phase: &'static str, message: String| Error::StartTrapped {
            phase,
            message,
            logs: std::mem::take(&mut vm.store.data_mut().logs),
        };
        if let Some(f) = vm.ex.initialize.clone() {
            vm.raw_call("_initialize", Some(&f), ())
                .map_err(|m| trapped(&mut vm, "_initialize", m))?;
            if let Some(f) = vm.ex.main.clone() {
                vm.raw_call("main", Some(&f), (0, 0))
                    .map_err(|m| trapped(&mut vm, "main", m))?;
            }
        } else if let Some(f) = vm.ex.start.clone() {
            vm.raw_call("_start", Some(&f), ())
                .map_err(|m| trapped(&mut vm, "_start", m))?;
        }
        let root = vm.new_context(ContextKind::Root);
        vm.store.data_mut().root_context = root;
        let f = vm.ex.context_create.clone();
        vm.raw_call("proxy_on_context_create", f.as_ref(), (root as i32, 0))
            .map_err(|m| trapped(&mut vm, "proxy_on_context_create", m))?;
        let vm_cfg_len = vm.store.data().info.vm_configuration.len() as i32;
        let f = vm.ex.vm_start.clone();
        let ok = vm
            .raw_call("proxy_on_vm_start", f.as_ref(), (root as i32, vm_cfg_len))
            .map_err(|m| trapped(&mut vm, "proxy_on_vm_start", m))?;
        if ok == Some(0) {
            return Err(Error::VmStartRejected {
                logs: vm.take_logs(),
            });
        }
        let cfg_len = vm.store.data().info.configuration.len() as i32;
        vm.store.data_mut().configuring = true;
        let f = vm.ex.configure.clone();
        let r = vm.raw_call("proxy_on_configure", f.as_ref(), (root as i32, cfg_len));
        vm.store.data_mut().configuring = false;
        let ok = r.map_err(|m| trapped(&mut vm, "proxy_on_configure", m))?;
        if ok == Some(0) {
            return Err(Error::ConfigureRejected {
                logs: vm.take_logs(),
            });
        }
        Ok(vm)
    }

    pub fn root_context(&self) -> u32 {
        self.store.data().root_context
    }

    pub fn host_calls(&self) -> u64 {
        self.store.data().host_calls
    }

    /// Size of the guest's linear memory (what Envoy's memory limit applies to).
    pub fn memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map_or(0, |m| m.data_size(&self.store))
    }

    pub fn take_logs(&mut self) -> Vec<(Level, String)> {
        std::mem::take(&mut self.store.data_mut().logs)
    }

    /// Callouts made outside any callback the engine took them from (start-up).
    pub fn take_callouts(&mut self) -> Vec<crate::upstreams::Callout> {
        std::mem::take(&mut self.store.data_mut().callouts)
    }

    fn new_context(&mut self, kind: ContextKind) -> u32 {
        let id = self.next_context;
        self.next_context += 1;
        self.store.data_mut().contexts.insert(id, kind);
        id
    }

    /// Calls a guest function with the per-call fuel budget; a trap marks the VM failed.
    fn raw_call<P: WasmParams, R: WasmResults>(
        &mut self,
        name: &str,
        f: Option<&TypedFunc<P, R>>,
        args: P,
    ) -> Result<Option<R>, String> {
        if let Some(msg) = &self.failed {
            return Err(msg.clone());
        }
        let Some(f) = f else {
            return Ok(None);
        };
        if let Some(fuel) = self.fuel {
            if let Err(e) = self.store.set_fuel(fuel) {
                return Err(e.to_string());
            }
        }
        self.store.data_mut().effective_context = None;
        match f.call(&mut self.store, args) {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                let msg = format!("{name} failed: {e:#}");
                self.store
                    .data_mut()
                    .log(Level::Critical, format!("wasm trap: {msg}"));
                self.failed = Some(msg.clone());
                Err(msg)
            }
        }
    }

    /// Creates a stream context (`proxy_on_context_create(id, root)`).
    pub fn create_stream_context(&mut self) -> Result<u32, String> {
        let id = self.new_context(ContextKind::Stream);
        let root = self.root_context() as i32;
        let ex = self.ex.clone();
        self.raw_call(
            "proxy_on_context_create",
            ex.context_create.as_ref(),
            (id as i32, root),
        )
        .map(|_| id)
    }

    /// Runs one stream callback with the stream loaded into the host state.
    pub fn call(
        &mut self,
        ctx: u32,
        cb: Callback,
        stream: &mut Box<Stream>,
        access: &mut Access,
    ) -> CallOutcome {
        self.load(ctx, stream, *access);
        let c = ctx as i32;
        let b = |v: bool| i32::from(v);
        let ex = self.ex.clone();
        let result = match cb {
            Callback::RequestHeaders { headers, end } => self.raw_call(
                "proxy_on_request_headers",
                ex.request_headers.as_ref(),
                (c, headers as i32, b(end)),
            ),
            Callback::RequestBody { size, end } => self.raw_call(
                "proxy_on_request_body",
                ex.request_body.as_ref(),
                (c, size as i32, b(end)),
            ),
            Callback::RequestTrailers { trailers } => self.raw_call(
                "proxy_on_request_trailers",
                ex.request_trailers.as_ref(),
                (c, trailers as i32),
            ),
            Callback::ResponseHeaders { headers, end } => self.raw_call(
                "proxy_on_response_headers",
                ex.response_headers.as_ref(),
                (c, headers as i32, b(end)),
            ),
            Callback::ResponseBody { size, end } => self.raw_call(
                "proxy_on_response_body",
                ex.response_body.as_ref(),
                (c, size as i32, b(end)),
            ),
            Callback::ResponseTrailers { trailers } => self.raw_call(
                "proxy_on_response_trailers",
                ex.response_trailers.as_ref(),
                (c, trailers as i32),
            ),
            Callback::NewConnection => {
                self.raw_call("proxy_on_new_connection", ex.new_connection.as_ref(), c)
            }
            Callback::DownstreamData { size, end } => self.raw_call(
                "proxy_on_downstream_data",
                ex.downstream_data.as_ref(),
                (c, size as i32, b(end)),
            ),
            Callback::UpstreamData { size, end } => self.raw_call(
                "proxy_on_upstream_data",
                ex.upstream_data.as_ref(),
                (c, size as i32, b(end)),
            ),
            // `peer`: proxy-wasm's PeerType (0 unknown, 1 local, 2 remote).
            Callback::DownstreamClose { peer } => self
                .raw_call(
                    "proxy_on_downstream_connection_close",
                    ex.downstream_close.as_ref(),
                    (c, peer as i32),
                )
                .map(|r| r.map(|()| 0)),
            Callback::UpstreamClose { peer } => self
                .raw_call(
                    "proxy_on_upstream_connection_close",
                    ex.upstream_close.as_ref(),
                    (c, peer as i32),
                )
                .map(|r| r.map(|()| 0)),
            Callback::Log => self
                .raw_call("proxy_on_log", ex.log.as_ref(), c)
                .map(|r| r.map(|()| 0)),
            Callback::Done => self.raw_call("proxy_on_done", ex.done.as_ref(), c),
            Callback::Delete => {
                let r = self
                    .raw_call("proxy_on_delete", ex.delete.as_ref(), c)
                    .map(|r| r.map(|()| 0));
                self.forget_context(ctx);
                r
            }
        };
        self.unload(stream, access, result.map(|r| r.unwrap_or(0)))
    }

    fn load(&mut self, ctx: u32, stream: &mut Box<Stream>, access: Access) {
        let st = self.store.data_mut();
        st.current_context = ctx;
        st.stream_context = ctx;
        st.stream = Some(std::mem::take(stream));
        st.access = access;
    }

    fn unload(
        &mut self,
        stream: &mut Box<Stream>,
        access: &mut Access,
        result: Result<i32, String>,
    ) -> CallOutcome {
        let st = self.store.data_mut();
        if let Some(s) = st.stream.take() {
            *stream = s;
        }
        *access = st.access;
        st.current_context = st.root_context;
        CallOutcome {
            result,
            actions: std::mem::take(&mut st.actions),
            logs: std::mem::take(&mut st.logs),
            callouts: std::mem::take(&mut st.callouts),
        }
    }

    /// A deleted context's callouts live on: Envoy files them under the root context,
    /// which gets their callbacks later.
    fn forget_context(&mut self, ctx: u32) {
        self.store.data_mut().contexts.remove(&ctx);
    }

    /// The earliest virtual time at which this VM has something to do.
    pub fn next_event_time(&self) -> Option<u64> {
        let st = self.store.data();
        let now = st.shared.now();
        let queued = lock(&st.shared.queues)
            .ready
            .iter()
            .any(|(vm, _, _)| *vm == self.uid);
        [
            queued.then_some(now),
            st.next_tick,
            st.http_calls.values().map(|c| c.due).min(),
            st.grpc_calls.values().map(|c| c.due).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Pops the next event due at or before `now`, with the context it targets.
    pub fn pop_due(&mut self, now: u64) -> Option<(u32, VmEvent)> {
        let uid = self.uid;
        let st = self.store.data_mut();
        {
            let mut q = lock(&st.shared.queues);
            if let Some(i) = q.ready.iter().position(|(vm, _, _)| *vm == uid) {
                let (_, context, token) = q.ready.remove(i);
                return Some((context, VmEvent::QueueReady { token }));
            }
        }
        let http = st
            .http_calls
            .iter()
            .filter(|(_, c)| c.due <= now)
            .min_by_key(|(t, c)| (c.due, **t));
        let grpc = st
            .grpc_calls
            .iter()
            .filter(|(_, c)| c.due <= now)
            .min_by_key(|(t, c)| (c.due, **t));
        let tick = st.next_tick.filter(|t| *t <= now);
        let mut best: Option<(u64, u32, VmEvent)> = None;
        let mut consider = |due: u64, ctx: u32, ev: VmEvent| {
            if best.as_ref().is_none_or(|(d, _, _)| due < *d) {
                best = Some((due, ctx, ev));
            }
        };
        if let Some(t) = tick {
            consider(t, st.root_context, VmEvent::Tick);
        }
        if let Some((token, c)) = http {
            consider(c.due, c.context, VmEvent::HttpResponse { token: *token });
        }
        if let Some((token, c)) = grpc {
            consider(c.due, c.context, VmEvent::GrpcClose { token: *token });
        }
        best.map(|(_, ctx, ev)| (ctx, ev))
    }

    /// Delivers an event. `stream` is the stream the target context belongs to, if any.
    pub fn deliver(
        &mut self,
        ctx: u32,
        ev: VmEvent,
        stream: Option<(&mut Box<Stream>, &mut Access)>,
    ) -> CallOutcome {
        let mut empty = Box::default();
        let mut no_access = Access::default();
        let has_stream = stream.is_some();
        let (stream, access) = stream.unwrap_or((&mut empty, &mut no_access));
        if has_stream {
            self.load(ctx, stream, *access);
        } else {
            let st = self.store.data_mut();
            st.stream = None;
            st.stream_context = 0;
            st.access = Access::default();
        }
        // Envoy files every callout under the root context (`proxy_http_call` and the gRPC
        // calls act on `root_context()`), so its callbacks name the root context; the
        // stream that made the call stays loaded for `proxy_set_effective_context`.
        let callout = matches!(ev, VmEvent::HttpResponse { .. } | VmEvent::GrpcClose { .. });
        let target = if callout { self.root_context() } else { ctx };
        self.store.data_mut().current_context = target;
        let ex = self.ex.clone();
        let c = target as i32;
        let result = match ev {
            VmEvent::Tick => {
                let st = self.store.data_mut();
                let period = u64::from(st.tick_period_ms) * 1_000_000;
                st.next_tick = st
                    .next_tick
                    .map(|t| t.max(st.shared.now()) + period)
                    .filter(|_| period > 0);
                self.raw_call("proxy_on_tick", ex.tick.as_ref(), c)
            }
            VmEvent::QueueReady { token, .. } => self.raw_call(
                "proxy_on_queue_ready",
                ex.queue_ready.as_ref(),
                (c, token as i32),
            ),
            VmEvent::HttpResponse { token } => {
                let st = self.store.data_mut();
                match st.http_calls.remove(&token) {
                    None => Ok(None),
                    Some(call) => {
                        let r = call.response;
                        // A success leaves the status as it was (Envoy's
                        // `onHttpCallSuccess` does not touch it).
                        let args = if r.failed {
                            let code = Status::BrokenConnection as u32;
                            st.callout_failed(code, b"reset".to_vec());
                            (c, token as i32, 0, 0, 0)
                        } else {
                            (
                                c,
                                token as i32,
                                r.headers.len() as i32,
                                r.body.len() as i32,
                                r.trailers.len() as i32,
                            )
                        };
                        st.http_call_response = Some(r);
                        let res = self.raw_call(
                            "proxy_on_http_call_response",
                            ex.http_call_response.as_ref(),
                            args,
                        );
                        let st = self.store.data_mut();
                        st.http_call_response = None;
                        st.failure_reported();
                        res
                    }
                }
            }
            VmEvent::GrpcClose { token } => {
                let st = self.store.data_mut();
                match st.grpc_calls.remove(&token) {
                    None => Ok(None),
                    Some(PendingGrpc {
                        response: Some(message),
                        ..
                    }) => {
                        // A unary success: the message, and no close callback.
                        let size = message.len() as i32;
                        st.grpc_message = Some(message);
                        let res = self.raw_call(
                            "proxy_on_grpc_receive",
                            ex.grpc_receive.as_ref(),
                            (c, token as i32, size),
                        );
                        self.store.data_mut().grpc_message = None;
                        res
                    }
                    Some(call) => {
                        st.callout_failed(call.status, call.message.into_bytes());
                        // Envoy's receive buffer reads as empty (not missing) at the close
                        // (seen with a real gRPC server).
                        st.grpc_message = Some(Vec::new());
                        let res = self.raw_call(
                            "proxy_on_grpc_close",
                            ex.grpc_close.as_ref(),
                            (c, token as i32, call.status as i32),
                        );
                        let st = self.store.data_mut();
                        st.failure_reported();
                        st.grpc_message = None;
                        res
                    }
                }
            }
        }
        .map(|r| r.map(|()| 0).unwrap_or(0));
        self.unload(stream, access, result)
    }
}
