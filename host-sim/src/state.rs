//! The per-VM host state that wasmtime's `Store` carries, and the stream data a callback
//! sees while it runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use wasmtime::{Memory, StoreLimits, TypedFunc};

use crate::headers::HeaderMap;
use crate::properties::{split_path, PropValue, PropertyOverrides};
use crate::shared::Shared;
use crate::types::{AbiVersion, Level, Status};

/// Static description of a plugin, shared by its VMs.
#[derive(Debug)]
pub(crate) struct PluginInfo {
    pub name: String,
    pub root_id: String,
    pub vm_id: String,
    pub configuration: Vec<u8>,
    pub vm_configuration: Vec<u8>,
    pub log_level: Level,
    pub env: Vec<(String, String)>,
    pub properties: PropertyOverrides,
    pub abi: AbiVersion,
    pub fail_open: bool,
}

impl PluginInfo {
    pub(crate) fn placeholder() -> Self {
        PluginInfo {
            name: String::new(),
            root_id: String::new(),
            vm_id: String::new(),
            configuration: Vec::new(),
            vm_configuration: Vec::new(),
            log_level: Level::Info,
            env: Vec::new(),
            properties: PropertyOverrides::default(),
            abi: AbiVersion::V0_2_1,
            fail_open: false,
        }
    }
}

/// The route Envoy resolved for a stream, as the `xds.*` properties describe it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RouteInfo {
    pub route_name: String,
    pub virtual_host: String,
    pub cluster: Option<String>,
}

/// A local reply requested by `proxy_send_local_response`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// The response code details string (`proxy_send_local_response`'s `details`).
    pub details: String,
    /// gRPC status, when the guest gave one (`-1` means none).
    pub grpc_status: i32,
}

/// Everything about one HTTP stream or TCP connection that host calls may touch. It moves
/// into the `HostState` of whichever VM runs a callback, and back out afterwards, so several
/// VMs (a filter chain) see the same headers.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub request_headers: HeaderMap,
    pub request_trailers: HeaderMap,
    pub response_headers: HeaderMap,
    pub response_trailers: HeaderMap,
    /// The body buffer the running callback sees (request or response, per `Access::body`).
    pub body: Vec<u8>,
    /// TCP data buffers.
    pub downstream_data: Vec<u8>,
    pub upstream_data: Vec<u8>,
    /// Set when request headers change (ABI 0.2.x) or `clear_route_cache` is called.
    pub route_cleared: bool,
    /// The last resolved route; stale after `route_cleared` until the router re-resolves.
    pub route: Option<RouteInfo>,
    /// The virtual host that matched, also when no route did.
    pub virtual_host: Option<String>,
    pub filter_state: BTreeMap<String, Vec<u8>>,
    /// Values written by `proxy_set_property`, keyed by the full path.
    pub guest_properties: Vec<(Vec<u8>, Vec<u8>)>,
    pub overrides: PropertyOverrides,
    pub source_address: String,
    pub destination_address: String,
    pub connection_id: u64,
    pub start_nanos: u64,
    pub response_code: Option<u16>,
    pub response_details: String,
    pub upstream_address: Option<String>,
    /// The cluster `tcp_proxy` connected to (TCP connections have no route).
    pub upstream_cluster: Option<String>,
    /// A TCP connection through network filters rather than an HTTP stream.
    pub network: bool,
    pub request_size: u64,
    /// When the stream ended (set before `proxy_on_log`): Envoy's request completion.
    pub end_nanos: Option<u64>,
}

/// Which of the stream's maps and buffers the current filter may use. Envoy drops its
/// pointer to a map once the filter lets the stream move on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Access {
    pub request_headers: bool,
    pub request_trailers: bool,
    pub response_headers: bool,
    pub response_trailers: bool,
    /// 0 = request body, 1 = response body (proxy-wasm buffer numbering).
    pub body: Option<u32>,
    pub downstream_data: bool,
    pub upstream_data: bool,
    /// `proxy_on_log`: maps are readable but not writable.
    pub log_phase: bool,
}

/// Side effects of host calls that the stream engine applies after the callback returns
/// (Envoy defers them the same way with "after VM call" actions).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum HostAction {
    Continue(u32),
    Close(u32),
    LocalReply(LocalReply),
}

/// The result of an `http_call`, as the callback sees it.
#[derive(Clone, Debug, Default)]
pub(crate) struct CallResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
    pub failed: bool,
}

#[derive(Debug)]
pub(crate) struct PendingHttpCall {
    /// The context that made the call: its stream (if still open) sees the callback.
    pub context: u32,
    pub due: u64,
    pub response: CallResponse,
}

