//! The proxy-wasm side: contexts that turn callbacks into calls on the route table and its
//! outcome into host calls (all through `hostcalls.rs`), and nothing that can panic.

use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;

use log::{info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType, MapType};
use wasmgate_core::{
    apply_edits, apply_request, HeaderEdits, HeaderMap, Outcome, Random, Reply, RequestView,
    RouteTable, Step, TcpOutcome, XorShift,
};

use wasmgate_core::observe::{self, RouteLabels};
use wasmgate_core::route_table::bucket::is_missing_key;
use wasmgate_core::{ConfigError, RouterConfig};

use crate::hostcalls::{self, HostHeaders};
use crate::metrics::Counters;

// Left out when another module (filters/combined) links this crate and drives its contexts.
#[cfg(feature = "standalone")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(RouterRoot::default())
    });
}}

/// What every stream of this root shares: the compiled table and the random state.
struct Shared {
    table: RouteTable,
    rng: Cell<XorShift>,
    labels: RouteLabels,
    /// The `wasmgate.route` value of every HTTP rule (by `RouteLabels::rule_index`), built at
    /// configure so a request sets filter state without formatting it.
    route_states: Vec<Box<str>>,
    counters: Counters,
}

impl Shared {
    fn with_rng<R>(&self, f: impl FnOnce(&mut dyn Random) -> R) -> R {
        let mut rng = self.rng.replace(XorShift::new(0));
        let r = f(&mut rng);
        self.rng.set(rng);
        r
    }
}

/// The router's root: its own in the router module, one half of the combined module's.
#[derive(Default)]
pub struct RouterRoot {
    shared: Option<Rc<Shared>>,
    tcp: bool,
}

impl Context for RouterRoot {}

