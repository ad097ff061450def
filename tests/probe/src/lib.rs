//! The fidelity probe. On each request it calls the proxy-wasm 0.2.1 host functions through
//! the raw ABI (so every status code is seen, and none makes the SDK panic), writes what
//! each returned into a JSON object, and answers the request with it as a local reply.
//! The same request through Envoy and through host-sim must produce the same report.
//!
//! A root id ending in `.tcp` makes it a network filter instead (see `TcpProbe`): one TCP
//! connection before `tcp_proxy`, whose report replaces the upstream's echo on the way down.

#![cfg(target_arch = "wasm32")]

use std::fmt::Write as _;

mod abi;

use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, PeerType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProbeRoot { tcp: false, service: false }) });
}}

const REQUEST_HEADERS: u32 = 0;
const REQUEST_TRAILERS: u32 = 1;
const RESPONSE_HEADERS: u32 = 2;
const RESPONSE_TRAILERS: u32 = 3;
const REQUEST_BODY: u32 = 0;
const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
const HTTP_CALL_RESPONSE_BODY: u32 = 4;
const RESPONSE_BODY: u32 = 1;
const GRPC_RECEIVE_BUFFER: u32 = 5;
const GRPC_INITIAL_METADATA: u32 = 4;
const GRPC_TRAILING_METADATA: u32 = 5;
/// The gRPC flow's cluster (a real gRPC server in the test) and its two methods: `Ok`
/// answers `pong:` and the request message, `Fail` answers PERMISSION_DENIED.
const GRPC_CLUSTER: &str = "grpc";
const GRPC_SERVICE: &str = "probe.Echo";
/// The singleton service's queue (root id `probe.service`): a message starts its ticks.
const SERVICE_QUEUE: &str = "probe_service_queue";
const SERVICE_TICKS: &str = "probe/service_ticks";
/// The streams whose `on_log` and `on_done` go to shared data for `GET /late`.
const LOGGED_STREAMS: &[&str] = &["report", "flow", "trailers"];
const BACKEND: &str = "backend";

/// A report value: UTF-8 text as is, anything else as hex.
fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => bytes.iter().fold(String::from("hex:"), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        }),
    }
}

fn property(path: &[&str]) -> (u32, Vec<u8>) {
    let joined = path.join("\0");
    abi::get_property(joined.as_bytes())
}

/// A dotted property path as segments; header names and filter-state keys may hold dots.
fn segments(path: &str) -> Vec<&str> {
    if let Some((top, h)) = path.split_once(".headers.") {
        return vec![top, "headers", h];
    }
    match path.strip_prefix("filter_state.") {
        Some(key) => vec!["filter_state", key],
        None => path.split('.').collect(),
    }
}

/// Records each property as `property <path>`, followed by ` <at>` when `at` is not empty.
fn record_properties(r: &mut Report, paths: &[&str], at: &str) {
    for path in paths {
        let (status, v) = property(&segments(path));
        let key = if at.is_empty() {
            format!("property {path}")
        } else {
            format!("property {path} {at}")
        };
        r.put(&key, status, show(&v));
    }
}

fn header(map: u32, key: &str) -> (u32, Vec<u8>) {
    abi::get_header_map_value(map, key.as_bytes())
}

/// Decodes proxy-wasm's serialized map: count, then (key len, value len) pairs, then the
/// NUL-terminated keys and values.
fn pairs(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let word = |i: usize| {
        bytes
            .get(i..i + 4)
            .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize)
    };
    let count = word(0);
    let mut out = Vec::new();
    let mut data = 4 + count * 8;
    for i in 0..count {
        let (kl, vl) = (word(4 + i * 8), word(8 + i * 8));
        let k = bytes.get(data..data + kl).unwrap_or_default();
        data += kl + 1;
        let v = bytes.get(data..data + vl).unwrap_or_default();
        data += vl + 1;
        out.push((String::from_utf8_lossy(k).into_owned(), v.to_vec()));
    }
    out
}

#[derive(Default)]
struct Report(Vec<(String, String)>);

impl Report {
    fn put(&mut self, key: &str, status: u32, value: impl Into<String>) {
        self.0
            .push((key.to_string(), format!("{status}:{}", value.into())));
    }

    fn json(&self) -> String {
        let mut s = String::from("{\n");
        for (i, (k, v)) in self.0.iter().enumerate() {
            let esc = |t: &str| t.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                s,
                "  \"{}\": \"{}\"{}",
                esc(k),
                esc(v),
                if i + 1 < self.0.len() { "," } else { "" }
            );
        }
        s.push('}');
        s
    }
}

/// `tcp`: the plugin's root id ends in `.tcp`, so it runs as a network filter; `service`:
/// it ends in `.service`, a singleton service that starts ticking when its queue gets a
/// message and counts its ticks in shared data (the `/service-tick` stream reads them).
struct ProbeRoot {
    tcp: bool,
    service: bool,
}

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let root_id = property(&["plugin_root_id"]).1;
        self.tcp = root_id.ends_with(b".tcp");
        self.service = root_id.ends_with(b".service");
        if self.service {
            abi::register_shared_queue(SERVICE_QUEUE.as_bytes());
        }
        true
    }

    fn on_queue_ready(&mut self, id: u32) {
        // The HTTP probe's own queue (registered from a stream) notifies its root too.
        if !self.service {
            return;
        }
        let _ = abi::dequeue_shared_queue(id);
        abi::set_tick_period_milliseconds(100);
    }

    fn on_tick(&mut self) {
        if !self.service {
            return;
        }
        let ticks = shared_text(SERVICE_TICKS).parse::<u32>().unwrap_or(0) + 1;
        let v = ticks.to_string();
        abi::set_shared_data(SERVICE_TICKS.as_bytes(), v.as_bytes(), 0);
        abi::set_tick_period_milliseconds(0);
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(if self.tcp {
            ContextType::StreamContext
        } else {
            ContextType::HttpContext
        })
    }

    fn create_stream_context(&self, _id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(TcpProbe::default()))
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe::default()))
    }
}

/// A shared-data value as text (empty when missing).
fn shared_text(key: &str) -> String {
    String::from_utf8_lossy(&abi::get_shared_data(key.as_bytes()).1).into_owned()
}