#[derive(Debug)]
pub(crate) struct PendingGrpc {
    pub context: u32,
    pub due: u64,
    pub status: u32,
    pub message: String,
    /// The response message of a scripted success (`proxy_on_grpc_receive`).
    pub response: Option<Vec<u8>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContextKind {
    Root,
    Stream,
}

pub(crate) struct HostState {
    pub info: Arc<PluginInfo>,
    pub shared: Arc<Shared>,
    pub vm_uid: u64,
    pub memory: Option<Memory>,
    pub malloc: Option<TypedFunc<i32, i32>>,
    pub limits: StoreLimits,
    pub logs: Vec<(Level, String)>,
    pub host_calls: u64,
    pub current_context: u32,
    pub effective_context: Option<u32>,
    pub root_context: u32,
    pub contexts: HashMap<u32, ContextKind>,
    pub configuring: bool,
    pub call_data: Option<Vec<u8>>,
    pub http_call_response: Option<CallResponse>,
    pub grpc_message: Option<Vec<u8>>,
    /// What `proxy_get_status` reads: the status of the root context (Envoy reads the
    /// root context's, whichever context asks), which is the one callouts are filed under:
    /// the code of the last callout that failed (kept afterwards, also through later
    /// successes) and, during the callback that reports the failure, its message.
    pub status: (u32, Vec<u8>),
    pub stream: Option<Box<Stream>>,
    pub stream_context: u32,
    pub access: Access,
    pub actions: Vec<(u32, HostAction)>,
    /// Callouts started since the engine last took them.
    pub callouts: Vec<crate::upstreams::Callout>,
    pub http_calls: BTreeMap<u32, PendingHttpCall>,
    pub grpc_calls: BTreeMap<u32, PendingGrpc>,
    pub next_http_token: u32,
    pub next_grpc_token: u32,
    pub tick_period_ms: u32,
    pub next_tick: Option<u64>,
    pub metric_ids: HashMap<u32, String>,
    pub next_metric_seq: u32,
    pub rng: u64,
}

impl HostState {
    pub fn new(info: Arc<PluginInfo>, shared: Arc<Shared>, limits: StoreLimits) -> Self {
        let vm_uid = shared.next_vm_uid();
        let rng = shared.seed ^ vm_uid.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        HostState {
            info,
            shared,
            vm_uid,
            memory: None,
            malloc: None,
            limits,
            logs: Vec::new(),
            host_calls: 0,
            current_context: 0,
            effective_context: None,
            root_context: 0,
            contexts: HashMap::new(),
            configuring: false,
            call_data: None,
            http_call_response: None,
            grpc_message: None,
            status: (0, Vec::new()),
            stream: None,
            stream_context: 0,
            access: Access::default(),
            actions: Vec::new(),
            callouts: Vec::new(),
            http_calls: BTreeMap::new(),
            grpc_calls: BTreeMap::new(),
            next_http_token: 1,
            next_grpc_token: 1,
            tick_period_ms: 0,
            next_tick: None,
            metric_ids: HashMap::new(),
            next_metric_seq: 0,
            rng,
        }
    }

    pub fn log(&mut self, level: Level, message: String) {
        if level >= self.info.log_level {
            self.logs.push((level, message));
        }
    }

    /// A callout failed with `code` and `message`, as its callback is about to report.
    pub fn callout_failed(&mut self, code: u32, message: Vec<u8>) {
        self.status = (code, message);
    }

    /// The callback that reported a failure returned: Envoy clears the message and keeps
    /// the code.
    pub fn failure_reported(&mut self) {
        self.status.1.clear();
    }

    /// The context host calls act on: the effective context when one was set.
    pub fn context(&self) -> u32 {
        self.effective_context.unwrap_or(self.current_context)
    }

    /// Whether the acting context owns the loaded stream.
    fn on_stream(&self) -> bool {
        self.stream.is_some() && self.context() == self.stream_context
    }