impl RouterRoot {
    /// Compiles `config` (the router's JSON); on error the root keeps no table.
    pub fn configure(&mut self, config: &[u8]) -> Result<(), ConfigError> {
        let parsed = wasmgate_core::error::from_json::<RouterConfig>(config)
            .and_then(|c| Ok((RouteTable::compile(&c)?, RouteLabels::new(&c))));
        match parsed {
            Ok((table, labels)) => {
                let root_id = hostcalls::property(&["plugin_root_id"]);
                self.tcp = root_id.is_some_and(|id| id.ends_with(b".tcp"));
                let seed = hostcalls::time_seed().unwrap_or(0x9e37_79b9);
                info!(
                    "wasmgate.router: configured {} hosts{}",
                    table.host_count(),
                    if self.tcp { " (tcp)" } else { "" }
                );
                let route_states = labels
                    .route_states()
                    .into_iter()
                    .map(String::into_boxed_str)
                    .collect();
                self.shared = Some(Rc::new(Shared {
                    table,
                    rng: Cell::new(XorShift::new(seed)),
                    counters: Counters::new(labels.rule_count()),
                    labels,
                    route_states,
                }));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the root serves TCP listeners (its id ends in `.tcp`).
    pub fn serves_tcp(&self) -> bool {
        self.tcp
    }

    /// The router's state for one HTTP stream.
    pub fn http_stream(&self) -> RouterHttp {
        RouterHttp {
            shared: self.shared.clone(),
            response_edits: Vec::new(),
            bucket_not_found: None,
        }
    }
}

impl RootContext for RouterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        match self.configure(&hostcalls::plugin_configuration()) {
            Ok(()) => true,
            Err(e) => {
                // Reject the whole config: the proxy refuses the plugin rather than run half of it.
                log::error!("wasmgate.router: invalid configuration: {e}");
                false
            }
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
        Some(Box::new(self.http_stream()))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(RouterTcp {
            shared: self.shared.clone(),
        }))
    }
}

/// Response-header edits owned past the request phase.
struct OwnedEdits {
    set: Vec<(String, String)>,
    add: Vec<(String, String)>,
    remove: Vec<String>,
}

impl From<&HeaderEdits<'_>> for OwnedEdits {
    fn from(e: &HeaderEdits<'_>) -> Self {
        let own = |v: &[(&str, std::borrow::Cow<'_, str>)]| {
            v.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        OwnedEdits {
            set: own(&e.set),
            add: own(&e.add),
            remove: e.remove.to_vec(),
        }
    }
}

impl OwnedEdits {
    fn apply(&self, map: &mut dyn HeaderMap) {
        let edits = HeaderEdits {
            set: self
                .set
                .iter()
                .map(|(n, v)| (n.as_str(), Cow::Borrowed(v.as_str())))
                .collect(),
            add: self
                .add
                .iter()
                .map(|(n, v)| (n.as_str(), Cow::Borrowed(v.as_str())))
                .collect(),
            remove: &self.remove,
        };
        apply_edits(map, &edits);
    }
}

/// The router's part of one HTTP stream.
pub struct RouterHttp {
    shared: Option<Rc<Shared>>,
    /// The rule's, then the picked backend's.
    response_edits: Vec<OwnedEdits>,
    /// Sent to a bucket: the body of the 404 that replaces the store's answer for a missing
    /// key (its 403 or 404, which names the bucket and key in XML).
    bucket_not_found: Option<String>,
}

impl Context for RouterHttp {}

fn send_reply(reply: &Reply<'_>) {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_ref()))
        .collect();
    let body = (!reply.body.is_empty()).then_some(reply.body.as_bytes());
    hostcalls::send_reply(u32::from(reply.status), headers, body, "send local reply");
}

/// Counts the outcome and records it as filter state for the access log.
fn observe_outcome(shared: &Shared, outcome: &Outcome<'_>) {
    let labels = &shared.labels;
    let rule = match outcome {
        Outcome::Forward(f) => Some(f.rule),
        Outcome::Reply(r) => r.rule,
        Outcome::NoMatch(_) => None,
    };
    let state: &str = match rule {
        Some(rule) => {
            let index = labels.rule_index(rule);
            match index.and_then(|i| shared.counters.rule_matched.get(i)) {
                Some(counter) => counter.inc(|| labels.rule_matched_stat(rule)),
                None => shared.counters.inc(labels.rule_matched_stat(rule)),
            }
            if let Outcome::Reply(r) = outcome {
                let host = labels.host_stat(rule.route);
                if r.redirect {
                    shared.counters.inc(format!("{host}.redirect"));
                } else {
                    shared
                        .counters
                        .inc(format!("{host}.local_reply.{}", r.status));
                }
            }
            match index.and_then(|i| shared.route_states.get(i)) {
                Some(state) => state,
                None => observe::ROUTE_STATE_NO_MATCH,
            }
        }
        None => {
            shared
                .counters
                .no_match
                .inc(|| observe::ROUTER_NO_MATCH_STAT.to_string());
            observe::ROUTE_STATE_NO_MATCH
        }
    };
    hostcalls::set_filter_state(observe::ROUTE_STATE, state);
}

impl HttpContext for RouterHttp {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.on_request_headers()
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.on_response_headers()
    }
}

impl RouterHttp {
    /// Routes the request: steers it (Continue) or replies (Pause).
    pub fn on_request_headers(&mut self) -> Action {
        let Some(shared) = self.shared.clone() else {
            send_reply(&Reply {
                rule: None,
                status: 503,
                redirect: false,
                headers: Vec::new(),
                body: "wasmgate router is not configured\n",
            });
            return Action::Pause;
        };
        let table = &shared.table;
        // One host call per header read: measured no slower than copying the whole map with
        // one call (wrk's requests carry few headers), and allocation-free for absent ones.
        let authority = hostcalls::request_header(":authority").unwrap_or_default();
        let path = hostcalls::request_header(":path").unwrap_or_default();
        let method = if table.needs_method() {
            hostcalls::request_header(":method").unwrap_or_default()
        } else {
            Vec::new()
        };
        let values: Vec<(&str, Vec<u8>)> = table
            .header_names()
            .iter()
            .filter_map(|n| hostcalls::request_header(n).map(|v| (n.as_str(), v)))
            .collect();
        let headers: Vec<(&str, &[u8])> = values.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let req = RequestView {
            authority: &authority,
            path: &path,
            method: &method,
            headers: &headers,
            listener_port: if table.needs_listener_port() {
                hostcalls::listener_port()
            } else {
                None
            },
        };
        let outcome = shared.with_rng(|rng| table.route(&req, rng));
        observe_outcome(&shared, &outcome);
        if let Outcome::Forward(f) = &outcome {
            self.bucket_not_found = f.bucket_not_found.map(str::to_string);
            let backend = f.backend_headers.as_ref().map(|b| &b.response);
            for edits in std::iter::once(&f.response_headers).chain(backend) {
                if !edits.is_empty() {
                    self.response_edits.push(OwnedEdits::from(edits));
                }
            }
        }
        let forwarded = matches!(outcome, Outcome::Forward(_));
        match apply_request(
            outcome,
            table,
            &mut HostHeaders(MapType::HttpRequestHeaders),
        ) {
            Step::Continue => {
                if forwarded && table.clear_route_cache() {
                    hostcalls::clear_route_cache();
                }
                Action::Continue
            }
            Step::Reply(reply) => {
                send_reply(&reply);
                Action::Pause
            }
        }
    }

    /// Applies the rule's response edits, or answers a bucket's missing key.
    pub fn on_response_headers(&mut self) -> Action {
        if let Some(body) = self.bucket_not_found.take() {
            let status = hostcalls::response_header(":status")
                .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok());
            if status.is_some_and(is_missing_key) {
                let headers = vec![("content-type", "text/plain; charset=utf-8")];
                hostcalls::send_reply(404, headers, Some(body.as_bytes()), "answer a missing key");
                return Action::Pause;
            }
        }
        for edits in &self.response_edits {
            edits.apply(&mut HostHeaders(MapType::HttpResponseHeaders));
        }
        Action::Continue
    }
}

struct RouterTcp {
    shared: Option<Rc<Shared>>,
}

impl Context for RouterTcp {}

impl StreamContext for RouterTcp {
    fn on_new_connection(&mut self) -> Action {
        let Some(shared) = &self.shared else {
            return Action::Continue;
        };
        let port = hostcalls::listener_port();
        let outcome = match port {
            Some(p) => shared.with_rng(|rng| shared.table.route_tcp(p, rng)),
            None => TcpOutcome::NoRoute,
        };
        match outcome {
            TcpOutcome::Cluster(cluster) => {
                hostcalls::set_tcp_cluster(cluster);
            }
            // The balancer's network root, after this filter, picks the member cluster.
            TcpOutcome::Delegate(_) => {}
            TcpOutcome::NoRoute => {
                warn!("wasmgate.router: no tcp route for listener port {port:?}; closing");
                hostcalls::close_downstream();
            }
        }
        Action::Continue
    }
}