/// One stream. `GET /...` is answered at once with the report of every host call from the
/// request headers; `POST /flow` goes through the whole stream (an `http_call`, the request
/// body, the upstream's response) and returns its report as the response body;
/// `POST /flow-trailers` (chunked, with trailers) does the same for the request trailers.
/// Each of these streams records its `on_log` and `on_done` in shared data, which a later
/// `GET /late` receives as its body (`--late--\n`, one `{"k": "v"}` line per entry, `--end--\n`).
#[derive(Default)]
struct Probe {
    flow: Report,
    /// Which stream this is: `report`, `flow`, `trailers`, or `reader` (`GET /late`).
    name: &'static str,
    trailers: Report,
    /// The last request body callback of the trailers flow: size and end of stream.
    last_body: Option<(usize, bool)>,
    /// Late callbacks so far (`on_log`, `on_done`), to record their order.
    late_callbacks: u32,
    /// The gRPC flow: its report, and the calls still waiting for an answer (token, label).
    grpc: Report,
    grpc_pending: Vec<(u32, &'static str)>,
    grpc_callbacks: u32,
}

/// The request's properties, read from its headers and again in the log phase.
const REQUEST_PROPERTIES: &[&str] = &[
    "request.path",
    "request.url_path",
    "request.host",
    "request.scheme",
    "request.method",
    "request.query",
    "request.protocol",
    "request.headers.x-probe-in",
    "request.id",
];

fn probe_properties(r: &mut Report) {
    record_properties(r, REQUEST_PROPERTIES, "");
    record_properties(
        r,
        &[
            "source.address",
            "source.port",
            "destination.address",
            "destination.port",
            "connection.mtls",
            "plugin_name",
            "plugin_root_id",
            "plugin_vm_id",
            "node.id",
            "xds.node.id",
            "xds.cluster_name",
            "xds.route_name",
            "response.code",
            "no.such.property",
        ],
        "",
    );
    let (k, v) = ("probe.custom", b"value");
    let s = abi::set_property(k.as_bytes(), v);
    r.put("set_property probe.custom", s, "");
    let (status, v) = property(&["probe.custom"]);
    r.put("property probe.custom after set", status, show(&v));
}

/// One header-map edit through the raw ABI.
enum Edit {
    Add(&'static str, &'static str),
    Replace(&'static str, &'static str),
    Remove(&'static str),
}

impl Edit {
    fn key(&self) -> &'static str {
        match self {
            Edit::Add(k, _) | Edit::Replace(k, _) | Edit::Remove(k) => k,
        }
    }

    /// The host's status for the edit on `map`.
    fn apply(&self, map: u32) -> u32 {
        match self {
            Edit::Add(k, v) => abi::add_header_map_value(map, k.as_bytes(), v.as_bytes()),
            Edit::Replace(k, v) => abi::replace_header_map_value(map, k.as_bytes(), v.as_bytes()),
            Edit::Remove(k) => abi::remove_header_map_value(map, k.as_bytes()),
        }
    }
}

/// Records `get_header_map_value` of each key as `<label> <key>`.
fn record_values(r: &mut Report, map: u32, label: &str, keys: &[&str]) {
    for key in keys {
        let (status, v) = header(map, key);
        r.put(&format!("{label} {key}"), status, show(&v));
    }
}

fn probe_headers(r: &mut Report) {
    record_values(
        r,
        REQUEST_HEADERS,
        "request header",
        &[
            ":path",
            ":method",
            ":authority",
            "x-probe-in",
            "x-missing",
            "X-Probe-In",
        ],
    );
    let (s, size) = abi::get_header_map_size(REQUEST_HEADERS);
    r.put(
        "request header map size",
        s,
        if size > 0 { "positive" } else { "zero" },
    );
    // (what, edit, header read back afterwards)
    let edits: [(&str, Edit, &str); 6] = [
        ("add header", Edit::Add("x-probe-added", "1"), ""),
        (
            "add header again",
            Edit::Add("x-probe-added", "2"),
            "get header added twice",
        ),
        (
            "replace header",
            Edit::Replace("x-probe-in", "replaced"),
            "get replaced header",
        ),
        (
            "replace missing header",
            Edit::Replace("x-probe-new", "fresh"),
            "get header created by replace",
        ),
        (
            "remove header",
            Edit::Remove("x-probe-remove"),
            "get removed header",
        ),
        ("remove missing header", Edit::Remove("x-never-there"), ""),
    ];
    for (what, edit, read_back) in edits {
        r.put(what, edit.apply(REQUEST_HEADERS), "");
        if !read_back.is_empty() {
            let (status, v) = header(REQUEST_HEADERS, edit.key());
            r.put(read_back, status, show(&v));
        }
    }
    let (status, raw) = abi::get_header_map_pairs(REQUEST_HEADERS);
    // Header names only: values such as x-request-id differ on every request.
    let mut names: Vec<String> = pairs(&raw)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(':') || k.starts_with("x-probe"))
        .collect();
    names.sort();
    r.put(
        "request header names (pseudo and x-probe)",
        status,
        names.join(","),
    );
    let (status, v) = header(RESPONSE_HEADERS, ":status");
    r.put("response header before response", status, show(&v));
}

fn probe_shared(r: &mut Report) {
    let k = "probe/shared";
    let k = k.as_bytes();
    let (s, v, _) = abi::get_shared_data(k);
    r.put("shared get missing", s, show(&v));
    r.put("shared set cas 0", abi::set_shared_data(k, b"a", 0), "");
    let (s, v, cas) = abi::get_shared_data(k);
    r.put(
        "shared get",
        s,
        format!(
            "{} cas {}",
            show(&v),
            if cas > 0 { "nonzero" } else { "zero" }
        ),
    );
    r.put(
        "shared set stale cas",
        abi::set_shared_data(k, b"b", cas.wrapping_add(7)),
        "",
    );
    r.put(
        "shared set current cas",
        abi::set_shared_data(k, b"c", cas),
        "",
    );
    let (s, v, cas2) = abi::get_shared_data(k);
    r.put(
        "shared get after cas set",
        s,
        format!("{} cas changed {}", show(&v), cas2 != cas),
    );
}

fn probe_queues(r: &mut Report) {
    let name = "probe_queue";
    let (s, id) = abi::register_shared_queue(name.as_bytes());
    r.put("queue register", s, "");
    let vm = b"wasmgate";
    let (s, rid) = abi::resolve_shared_queue(vm, name.as_bytes());
    r.put("queue resolve same", s, format!("{}", rid == id));
    let (s, _) = abi::resolve_shared_queue(vm, b"no_such_queue");
    r.put("queue resolve missing", s, "");
    r.put("queue enqueue", abi::enqueue_shared_queue(id, b"item"), "");
    let (s, v) = abi::dequeue_shared_queue(id);
    r.put("queue dequeue", s, show(&v));
    let (s, v) = abi::dequeue_shared_queue(id);
    r.put("queue dequeue empty", s, show(&v));
    let (s, _) = abi::dequeue_shared_queue(id + 1000);
    r.put("queue dequeue unknown id", s, "");
}