    pub fn next_random(&mut self) -> u64 {
        // splitmix64: deterministic per host seed and VM.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A header map for reading. `None` means the map is not available right now.
    pub fn map(&self, map_type: u32) -> Result<Option<&HeaderMap>, Status> {
        if map_type > 7 {
            return Err(Status::BadArgument);
        }
        if map_type >= 6 {
            return Ok(self.http_call_response.as_ref().map(|r| {
                if map_type == 6 {
                    &r.headers
                } else {
                    &r.trailers
                }
            }));
        }
        if map_type >= 4 || !self.on_stream() {
            return Ok(None);
        }
        let (Some(stream), a) = (self.stream.as_deref(), self.access) else {
            return Ok(None);
        };
        let log = a.log_phase;
        Ok(match map_type {
            0 if a.request_headers || log => Some(&stream.request_headers),
            1 if a.request_trailers => Some(&stream.request_trailers),
            2 if a.response_headers || log => Some(&stream.response_headers),
            3 if a.response_trailers || log => Some(&stream.response_trailers),
            _ => None,
        })
    }

    /// Whether the filter still holds map `map_type` (0..=3) for writing: Envoy's own map
    /// pointer, which `proxy_get_header_map_size` also needs (in the log phase too).
    pub fn map_held(&self, map_type: u32) -> bool {
        let a = self.access;
        self.on_stream()
            && match map_type {
                0 => a.request_headers,
                1 => a.request_trailers,
                2 => a.response_headers,
                3 => a.response_trailers,
                _ => true,
            }
    }

    /// A header map for writing; BadArgument when it is gone (Envoy's null map pointer).
    pub fn map_mut(&mut self, map_type: u32) -> Result<&mut HeaderMap, Status> {
        if map_type > 7 {
            return Err(Status::BadArgument);
        }
        if map_type > 3 || !self.on_stream() {
            return Err(Status::BadArgument);
        }
        let a = self.access;
        let stream = self.stream.as_deref_mut().ok_or(Status::BadArgument)?;
        let available = match map_type {
            0 => a.request_headers,
            1 => a.request_trailers,
            2 => a.response_headers,
            _ => a.response_trailers,
        };
        if !available {
            return Err(Status::BadArgument);
        }
        if map_type == 0 && self.info.abi != AbiVersion::V0_1_0 {
            // ABI 0.2.x: Envoy clears the cached route whenever request headers change.
            stream.route_cleared = true;
        }
        Ok(match map_type {
            0 => &mut stream.request_headers,
            1 => &mut stream.request_trailers,
            2 => &mut stream.response_headers,
            _ => &mut stream.response_trailers,
        })
    }

    /// A buffer for reading; `None` = NotFound.
    pub fn buffer(&self, buffer_type: u32) -> Result<Option<&[u8]>, Status> {
        Ok(match buffer_type {
            0 | 1 => {
                if self.on_stream() && self.access.body == Some(buffer_type) {
                    self.stream.as_deref().map(|s| s.body.as_slice())
                } else if self.on_stream() {
                    // Envoy hands out an empty body buffer outside the body callbacks
                    // (seen by the fidelity probe), not NotFound.
                    Some(&[][..])
                } else {
                    None
                }
            }
            2 if self.on_stream() && self.access.downstream_data => {
                self.stream.as_deref().map(|s| s.downstream_data.as_slice())
            }
            3 if self.on_stream() && self.access.upstream_data => {
                self.stream.as_deref().map(|s| s.upstream_data.as_slice())
            }
            // Like the bodies: empty outside their callbacks (seen by the fidelity probe).
            2 | 3 if self.on_stream() => Some(&[][..]),
            2 | 3 => None,
            4 => self.http_call_response.as_ref().map(|r| r.body.as_slice()),
            5 => self.grpc_message.as_deref(),
            6 => Some(self.info.vm_configuration.as_slice()),
            7 => self
                .configuring
                .then_some(self.info.configuration.as_slice()),
            8 => self.call_data.as_deref(),
            _ => return Err(Status::BadArgument),
        })
    }

    /// Envoy's `Buffer::copyFrom`: start 0 replaces a prefix of `length` bytes, a start at or
    /// past the end appends, anything else is BadArgument. Read-only buffers refuse writes.
    pub fn set_buffer(
        &mut self,
        buffer_type: u32,
        start: usize,
        length: usize,
        data: &[u8],
    ) -> Status {
        if buffer_type > 8 {
            return Status::BadArgument;
        }
        let on_stream = self.on_stream();
        let a = self.access;
        let target = match (buffer_type, self.stream.as_deref_mut()) {
            (0 | 1, Some(s)) if on_stream && a.body == Some(buffer_type) => &mut s.body,
            (2, Some(s)) if on_stream && a.downstream_data => &mut s.downstream_data,
            (3, Some(s)) if on_stream && a.upstream_data => &mut s.upstream_data,
            // Envoy's empty stand-in buffer outside the callback refuses writes.
            (0..=3, Some(_)) if on_stream => return Status::BadArgument,
            (0..=3, _) => return Status::NotFound,
            _ => {
                return match self.buffer(buffer_type) {
                    Ok(Some(_)) => Status::BadArgument,
                    Ok(None) => Status::NotFound,
                    Err(s) => s,
                }
            }
        };
        if start == 0 {
            let drain = length.min(target.len());
            target.splice(..drain, data.iter().copied());
            Status::Ok
        } else if start >= target.len() {
            target.extend_from_slice(data);
            Status::Ok
        } else {
            Status::BadArgument
        }
    }

    pub fn defer(&mut self, action: HostAction) {
        let ctx = self.context();
        self.actions.push((ctx, action));
    }

    /// Resolves a property path to its encoded value.
    pub fn property(&self, path: &[u8]) -> Result<Vec<u8>, Status> {
        let segs = split_path(path);
        let Some(top) = segs.first() else {
            return Err(Status::NotFound);
        };
        let stream = if self.on_stream() || self.current_context != self.root_context {
            self.stream.as_deref()
        } else {
            None
        };
        if let Some(s) = stream {
            if let Some(found) = s.overrides.lookup(&segs) {
                return found.ok_or(Status::NotFound)?.encode();
            }
        }
        if let Some(found) = self.info.properties.lookup(&segs) {
            return found.ok_or(Status::NotFound)?.encode();
        }
        if let Some(v) = self.well_known(top, stream) {
            return v.lookup(&segs[1..]).ok_or(Status::NotFound)?.encode();
        }
        if let Some(s) = stream {
            if let Some((_, v)) = s
                .guest_properties
                .iter()
                .rev()
                .find(|(k, _)| k.as_slice() == path)
            {
                return Ok(v.clone());
            }
            if let Some((_, v)) = s
                .guest_properties
                .iter()
                .rev()
                .find(|(k, _)| k.as_slice() == *top)
            {
                return Ok(v.clone());
            }
        }
        Err(Status::NotFound)
    }

    fn well_known(&self, top: &[u8], stream: Option<&Stream>) -> Option<PropValue> {
        let info = &self.info;
        let s = |v: &str| PropValue::Str(v.to_string());
        Some(match top {
            b"plugin_name" => s(&info.name),
            b"plugin_root_id" => s(&info.root_id),
            b"plugin_vm_id" => s(&info.vm_id),
            // Like Envoy, the header-derived attributes live only as long as the filter's
            // request header map does (NotFound once the request continued).
            b"request" => request_props(
                stream?,
                self.access.request_headers || self.access.log_phase,
            ),
            b"response" => response_props(stream?),
            b"source" => address_props(&stream?.source_address),
            b"destination" => address_props(&stream?.destination_address),
            b"upstream" => {
                let mut props = address_props(stream?.upstream_address.as_deref()?);
                // The upstream connection's own end: a stand-in ephemeral port.
                if let PropValue::Map(m) = &mut props {
                    m.insert("local_address".into(), s("127.0.0.1:40000"));
                }
                props
            }
            b"connection_id" => PropValue::UInt(stream?.connection_id),
            b"connection" => PropValue::map([
                ("id", PropValue::UInt(stream?.connection_id)),
                ("mtls", PropValue::Bool(false)),
                // No TLS, so no SNI: Envoy answers an empty name.
                ("requested_server_name", s("")),
            ]),
            // Envoy 1.40 serves the node only here (`node` is NotFound); a bootstrap's
            // `node` reaches the plugin as an override of `xds.node`.
            b"xds" => {
                let mut m = BTreeMap::new();
                m.insert(
                    "node".to_string(),
                    PropValue::map([
                        ("id", s("")),
                        ("cluster", s("")),
                        ("metadata", PropValue::Map(BTreeMap::new())),
                        (
                            "locality",
                            PropValue::map([
                                ("region", s("")),
                                ("zone", s("")),
                                ("sub_zone", s("")),
                            ]),
                        ),
                    ]),
                );
                if let Some(st) = stream {
                    // The listener's filter chain has no name; its direction is UNSPECIFIED.
                    m.insert("filter_chain_name".to_string(), s(""));
                    m.insert("listener_direction".to_string(), PropValue::Int(0));
                    if let Some(c) = &st.upstream_cluster {
                        m.insert("cluster_name".to_string(), s(c));
                    }
                }
                if let Some(vh) = stream.and_then(|s| s.virtual_host.as_ref()) {
                    m.insert("virtual_host_name".to_string(), s(vh));
                }
                if let Some(r) = stream.and_then(|s| s.route.as_ref()) {
                    m.insert("route_name".to_string(), s(&r.route_name));
                    m.insert("virtual_host_name".to_string(), s(&r.virtual_host));
                    if let Some(c) = &r.cluster {
                        m.insert("cluster_name".to_string(), s(c));
                    }
                }
                PropValue::Map(m)
            }
            b"route_name" => s(&stream?.route.as_ref()?.route_name),
            b"cluster_name" => match stream?.route.as_ref() {
                Some(r) => s(r.cluster.as_deref()?),
                None => s(stream?.upstream_cluster.as_deref()?),
            },
            b"filter_state" => PropValue::Map(
                stream?
                    .filter_state
                    .iter()
                    .map(|(k, v)| (k.clone(), PropValue::Bytes(v.clone())))
                    .collect(),
            ),
            _ => return None,
        })
    }
}

fn headers_prop(h: &HeaderMap) -> PropValue {
    let mut m = BTreeMap::new();
    for (k, v) in h.iter() {
        // CEL's header map joins repeated values with commas.
        m.entry(k.to_string())
            .and_modify(|e: &mut PropValue| {
                if let PropValue::Bytes(b) = e {
                    b.push(b',');
                    b.extend_from_slice(v);
                }
            })
            .or_insert_with(|| PropValue::Bytes(v.to_vec()));
    }
    PropValue::Map(m)
}

fn request_props(s: &Stream, headers_visible: bool) -> PropValue {
    let mut m = BTreeMap::new();
    // A TCP connection's stream info has no protocol.
    if !s.network {
        m.insert("protocol".into(), PropValue::str("HTTP/1.1"));
    }
    m.insert("time".into(), PropValue::Timestamp(s.start_nanos as i64));
    m.insert("size".into(), PropValue::Int(s.request_size as i64));
    if let Some(end) = s.end_nanos {
        m.insert(
            "duration".into(),
            PropValue::Duration(end.saturating_sub(s.start_nanos) as i64),
        );
    }
    if !headers_visible {
        return PropValue::Map(m);
    }
    let h = &s.request_headers;
    let mut put = |k: &str, v: Option<&[u8]>| {
        if let Some(v) = v {
            m.insert(k.to_string(), PropValue::Bytes(v.to_vec()));
        }
    };
    let path = h.get(":path");
    put("path", path);
    put(
        "url_path",
        path.map(|p| p.split(|b| *b == b'?').next().unwrap_or(p)),
    );
    put(
        "query",
        // Envoy answers an empty query for a path without one.
        path.map(|p| match p.iter().position(|b| *b == b'?') {
            Some(i) => &p[i + 1..],
            None => &[][..],
        }),
    );
    put("host", h.get(":authority"));
    put("scheme", h.get(":scheme"));
    put("method", h.get(":method"));
    put("referer", h.get("referer"));
    put("useragent", h.get("user-agent"));
    put("id", h.get("x-request-id"));
    m.insert("headers".into(), headers_prop(h));
    PropValue::Map(m)
}

/// `flags` (Envoy's response flags, none here) is there from the start; the rest once there
/// is a response.
fn response_props(s: &Stream) -> PropValue {
    let mut m = BTreeMap::new();
    m.insert("flags".to_string(), PropValue::UInt(0));
    if let Some(code) = s.response_code {
        m.insert("code".to_string(), PropValue::Int(i64::from(code)));
        m.insert(
            "code_details".to_string(),
            PropValue::str(s.response_details.clone()),
        );
        m.insert("headers".to_string(), headers_prop(&s.response_headers));
        m.insert("trailers".to_string(), headers_prop(&s.response_trailers));
        m.insert(
            "grpc_status".to_string(),
            PropValue::Int(grpc_status(s, code)),
        );
    }
    PropValue::Map(m)
}

/// Envoy's `response.grpc_status`: the `grpc-status` of the trailers or headers, else the
/// HTTP code mapped like `Grpc::Utility::httpToGrpcStatus`.
fn grpc_status(s: &Stream, code: u16) -> i64 {
    let given = [&s.response_trailers, &s.response_headers]
        .iter()
        .find_map(|h| h.get_str("grpc-status").and_then(|v| v.trim().parse().ok()));
    given.unwrap_or(match code {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        _ => 2,
    })
}

fn address_props(addr: &str) -> PropValue {
    let port = addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<i64>().ok());
    let mut m = BTreeMap::new();
    m.insert("address".to_string(), PropValue::str(addr));
    if let Some(p) = port {
        m.insert("port".to_string(), PropValue::Int(p));
    }
    PropValue::Map(m)
}