fn probe_metrics(r: &mut Report) {
    for (kind, name) in [
        (0u32, "probe_counter"),
        (1, "probe_gauge"),
        (2, "probe_histogram"),
    ] {
        let (s, id) = abi::define_metric(kind, name.as_bytes());
        r.put(&format!("metric define {name}"), s, "");
        let inc = abi::increment_metric(id, 3);
        r.put(&format!("metric increment {name}"), inc, "");
        let rec = abi::record_metric(id, 5);
        r.put(&format!("metric record {name}"), rec, "");
        let (g, value) = abi::get_metric(id);
        r.put(&format!("metric get {name}"), g, value.to_string());
    }
    r.put("metric define bad type", abi::define_metric(9, b"x").0, "");
    r.put("metric get unknown id", abi::get_metric(0x7fff_fff0).0, "");
}

fn probe_misc(r: &mut Report) {
    let (s, t) = abi::get_current_time_nanoseconds();
    r.put(
        "current time",
        s,
        if t > 1_600_000_000_000_000_000 {
            "after 2020"
        } else {
            "before 2020"
        },
    );
    let (s, level) = abi::get_log_level();
    r.put("log level", s, level.to_string());
    for (name, args) in [
        ("clear_route_cache", &b""[..]),
        ("no_such_function", &b""[..]),
        ("set_envoy_filter_state", &b"\x0a\x03bad"[..]),
    ] {
        let (s, v) = abi::call_foreign_function(name.as_bytes(), args);
        r.put(&format!("foreign {name}"), s, show(&v));
    }
    let (s, v) = abi::get_buffer_bytes(REQUEST_BODY, 0, 100);
    r.put("request body at headers", s, show(&v));
    let (s, len, _) = abi::get_buffer_status(REQUEST_BODY);
    r.put("request body status at headers", s, len.to_string());
    let (s, _) = abi::http_call(b"no_such_cluster", &[], &[], &[], 1000);
    r.put("http_call unknown cluster, no headers", s, "");
    r.put(
        "tick period from a stream",
        abi::set_tick_period_milliseconds(1000),
        "",
    );
}

fn foreign(name: &str) -> u32 {
    abi::call_foreign_function(name.as_bytes(), &[]).0
}

fn positive(n: usize) -> &'static str {
    if n > 0 {
        "positive"
    } else {
        "zero"
    }
}

impl Context for Probe {
    fn on_done(&mut self) -> bool {
        self.record_done();
        true
    }

    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        if self.name == "grpc" {
            self.grpc_response(token, status, size);
            return;
        }
        self.flow
            .put("grpc_call response status", 0, status.to_string());
    }

    fn on_http_call_response(
        &mut self,
        _token: u32,
        headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let r = &mut self.flow;
        r.put("http_call response header count", 0, positive(headers));
        r.put("http_call response body size", 0, positive(body_size));
        for key in [":status", "x-backend"] {
            let (status, v) = header(HTTP_CALL_RESPONSE_HEADERS, key);
            r.put(
                &format!("http_call response header {key}"),
                status,
                show(&v),
            );
        }
        let (s, v) = abi::get_buffer_bytes(HTTP_CALL_RESPONSE_BODY, 0, body_size);
        r.put("http_call response body bytes", s, positive(v.len()));
        r.put(
            "continue request after http_call",
            abi::continue_stream(0),
            "",
        );
    }
}

/// What a gRPC callback can read: the host's status, the received message, both metadata
/// maps (a unary call exposes none in Envoy's ABI, the statuses show how they answer).
fn record_grpc_callback(r: &mut Report, label: &str, size: usize) {
    let (s, code, message) = abi::get_status();
    r.put(
        &format!("grpc {label} get_status"),
        s,
        format!("{code} {}", show(&message)),
    );
    let (s, len, _) = abi::get_buffer_status(GRPC_RECEIVE_BUFFER);
    r.put(&format!("grpc {label} message status"), s, len.to_string());
    let (s, v) = abi::get_buffer_bytes(GRPC_RECEIVE_BUFFER, 0, size.max(1));
    r.put(&format!("grpc {label} message"), s, show(&v));
    for (map, name) in [
        (GRPC_INITIAL_METADATA, "initial metadata"),
        (GRPC_TRAILING_METADATA, "trailing metadata"),
    ] {
        let (s, raw) = abi::get_header_map_pairs(map);
        let shown: Vec<String> = pairs(&raw)
            .into_iter()
            .map(|(k, v)| format!("{k}={}", show(&v)))
            .collect();
        r.put(&format!("grpc {label} {name} pairs"), s, shown.join(","));
        let (s, v) = header(map, "x-probe-grpc");
        r.put(&format!("grpc {label} {name} x-probe-grpc"), s, show(&v));
    }
}

/// `GET /grpc`: two unary calls to a real gRPC server, one that succeeds and one that fails;
/// each callback is recorded, and the report is the local reply once both have come.
/// `GET /service-tick`: wakes the singleton service (its ticks start) and goes to a slow
/// upstream; the service's tick count before the request and at the response show whether
/// the service ticked while the stream waited.
impl Probe {
    fn grpc_request_headers(&mut self) -> Action {
        for (label, method, message) in [("ok", "Ok", &b"ping"[..]), ("fail", "Fail", b"nope")] {
            let sent = self.dispatch_grpc_call(
                GRPC_CLUSTER,
                GRPC_SERVICE,
                method,
                vec![("x-probe-md", b"m1"), ("x-probe-call", label.as_bytes())],
                Some(message),
                std::time::Duration::from_secs(5),
            );
            match sent {
                Ok(token) => {
                    self.grpc.put(&format!("grpc {label} dispatch"), 0, "");
                    self.grpc_pending.push((token, label));
                }
                Err(e) => self
                    .grpc
                    .put(&format!("grpc {label} dispatch"), 99, format!("{e:?}")),
            }
        }
        if self.grpc_pending.is_empty() {
            self.grpc_reply();
        }
        Action::Pause
    }

    fn grpc_response(&mut self, token: u32, status: u32, size: usize) {
        self.grpc_callbacks += 1;
        let label = match self.grpc_pending.iter().position(|(t, _)| *t == token) {
            Some(i) => self.grpc_pending.remove(i).1,
            None => "unknown",
        };
        let r = &mut self.grpc;
        r.put(
            &format!("grpc callback {}", self.grpc_callbacks),
            0,
            format!("{label} status {status} size {size}"),
        );
        record_grpc_callback(r, label, size);
        if self.grpc_pending.is_empty() {
            self.grpc_reply();
        }
    }

    fn grpc_reply(&mut self) {
        let body = self.grpc.json();
        let _ = proxy_wasm::hostcalls::send_http_response(
            200,
            vec![("x-probe", "grpc")],
            Some(body.as_bytes()),
        );
    }

    fn service_tick_request_headers(&mut self) -> Action {
        let (s, id) = abi::resolve_shared_queue(b"wasmgate", SERVICE_QUEUE.as_bytes());
        let r = &mut self.flow;
        r.put("service queue resolve", s, "");
        r.put(
            "service queue enqueue",
            abi::enqueue_shared_queue(id, b"go"),
            "",
        );
        r.put("service ticks at request", 0, shared_text(SERVICE_TICKS));
        Action::Continue
    }

    fn service_tick_response_headers(&mut self) -> Action {
        let r = &mut self.flow;
        r.put("service ticks at response", 0, shared_text(SERVICE_TICKS));
        let report =
            r.0.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";");
        let key = "x-probe-service";
        abi::replace_header_map_value(RESPONSE_HEADERS, key.as_bytes(), report.as_bytes());
        Action::Continue
    }
}

impl Probe {
    fn flow_request_headers(&mut self, eos: bool) -> Action {
        let r = &mut self.flow;
        r.put("flow request headers end_of_stream", 0, eos.to_string());
        let routing = Edit::Replace("x-wasmgate-cluster", BACKEND);
        r.put("set routing header", routing.apply(REQUEST_HEADERS), "");
        r.put(
            "clear_route_cache after routing header",
            foreign("clear_route_cache"),
            "",
        );
        // Through the SDK: its dispatcher must know the token to deliver the callback.
        let sent = self.dispatch_http_call(
            BACKEND,
            vec![
                (":method", "GET"),
                (":path", "/call"),
                (":authority", BACKEND),
            ],
            None,
            vec![],
            std::time::Duration::from_secs(5),
        );
        let r = &mut self.flow;
        match sent {
            Ok(_) => r.put("http_call to a known cluster", 0, ""),
            Err(e) => r.put("http_call to a known cluster", 99, format!("{e:?}")),
        }
        let grpc = self.dispatch_grpc_call(
            "no_such_cluster",
            "probe.Service",
            "Call",
            vec![],
            Some(b"\x0a\x01x"),
            std::time::Duration::from_secs(5),
        );
        let r = &mut self.flow;
        match grpc {
            Ok(_) => r.put("grpc_call to an unknown cluster", 0, ""),
            Err(e) => r.put("grpc_call to an unknown cluster", 99, format!("{e:?}")),
        }
        set_pairs_with_one_more(r);
        Action::Pause
    }

    fn flow_request_body(&mut self, size: usize, eos: bool) -> Action {
        if !eos {
            return Action::Pause;
        }
        let r = &mut self.flow;
        let (s, v) = abi::get_buffer_bytes(REQUEST_BODY, 0, size);
        r.put("request body at end of stream", s, show(&v));
        let (s, len, _) = abi::get_buffer_status(REQUEST_BODY);
        r.put("request body status", s, len.to_string());
        let (s, v) = abi::get_buffer_bytes(REQUEST_BODY, 3, 4);
        r.put("request body slice 3..7", s, show(&v));
        let (s, v) = abi::get_buffer_bytes(REQUEST_BODY, size + 5, 4);
        r.put("request body slice past the end", s, show(&v));
        let new = b"PROBE-BODY";
        let s = abi::set_buffer_bytes(REQUEST_BODY, 0, size, new);
        r.put("replace request body", s, "");
        let (s, v) = abi::get_buffer_bytes(REQUEST_BODY, 0, 100);
        r.put("request body after replace", s, show(&v));
        Action::Continue
    }

    fn flow_response_headers(&mut self) -> Action {
        let r = &mut self.flow;
        for path in [
            &["response", "code"][..],
            &["xds", "cluster_name"],
            &["xds", "route_name"],
            &["request", "method"],
        ] {
            let (status, v) = property(path);
            r.put(
                &format!("property {} at response", path.join(".")),
                status,
                show(&v),
            );
        }
        let (status, v) = property(&["upstream", "address"]);
        r.put(
            "property upstream.address at response",
            status,
            if v.is_empty() { "empty" } else { "set" },
        );
        for key in [":status", "x-backend", "content-type"] {
            let (status, v) = header(RESPONSE_HEADERS, key);
            r.put(&format!("response header {key}"), status, show(&v));
        }
        let (status, v) = header(REQUEST_HEADERS, ":path");
        r.put("request header at response", status, show(&v));
        let added = Edit::Add("x-probe-response", "added");
        r.put("add response header", added.apply(RESPONSE_HEADERS), "");
        // The report replaces the body at its end, so its length changes.
        let length = Edit::Remove("content-length");
        r.put(
            "remove response content-length",
            length.apply(RESPONSE_HEADERS),
            "",
        );
        Action::Continue
    }

    fn flow_response_body(&mut self, size: usize, eos: bool) -> Action {
        if !eos {
            return Action::Pause;
        }
        let r = &mut self.flow;
        r.put("response body size at end of stream", 0, positive(size));
        let (s, len, _) = abi::get_buffer_status(RESPONSE_BODY);
        r.put("response body status", s, positive(len));
        let (s, v) = abi::get_buffer_bytes(RESPONSE_BODY, 0, 1);
        r.put("response body first byte", s, show(&v));
        let (s, v) = abi::get_buffer_bytes(RESPONSE_BODY, size + 1, 1);
        r.put("response body past the end", s, show(&v));
        let s = abi::set_buffer_bytes(RESPONSE_BODY, size + 5, 0, b"x");
        r.put("append to response body", s, "");
        let (s, v) = abi::get_buffer_bytes(REQUEST_BODY, 0, 100);
        r.put("request body at response body", s, show(&v));
        let (s, _) = abi::get_header_map_pairs(RESPONSE_HEADERS);
        r.put("response header pairs at response body", s, "");
        let report = self.flow.json();
        let s = abi::set_buffer_bytes(RESPONSE_BODY, 0, size + 1, report.as_bytes());
        if s != 0 {
            let _ = proxy_wasm::hostcalls::send_http_response(
                500,
                vec![],
                Some(b"the report could not replace the body"),
            );
        }
        Action::Continue
    }
}

/// Replaces the request header map with its own pairs plus `x-probe-pairs`.
fn set_pairs_with_one_more(r: &mut Report) {
    let (_, raw) = abi::get_header_map_pairs(REQUEST_HEADERS);
    let mut all = pairs(&raw);
    let before = all.len();
    all.push(("x-probe-pairs".into(), b"set".to_vec()));
    let mut out = (all.len() as u32).to_le_bytes().to_vec();
    for (k, v) in &all {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in &all {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    let s = abi::set_header_map_pairs(REQUEST_HEADERS, &out);
    r.put("set request header pairs plus one", s, "");
    let (_, raw) = abi::get_header_map_pairs(REQUEST_HEADERS);
    r.put(
        "request header count after set pairs",
        0,
        (pairs(&raw).len() as i64 - before as i64).to_string(),
    );
    let (s, v) = header(REQUEST_HEADERS, "x-probe-pairs");
    r.put("header added by set pairs", s, show(&v));
}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _n: usize, eos: bool) -> Action {
        let path = header(REQUEST_HEADERS, ":path").1;
        if path.starts_with(b"/late") {
            self.name = "reader";
            return send_late_entries();
        }
        if path.starts_with(b"/flow-trailers") {
            self.name = "trailers";
            return self.trailers_request_headers(eos);
        }
        if path.starts_with(b"/flow") {
            self.name = "flow";
            return self.flow_request_headers(eos);
        }
        if path.starts_with(b"/grpc") {
            self.name = "grpc";
            return self.grpc_request_headers();
        }
        if path.starts_with(b"/service-tick") {
            self.name = "service-tick";
            return self.service_tick_request_headers();
        }
        self.name = "report";
        let mut r = Report(Vec::new());
        probe_properties(&mut r);
        probe_headers(&mut r);
        probe_shared(&mut r);
        probe_queues(&mut r);
        probe_metrics(&mut r);
        probe_misc(&mut r);
        let body = r.json();
        let _ = proxy_wasm::hostcalls::send_http_response(
            200,
            vec![("x-probe", "report")],
            Some(body.as_bytes()),
        );
        Action::Pause
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        if self.name == "trailers" {
            // Buffered until the trailers, which look at it.
            self.last_body = Some((size, eos));
            return if eos { Action::Continue } else { Action::Pause };
        }
        self.flow_request_body(size, eos)
    }

    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        if self.name == "trailers" {
            self.trailers_request_trailers(n);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        if self.name == "service-tick" {
            return self.service_tick_response_headers();
        }
        if self.name == "trailers" {
            let r = &mut self.trailers;
            let (s, v) = header(REQUEST_TRAILERS, "x-probe-trailer");
            r.put("request trailer at response headers", s, show(&v));
            let (s, v) = header(RESPONSE_TRAILERS, "x-missing");
            r.put("response trailer at response headers", s, show(&v));
            let length = Edit::Remove("content-length");
            r.put(
                "remove response content-length",
                length.apply(RESPONSE_HEADERS),
                "",
            );
            return Action::Continue;
        }
        if self.flow.0.is_empty() {
            return Action::Continue;
        }
        self.flow_response_headers()
    }

    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        if self.name == "trailers" {
            if !eos {
                return Action::Pause;
            }
            let (s, v) = header(REQUEST_TRAILERS, "x-probe-trailer");
            self.trailers
                .put("request trailer at response body", s, show(&v));
            replace_body_with(size, &self.trailers.json());
            return Action::Continue;
        }
        if self.flow.0.is_empty() {
            return Action::Continue;
        }
        self.flow_response_body(size, eos)
    }

    fn on_log(&mut self) {
        if !LOGGED_STREAMS.contains(&self.name) {
            return;
        }
        self.late_callback("log");
        let mut r = Report::default();
        log_phase(&mut r);
        self.hand_over(r, "log");
    }
}

/// The shared-data key of the HTTP streams' late entries (`on_log`, `on_done`).
const HTTP_LATE_KEY: &str = "probe/http-late";

/// `GET /late`: answers with the late entries recorded so far.
fn send_late_entries() -> Action {
    let mut body = b"--late--\n".to_vec();
    body.extend(shared_get(HTTP_LATE_KEY).1);
    body.extend_from_slice(b"--end--\n");
    let _ = proxy_wasm::hostcalls::send_http_response(200, vec![("x-probe", "late")], Some(&body));
    Action::Pause
}

/// Replaces the whole (buffered) response body with `report`, or fails the stream with 500.
fn replace_body_with(size: usize, report: &str) {
    let s = abi::set_buffer_bytes(RESPONSE_BODY, 0, size + 1, report.as_bytes());
    if s != 0 {
        let _ = proxy_wasm::hostcalls::send_http_response(
            500,
            vec![],
            Some(b"the report could not replace the body"),
        );
    }
}

/// The response's properties read in the log phase, before [`REQUEST_PROPERTIES`].
const LOG_RESPONSE_PROPERTIES: &[&str] = &[
    "response.code",
    "response.code_details",
    "response.flags",
    "response.grpc_status",
    "response.headers.x-backend",
];

/// Properties read in the log phase after [`REQUEST_PROPERTIES`]. `request.duration` and `request.time` change with
/// every request (the test compares their status only).
const LOG_PROPERTIES: &[&str] = &[
    "request.duration",
    "request.time",
    "upstream.port",
    "upstream.local_address",
    "xds.cluster_name",
    "xds.route_name",
    "xds.virtual_host_name",
    "connection.id",
    "connection.mtls",
    "connection.requested_server_name",
    "connection.termination_details",
    "source.port",
    "no.such.property",
];

/// Properties, header maps and body buffers as `proxy_on_log` sees them.
fn log_phase(r: &mut Report) {
    record_properties(r, LOG_RESPONSE_PROPERTIES, "");
    record_properties(r, REQUEST_PROPERTIES, "");
    record_properties(r, LOG_PROPERTIES, "");
    upstream_address(r, "");
    for (map, name, key) in [
        (REQUEST_HEADERS, "request headers", ":path"),
        (REQUEST_TRAILERS, "request trailers", "x-probe-trailer"),
        (RESPONSE_HEADERS, "response headers", ":status"),
        (RESPONSE_TRAILERS, "response trailers", "x-missing"),
    ] {
        let (s, v) = header(map, key);
        r.put(&format!("{name} get {key}"), s, show(&v));
        let (s, v) = header(map, "x-never-there");
        r.put(&format!("{name} get missing"), s, show(&v));
        let (s, size) = abi::get_header_map_size(map);
        r.put(&format!("{name} size"), s, positive(size));
        let (s, raw) = abi::get_header_map_pairs(map);
        let mut names: Vec<String> = pairs(&raw)
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with(':') || k.starts_with("x-probe") || k == "x-backend")
            .collect();
        names.sort();
        r.put(&format!("{name} pairs"), s, names.join(","));
        for (what, edit) in [
            ("add", Edit::Add("x-probe-log", "1")),
            ("replace", Edit::Replace("x-probe-log", "2")),
            ("remove", Edit::Remove("x-probe-log")),
        ] {
            r.put(&format!("{name} {what}"), edit.apply(map), "");
        }
    }
    for (t, name) in [
        (REQUEST_BODY, "request body"),
        (RESPONSE_BODY, "response body"),
    ] {
        let (s, v) = buffer_status(t);
        r.put(&format!("{name} status"), s, v);
    }
}

impl Probe {
    /// Records that the late callback `what` came now (the n-th of this stream).
    fn late_callback(&mut self, what: &str) {
        self.late_callbacks += 1;
        let key = format!("{} callback {}", self.name, self.late_callbacks);
        late_to(HTTP_LATE_KEY, &key, 0, what);
    }

    /// Hands `r` to the reader, each key prefixed with the stream and the callback.
    fn hand_over(&self, r: Report, at: &str) {
        for (k, v) in r.0 {
            let (s, v) = v.split_once(':').unwrap_or(("?", &v));
            let key = format!("{} {at}: {k}", self.name);
            late_to(HTTP_LATE_KEY, &key, s.parse().unwrap_or(99), v);
        }
    }

    fn trailers_request_headers(&mut self, eos: bool) -> Action {
        let r = &mut self.trailers;
        r.put("request headers end_of_stream", 0, eos.to_string());
        let routing = Edit::Replace("x-wasmgate-cluster", BACKEND);
        r.put("set routing header", routing.apply(REQUEST_HEADERS), "");
        r.put(
            "clear_route_cache after routing header",
            foreign("clear_route_cache"),
            "",
        );
        Action::Continue
    }

    fn trailers_request_trailers(&mut self, n: usize) {
        let r = &mut self.trailers;
        let (size, eos) = self.last_body.unwrap_or_default();
        r.put(
            "last request body callback",
            0,
            format!("size {size} end_of_stream {eos}"),
        );
        r.put("trailers callback count", 0, n.to_string());
        record_values(
            r,
            REQUEST_TRAILERS,
            "trailer",
            &[
                "x-probe-trailer",
                "x-probe-trailer-remove",
                "x-missing",
                "X-Probe-Trailer",
            ],
        );
        let (s, count) = abi::get_header_map_size(REQUEST_TRAILERS);
        r.put("trailer map size", s, positive(count));
        let trailer_pairs = |r: &mut Report, what: &str| {
            let (s, raw) = abi::get_header_map_pairs(REQUEST_TRAILERS);
            let mut all: Vec<String> = pairs(&raw)
                .into_iter()
                .map(|(k, v)| format!("{k}={}", show(&v)))
                .collect();
            all.sort();
            r.put(what, s, all.join(","));
        };
        trailer_pairs(r, "trailer pairs");
        let edits: [(&str, Edit); 5] = [
            ("add trailer", Edit::Add("x-probe-trailer-added", "1")),
            ("add trailer again", Edit::Add("x-probe-trailer-added", "2")),
            ("replace trailer", Edit::Replace("x-probe-trailer", "t2")),
            (
                "replace missing trailer",
                Edit::Replace("x-probe-trailer-new", "fresh"),
            ),
            ("remove trailer", Edit::Remove("x-probe-trailer-remove")),
        ];
        for (what, edit) in edits {
            r.put(what, edit.apply(REQUEST_TRAILERS), "");
            let (s, v) = header(REQUEST_TRAILERS, edit.key());
            r.put(&format!("{what}: read back"), s, show(&v));
        }
        r.put(
            "remove missing trailer",
            Edit::Remove("x-never-there").apply(REQUEST_TRAILERS),
            "",
        );
        trailer_pairs(r, "trailer pairs after edits");
        let (s, v) = buffer_status(REQUEST_BODY);
        r.put("request body status at trailers", s, v);
        let (s, v) = buffer_bytes(REQUEST_BODY, 0, 100);
        r.put("request body at trailers", s, show(&v));
        r.put(
            "append to request body at trailers",
            set_buffer(REQUEST_BODY, 10_000, 0, b"+T"),
            "",
        );
        let (s, v) = buffer_bytes(REQUEST_BODY, 0, 100);
        r.put("request body after append at trailers", s, show(&v));
        let (s, v) = header(REQUEST_HEADERS, ":path");
        r.put("request header at trailers", s, show(&v));
        r.put(
            "add request header at trailers",
            Edit::Add("x-probe-late-header", "1").apply(REQUEST_HEADERS),
            "",
        );
        let (s, v) = header(RESPONSE_HEADERS, ":status");
        r.put("response header at trailers", s, show(&v));
        for key in ["request.path", "request.method", "xds.cluster_name"] {
            let segs: Vec<&str> = key.split('.').collect();
            let (s, v) = property(&segs);
            r.put(&format!("property {key} at trailers"), s, show(&v));
        }
    }
}

impl Probe {
    /// `on_done`: its order among the late callbacks, and what it can still read.
    fn record_done(&mut self) {
        if !LOGGED_STREAMS.contains(&self.name) {
            return;
        }
        self.late_callback("done");
        let mut r = Report::default();
        let (s, v) = header(REQUEST_HEADERS, ":path");
        r.put("request header :path", s, show(&v));
        let (s, v) = header(RESPONSE_HEADERS, ":status");
        r.put("response header :status", s, show(&v));
        for path in ["response.code", "request.path", "xds.cluster_name"] {
            let segs: Vec<&str> = path.split('.').collect();
            let (s, v) = property(&segs);
            r.put(&format!("property {path}"), s, show(&v));
        }
        self.hand_over(r, "done");
    }
}

// ---------------------------------------------------------------------------------------
// Network filter mode (root id `*.tcp`), for one connection before `tcp_proxy` to a backend
// that greets with `backend\n` and echoes. The client waits for the (edited) greeting, which
// ends in `GREETING_END`, then sends one line; the probe edits it on the way up, and when the
// echo comes back replaces it with `--report--\n<JSON>\n--end--\n`. What happens after that
// (end-of-stream data, the close callbacks) goes to shared data, one `{"k": "v"}` line per
// entry (so its order between the two directions does not matter), and a later connection
// (a "reader": one that finds those lines at its start) gets them instead of its greeting,
// as `--late--\n<lines>--end--\n`.
// ---------------------------------------------------------------------------------------

const DOWNSTREAM_DATA: u32 = 2;
const UPSTREAM_DATA: u32 = 3;
const GREETING_END: &[u8] = b"#\n";
const LATE_KEY: &str = "probe/tcp-late";
const BUFFER_NAMES: [(u32, &str); 4] = [
    (REQUEST_BODY, "request body"),
    (RESPONSE_BODY, "response body"),
    (DOWNSTREAM_DATA, "downstream data"),
    (UPSTREAM_DATA, "upstream data"),
];

#[derive(Default)]
struct TcpProbe {
    /// This connection only fetches the late entries of an earlier one.
    reader: bool,
    report: Report,
    downstream_seen: bool,
    greeting_seen: bool,
    echo: Vec<u8>,
    sent: bool,
    closes: u32,
}

fn shared_get(key: &str) -> (u32, Vec<u8>, u32) {
    abi::get_shared_data(key.as_bytes())
}

/// One entry the report cannot hold (it was sent already): a line of the late entries.
fn late(key: &str, status: u32, value: impl Into<String>) {
    late_to(LATE_KEY, key, status, value);
}

/// Appends `{"key": "status:value"}` to the lines in shared data under `shared`.
fn late_to(shared: &str, key: &str, status: u32, value: impl Into<String>) {
    let esc = |t: &str| t.replace('\\', "\\\\").replace('"', "\\\"");
    let line = format!(
        "{{\"{}\": \"{status}:{}\"}}\n",
        esc(key),
        esc(&value.into())
    );
    for _ in 0..10 {
        let (_, mut lines, cas) = shared_get(shared);
        lines.extend_from_slice(line.as_bytes());
        let s = abi::set_shared_data(shared.as_bytes(), &lines, cas);
        if s == 0 {
            return;
        }
    }
}

fn buffer_status(t: u32) -> (u32, String) {
    let (s, len, flags) = abi::get_buffer_status(t);
    (s, format!("len {len} flags {flags}"))
}

fn buffer_bytes(t: u32, start: usize, max: usize) -> (u32, Vec<u8>) {
    abi::get_buffer_bytes(t, start, max)
}

fn set_buffer(t: u32, start: usize, len: usize, data: &[u8]) -> u32 {
    abi::set_buffer_bytes(t, start, len, data)
}

/// `upstream.address` changes with every backend: only whether it is there is reported.
fn upstream_address(r: &mut Report, at: &str) {
    let (status, v) = property(&["upstream", "address"]);
    r.put(
        &format!("property upstream.address {at}"),
        status,
        if v.is_empty() { "empty" } else { "set" },
    );
}

const CONNECTION_PROPERTIES: &[&str] = &[
    "source.address",
    "source.port",
    "destination.address",
    "destination.port",
    "connection.id",
    "connection_id",
    "connection.mtls",
    "connection.requested_server_name",
    "connection.tls_version",
    "connection.termination_details",
    "upstream.port",
    "upstream.local_address",
    "plugin_name",
    "plugin_root_id",
    "plugin_vm_id",
    "node.id",
    "xds.node.id",
    "xds.cluster_name",
    "xds.route_name",
    "xds.listener_direction",
    "xds.filter_chain_name",
    "request.path",
    "request.protocol",
    "request.size",
    "response.code",
    "response.flags",
    "filter_state.envoy.tcp_proxy.cluster",
    "no.such.property",
];

const DATA_PROPERTIES: &[&str] = &[
    "upstream.port",
    "xds.cluster_name",
    "response.flags",
    "connection.termination_details",
];

/// Status and contents of every buffer type from a callback that is not `own`'s.
fn other_buffers(r: &mut Report, at: &str, own: Option<u32>) {
    for (t, name) in BUFFER_NAMES {
        if Some(t) == own {
            continue;
        }
        let (s, v) = buffer_status(t);
        r.put(&format!("{name} status {at}"), s, v);
        let (s, v) = buffer_bytes(t, 0, 100);
        r.put(&format!("{name} bytes {at}"), s, show(&v));
        let s = set_buffer(t, 0, 0, b"x");
        r.put(&format!("{name} prepend {at}"), s, "");
    }
}

/// Header-map calls, which have no map in a network filter.
fn tcp_header_maps(r: &mut Report) {
    for (map, name) in [(REQUEST_HEADERS, "request"), (RESPONSE_HEADERS, "response")] {
        let (s, v) = header(map, ":path");
        r.put(&format!("{name} header get"), s, show(&v));
        let (s, v) = abi::get_header_map_pairs(map);
        r.put(
            &format!("{name} header pairs"),
            s,
            pairs(&v).len().to_string(),
        );
        let (s, size) = abi::get_header_map_size(map);
        r.put(&format!("{name} header map size"), s, size.to_string());
        for (what, edit) in [
            ("add", Edit::Add("x-probe", "1")),
            ("replace", Edit::Replace("x-probe", "2")),
            ("remove", Edit::Remove("x-probe")),
        ] {
            r.put(&format!("{name} header {what}"), edit.apply(map), "");
        }
        let empty = 0u32.to_le_bytes();
        let s = abi::set_header_map_pairs(map, &empty);
        r.put(&format!("{name} header set pairs"), s, "");
    }
}

fn set_filter_state(key: &str, value: &str) -> u32 {
    // SetEnvoyFilterStateArguments { path = 1, value = 2 }.
    let mut args = vec![0x0a, key.len() as u8];
    args.extend_from_slice(key.as_bytes());
    args.extend_from_slice(&[0x12, value.len() as u8]);
    args.extend_from_slice(value.as_bytes());
    let name = "set_envoy_filter_state";
    abi::call_foreign_function(name.as_bytes(), &args).0
}

/// What each direction records at its first data chunk (buffer, size, end of stream),
/// before editing it with the two marks.
fn record_first_chunk(
    r: &mut Report,
    label: &str,
    chunk: (u32, usize, bool),
    marks: (&[u8], &[u8]),
) {
    let (buffer, size, eos) = chunk;
    r.put(
        &format!("{label} callback"),
        0,
        format!("size {size} end_of_stream {eos}"),
    );
    let at = format!("at {label}");
    upstream_address(r, &at);
    record_properties(r, DATA_PROPERTIES, &at);
    other_buffers(r, &at, Some(buffer));
    edit_data(r, buffer, label, size, marks.0, marks.1);
}

/// Reads, slices and edits the data buffer `t` of the running callback; what `set` calls
/// answer, and the bytes that go on.
fn edit_data(r: &mut Report, t: u32, name: &str, size: usize, first: &[u8], last: &[u8]) {
    let (s, v) = buffer_status(t);
    r.put(&format!("{name} status"), s, v);
    let (s, v) = buffer_bytes(t, 0, 100);
    r.put(&format!("{name} bytes"), s, show(&v));
    let (s, v) = buffer_bytes(t, 1, 2);
    r.put(&format!("{name} slice 1..3"), s, show(&v));
    let (s, v) = buffer_bytes(t, size + 3, 4);
    r.put(&format!("{name} slice past the end"), s, show(&v));
    r.put(&format!("{name} prepend"), set_buffer(t, 0, 0, first), "");
    r.put(
        &format!("{name} append"),
        set_buffer(t, 10_000, 0, last),
        "",
    );
    r.put(
        &format!("{name} replace in the middle"),
        set_buffer(t, 2, 1, b"x"),
        "",
    );
    r.put(
        &format!("{name} replace a shorter prefix"),
        set_buffer(t, 0, 1, b"="),
        "",
    );
    let (s, v) = buffer_bytes(t, 0, 100);
    r.put(&format!("{name} bytes after edits"), s, show(&v));
}

impl TcpProbe {
    fn end_of_stream(&mut self, t: u32, name: &str, size: usize, eos: bool) {
        late(
            &format!("{name} at end of stream"),
            0,
            format!("size {size} end_of_stream {eos}"),
        );
        let (s, v) = buffer_status(t);
        late(&format!("{name} status at end of stream"), s, v);
    }

    fn close(&mut self, what: &str) {
        if self.reader {
            return;
        }
        self.closes += 1;
        late(&format!("close callback {}", self.closes), 0, what);
        let name = what.split(' ').next().unwrap_or(what);
        let mut r = Report::default();
        upstream_address(&mut r, "");
        record_properties(&mut r, DATA_PROPERTIES, "");
        for (t, buffer) in [
            (DOWNSTREAM_DATA, "downstream data"),
            (UPSTREAM_DATA, "upstream data"),
        ] {
            let (s, v) = buffer_status(t);
            r.put(&format!("{buffer} status"), s, v);
        }
        for (k, v) in r.0 {
            let (s, v) = v.split_once(':').unwrap_or(("?", &v));
            late(&format!("{name}: {k}"), s.parse().unwrap_or(99), v);
        }
    }
}

impl Context for TcpProbe {
    fn on_done(&mut self) -> bool {
        self.close("done");
        true
    }
}

impl StreamContext for TcpProbe {
    fn on_new_connection(&mut self) -> Action {
        if shared_get(LATE_KEY).0 == 0 {
            self.reader = true;
            return Action::Continue;
        }
        let r = &mut self.report;
        record_properties(r, CONNECTION_PROPERTIES, "at new connection");
        upstream_address(r, "at new connection");
        let (k, v) = ("probe.custom", b"tcp");
        let s = abi::set_property(k.as_bytes(), v);
        r.put("set_property probe.custom", s, "");
        let (status, v) = property(&["probe.custom"]);
        r.put("property probe.custom after set", status, show(&v));
        tcp_header_maps(r);
        other_buffers(r, "at new connection", None);
        r.put(
            "set_envoy_filter_state envoy.tcp_proxy.cluster",
            set_filter_state("envoy.tcp_proxy.cluster", BACKEND),
            "",
        );
        r.put(
            "set_envoy_filter_state unknown key",
            set_filter_state("probe.no.such.key", BACKEND),
            "",
        );
        record_properties(
            r,
            &["filter_state.envoy.tcp_proxy.cluster"],
            "after set_envoy_filter_state",
        );
        probe_shared(r);
        probe_queues(r);
        probe_metrics(r);
        probe_misc(r);
        for (stream, name) in [
            (0, "request"),
            (1, "response"),
            (2, "downstream"),
            (3, "upstream"),
            (9, "unknown"),
        ] {
            let s = abi::continue_stream(stream);
            r.put(&format!("continue_stream {name}"), s, "");
        }
        r.put("close_stream unknown", abi::close_stream(9), "");
        let s = abi::send_local_response(200, b"probe", b"local", &[], -1);
        r.put("send_local_response", s, "");
        Action::Continue
    }

    fn on_downstream_data(&mut self, size: usize, eos: bool) -> Action {
        if self.reader {
            return Action::Continue;
        }
        if size == 0 {
            self.end_of_stream(DOWNSTREAM_DATA, "downstream data", size, eos);
            return Action::Continue;
        }
        if std::mem::replace(&mut self.downstream_seen, true) {
            return Action::Continue;
        }
        let chunk = (DOWNSTREAM_DATA, size, eos);
        record_first_chunk(&mut self.report, "downstream data", chunk, (b"{", b"}"));
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, eos: bool) -> Action {
        if self.reader {
            if size > 0 && !std::mem::replace(&mut self.sent, true) {
                let mut text = b"--late--\n".to_vec();
                text.extend(shared_get(LATE_KEY).1);
                text.extend_from_slice(b"--end--\n");
                set_buffer(UPSTREAM_DATA, 0, size, &text);
            } else {
                set_buffer(UPSTREAM_DATA, 0, size, b"");
            }
            return Action::Continue;
        }
        if size == 0 {
            self.end_of_stream(UPSTREAM_DATA, "upstream data", size, eos);
            return Action::Continue;
        }
        if !std::mem::replace(&mut self.greeting_seen, true) {
            let chunk = (UPSTREAM_DATA, size, eos);
            record_first_chunk(&mut self.report, "upstream data", chunk, (b"<", b">"));
            set_buffer(UPSTREAM_DATA, 10_000, 0, GREETING_END);
            return Action::Continue;
        }
        // The echo of what went up (possibly in pieces): held back until whole, then its
        // last piece is replaced with the report.
        let (_, v) = buffer_bytes(UPSTREAM_DATA, 0, size);
        set_buffer(UPSTREAM_DATA, 0, size, b"");
        if self.sent {
            return Action::Continue;
        }
        self.echo.extend_from_slice(&v);
        if !self.echo.ends_with(b"}") {
            return Action::Continue;
        }
        self.report.put(
            "upstream data callback (echo)",
            0,
            format!("end_of_stream {eos}"),
        );
        self.report
            .put("echo from the backend", 0, show(&self.echo));
        let text = format!("--report--\n{}\n--end--\n", self.report.json());
        let s = set_buffer(UPSTREAM_DATA, 0, 0, text.as_bytes());
        if s != 0 {
            late("the report could not replace the echo", s, "");
        }
        self.sent = true;
        Action::Continue
    }

    fn on_downstream_close(&mut self, peer: PeerType) {
        self.close(&format!("downstream_close peer {}", peer as u32));
    }

    fn on_upstream_close(&mut self, peer: PeerType) {
        self.close(&format!("upstream_close peer {}", peer as u32));
    }

    fn on_log(&mut self) {
        self.close("log");
    }
}
