//! The compiled route table: built once at configure time, consulted once per request.
//!
//! Per host the rules are indexed by path kind so that a lookup costs one hash probe per
//! path element instead of a scan over every route. Candidates (one per rule match) are
//! visited in Gateway API precedence: exact path, then matchit pattern, then regular
//! expression, then the longest path prefix; within one path the candidate with a method,
//! then more header matches, then more query matches, then the earliest in configuration.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

pub mod matchers;

use crate::seeded_hash::SeededHashMap;

use regex_lite::Regex;

use self::matchers::host::{parse_authority, HostIndex, HostPattern};
use crate::bucket::{CompiledBucket, BUCKET_ALLOW};
use crate::config::*;
use crate::cors::{is_preflight, CompiledCors, CORS_REQUEST_HEADERS};
use crate::error::{quote, ConfigError, ConfigErrorKind as K};
use crate::regex_budget::RegexBudget;
use crate::request::{query_param, split_query, Random, RequestView};
use crate::template::{Captures, Template};
use crate::weighted::WeightedSet;

/// What to do with a new TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOutcome<'t> {
    Cluster(&'t str),
    /// A multi-cluster service: the balancer's network root after the router picks.
    Delegate(&'t str),
    NoRoute,
}

/// Where a rule came from in the configuration, for logs and `explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef {
    pub route: usize,
    pub rule: usize,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<'t> {
    Forward(Forward<'t>),
    Reply(Reply<'t>),
    NoMatch(NoMatch),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forward<'t> {
    pub rule: RuleRef,
    pub service: &'t str,
    /// The Envoy cluster; `None` when the service is a multi-cluster service whose member is
    /// chosen by the balancer filter after the router (it reads the service header).
    pub cluster: Option<&'t str>,
    /// New `:authority`, when the rule rewrites the hostname.
    pub authority: Option<Cow<'t, str>>,
    /// New `:path` (query kept), when the rule rewrites the path.
    pub path: Option<String>,
    pub request_headers: HeaderEdits<'t>,
    /// The rule's response edits, then the CORS headers of an allowed cross-origin request.
    pub response_headers: HeaderEdits<'t>,
    /// Edits of the picked backend, applied after the rule's; boxed, as few backends have
    /// any.
    pub backend_headers: Option<Box<BackendEdits<'t>>>,
    /// The value of the policy header (the rule's `policy`); `None` removes the header.
    pub policy: Option<&'t str>,
    /// Sent to a storage bucket: the body of the 404 that replaces the store's 403/404 for a
    /// missing key (see [`crate::bucket::is_missing_key`]).
    pub bucket_not_found: Option<&'t str>,
}

/// A local reply: the seed's status-code action, a redirect, or an error the router defines
/// (404 for no match, 500 when every backend weight is zero).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<'t> {
    pub rule: Option<RuleRef>,
    pub status: u16,
    /// A rule's `redirect` answered (the `location` header is among `headers`): counted as a
    /// redirect rather than a local reply.
    pub redirect: bool,
    pub headers: Vec<(&'t str, Cow<'t, str>)>,
    pub body: &'t str,
}

/// A backend's own request and response header edits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackendEdits<'t> {
    pub request: HeaderEdits<'t>,
    pub response: HeaderEdits<'t>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderEdits<'t> {
    pub set: Vec<(&'t str, Cow<'t, str>)>,
    pub add: Vec<(&'t str, Cow<'t, str>)>,
    pub remove: &'t [String],
}

impl HeaderEdits<'_> {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

#[derive(Debug)]
pub struct RouteTable {
    /// Host pattern -> index into `host_rules`: a small map probes faster than one holding
    /// the rules inline.
    hosts: HostIndex<u32>,
    host_rules: Vec<HostRules>,
    rules: Vec<CompiledRule>,
    tcp: HashMap<u16, CompiledBackends>,
    header_names: Vec<String>,
    needs_method: bool,
    no_match: NoMatch,
    cluster_header: String,
    service_header: Option<String>,
    policy_header: String,
    listener_ports: HashMap<u16, u16>,
    needs_listener_port: bool,
    has_policies: bool,
    clear_route_cache: bool,
}

#[derive(Debug, Default)]
struct HostRules {
    exact: SeededHashMap<Box<[u8]>, Vec<Candidate>>,
    patterns: Option<matchit::Router<usize>>,
    pattern_candidates: Vec<Vec<Candidate>>,
    pattern_ids: HashMap<String, usize>,
    regexes: Vec<Candidate>,
    /// Keyed by the prefix without trailing slashes; `/` is the empty key.
    prefixes: SeededHashMap<Box<[u8]>, Vec<Candidate>>,
}

#[derive(Debug)]
struct Candidate {
    rule: usize,
    order: usize,
    regex: Option<Regex>,
    /// Length of the matched prefix, for `ReplacePrefixMatch`.
    prefix_len: usize,
    method: Option<Box<[u8]>>,
    headers: Vec<HeaderCond>,
    query: Vec<QueryCond>,
}

impl Candidate {
    fn precedence(
        &self,
    ) -> (
        bool,
        std::cmp::Reverse<usize>,
        std::cmp::Reverse<usize>,
        usize,
    ) {
        (
            self.method.is_none(),
            std::cmp::Reverse(self.headers.len()),
            std::cmp::Reverse(self.query.len()),
            self.order,
        )
    }

    fn conditions_hold(&self, req: &RequestView<'_>, query: Option<&[u8]>) -> bool {
        if let Some(m) = &self.method {
            if req.method != &**m {
                return false;
            }
        }
        self.headers.iter().all(|h| h.holds(req))
            && self.query.iter().all(|q| {
                query
                    .and_then(|qs| query_param(qs, &q.name))
                    .is_some_and(|v| q.value.holds(v))
            })
    }
}

#[derive(Debug)]
enum ValueMatch {
    Exact(Box<[u8]>),
    Regex(Regex),
}

impl ValueMatch {
    fn holds(&self, v: &[u8]) -> bool {
        match self {
            ValueMatch::Exact(e) => v == &**e,
            ValueMatch::Regex(r) => std::str::from_utf8(v).is_ok_and(|s| r.is_match(s)),
        }
    }
}

#[derive(Debug)]
enum HeaderCond {
    Value(String, ValueMatch),
    Present(String),
    Absent(String),
}

impl HeaderCond {
    fn holds(&self, req: &RequestView<'_>) -> bool {
        match self {
            HeaderCond::Value(n, m) => req.header(n).is_some_and(|v| m.holds(v)),
            HeaderCond::Present(n) => req.header(n).is_some(),
            HeaderCond::Absent(n) => req.header(n).is_none(),
        }
    }
}

#[derive(Debug)]
struct QueryCond {
    name: String,
    value: ValueMatch,
}

#[derive(Debug)]
struct CompiledRule {
    at: RuleRef,
    action: Action,
}

/// A forwarding rule's action; boxed in [`Action`], being much the largest.
#[derive(Debug)]
struct ForwardAction {
    backends: CompiledBackends,
    authority: Option<Template>,
    path: Option<PathEdit>,
    request: CompiledEdits,
    response: CompiledEdits,
    /// (request, response) edits of each backend, by index.
    backend_edits: Vec<(CompiledEdits, CompiledEdits)>,
    cors: Option<CompiledCors>,
    policy: Option<String>,
    /// A bucket rule: the only target is the bucket's cluster, and the path becomes a key.
    bucket: Option<CompiledBucket>,
}

#[derive(Debug)]
enum Action {
    Forward(Box<ForwardAction>),
    Reply {
        status: u16,
        headers: Vec<(String, Template)>,
        body: String,
    },
    Redirect {
        status: u16,
        scheme: Option<String>,
        hostname: Option<String>,
        port: Option<u16>,
        path: Option<PathEdit>,
    },
}

#[derive(Debug)]
enum PathEdit {
    Full(Template),
    Prefix(Template),
}

#[derive(Debug, Default)]
struct CompiledEdits {
    set: Vec<(String, Template)>,
    add: Vec<(String, Template)>,
    remove: Vec<String>,
}

impl CompiledEdits {
    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    fn render<'t>(&'t self, caps: &Captures<'_>) -> HeaderEdits<'t> {
        let render = |v: &'t Vec<(String, Template)>| {
            v.iter()
                .map(|(n, t)| (n.as_str(), t.render(caps)))
                .collect()
        };
        HeaderEdits {
            set: render(&self.set),
            add: render(&self.add),
            remove: &self.remove,
        }
    }
}

#[derive(Debug)]
struct CompiledBackends {
    /// (service, Envoy cluster); no cluster for a multi-cluster service.
    targets: Vec<(String, Option<String>)>,
    /// One weight per target, then the unresolved share (when there is one).
    weights: WeightedSet,
}

/// What a weighted pick lands on.
enum Picked<'t> {
    /// The index of the target, its service and cluster.
    Target(usize, &'t str, Option<&'t str>),
    /// The share of backends the configuration could not resolve.
    Unresolved,
    /// Every weight is zero.
    Nothing,
}

impl CompiledBackends {
    fn pick(&self, rng: &mut dyn Random) -> Picked<'_> {
        let Some(i) = self.weights.pick(rng) else {
            return Picked::Nothing;
        };
        match self.targets.get(i) {
            Some((s, c)) => Picked::Target(i, s.as_str(), c.as_deref()),
            None => Picked::Unresolved,
        }
    }
}

/// The answer to an `:authority` that is not `host [":" port]`, whatever the routes.
pub const INVALID_AUTHORITY: Reply<'static> = Reply {
    rule: None,
    status: 400,
    redirect: false,
    headers: Vec::new(),
    body: "invalid :authority\n",
};

/// The cluster a backend without an explicit `cluster` is reached through.
pub fn default_cluster_name(service: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{service}_{p}"),
        None => service.to_string(),
    }
}

impl RouteTable {
    /// Parses and compiles a router configuration; the whole config or nothing.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let config: RouterConfig = crate::error::from_json(bytes)?;
        Self::compile(&config)
    }

    pub fn compile(config: &RouterConfig) -> Result<Self, ConfigError> {
        let mut c = Compiler::default();
        let err = |path: String, kind| ConfigError::new(path, kind);
        check_header_name(&config.cluster_header).map_err(|k| err("clusterHeader".into(), k))?;
        check_header_name(&config.service_header).map_err(|k| err("serviceHeader".into(), k))?;
        check_header_name(&config.policy_header).map_err(|k| err("policyHeader".into(), k))?;
        let services = compile_services(&config.multi_cluster_services)?;
        let mut hosts = HostIndex::default();
        let mut host_rules = Vec::new();
        let mut tcp = HashMap::new();
        for (ri, route) in config.routes.iter().enumerate() {
            let at = format!("routes[{ri}]");
            match (&route.http, &route.tcp) {
                (Some(http), None) => {
                    let pattern = HostPattern::parse(&http.host)
                        .map_err(|k| err(format!("{at}.http.host"), k))?;
                    let rules = c.compile_host(ri, http, &services)?;
                    let index = u32::try_from(host_rules.len()).unwrap_or(u32::MAX);
                    host_rules.push(rules);
                    if !hosts.insert(pattern, index) {
                        return Err(err(
                            format!("{at}.http.host"),
                            K::DuplicateHost(http.host.clone()),
                        ));
                    }
                }
                (None, Some(t)) => {
                    let backends = compile_tcp(&format!("{at}.tcp"), t, &services)?;
                    if tcp.insert(t.port, backends).is_some() {
                        return Err(err(format!("{at}.tcp.port"), K::DuplicateTcpPort(t.port)));
                    }
                }
                _ => return Err(err(at, K::RouteKind)),
            }
        }
        Ok(RouteTable {
            hosts,
            host_rules,
            rules: c.rules,
            tcp,
            header_names: c.header_names.into_iter().collect(),
            needs_method: c.needs_method,
            no_match: config.no_match,
            cluster_header: config.cluster_header.to_ascii_lowercase(),
            service_header: (!config.multi_cluster_services.is_empty())
                .then(|| config.service_header.to_ascii_lowercase()),
            policy_header: config.policy_header.to_ascii_lowercase(),
            listener_ports: config
                .listener_ports
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect(),
            needs_listener_port: c.needs_listener_port,
            has_policies: c.has_policies,
            clear_route_cache: config.clear_route_cache,
        })
    }

    /// Headers (lower-case) that some rule reads, beyond `:authority`, `:path`, `:method`.
    pub fn header_names(&self) -> &[String] {
        &self.header_names
    }

    /// Whether any rule matches on the method.
    pub fn needs_method(&self) -> bool {
        self.needs_method
    }

    pub fn cluster_header(&self) -> &str {
        &self.cluster_header
    }

    /// The header that carries a rule's `policy` to the proxy's route table.
    pub fn policy_header(&self) -> &str {
        &self.policy_header
    }

    /// Whether some rule has a `policy` (only then the router writes or strips the header).
    pub fn has_policies(&self) -> bool {
        self.has_policies
    }

    /// Whether some rule (a redirect) needs [`RequestView::listener_port`].
    pub fn needs_listener_port(&self) -> bool {
        self.needs_listener_port
    }

    pub fn clear_route_cache(&self) -> bool {
        self.clear_route_cache
    }

    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// The cluster for a new TCP connection on `port`; `None` when no route takes the port
    /// or every backend weight is zero.
    pub fn route_tcp(&self, port: u16, rng: &mut dyn Random) -> TcpOutcome<'_> {
        match self.tcp.get(&port).map(|b| b.pick(rng)) {
            None | Some(Picked::Nothing | Picked::Unresolved) => TcpOutcome::NoRoute,
            Some(Picked::Target(_, _, Some(cluster))) => TcpOutcome::Cluster(cluster),
            Some(Picked::Target(_, service, None)) => TcpOutcome::Delegate(service),
        }
    }

    /// The header naming the chosen service for the balancer, when any backend is a
    /// multi-cluster service (otherwise the router never writes it).
    pub fn service_header(&self) -> Option<&str> {
        self.service_header.as_deref()
    }

    /// Routes one request.
    pub fn route<'t>(&'t self, req: &RequestView<'_>, rng: &mut dyn Random) -> Outcome<'t> {
        let host = match parse_authority(req.authority) {
            Ok(host) => host,
            // Never a different host: `foo.com:80:80` is refused, not looked up as `foo.com:80`.
            Err(_) => return Outcome::Reply(INVALID_AUTHORITY),
        };
        let (path, query) = split_query(req.path);
        let found = self.hosts.find_map(&host, |&i| {
            self.host_rules.get(i as usize)?.find(path, query, req)
        });
        match found {
            Some((cand, caps)) => self.act(cand, &caps, req, &host, path, query, rng),
            None => self.no_match(),
        }
    }

    fn no_match(&self) -> Outcome<'_> {
        Outcome::NoMatch(self.no_match)
    }

    #[allow(clippy::too_many_arguments)]
    fn act<'t>(
        &'t self,
        cand: &Candidate,
        caps: &Captures<'_>,
        req: &RequestView<'_>,
        host: &str,
        path: &[u8],
        query: Option<&[u8]>,
        rng: &mut dyn Random,
    ) -> Outcome<'t> {
        let Some(rule) = self.rules.get(cand.rule) else {
            return self.no_match();
        };
        let at = Some(rule.at);
        match &rule.action {
            Action::Reply {
                status,
                headers,
                body,
            } => Outcome::Reply(Reply {
                rule: at,
                status: *status,
                redirect: false,
                headers: headers
                    .iter()
                    .map(|(n, t)| (n.as_str(), t.render(caps)))
                    .collect(),
                body,
            }),
            Action::Redirect {
                status,
                scheme,
                hostname,
                port,
                path: edit,
            } => {
                let scheme_in = req.header(":scheme").unwrap_or(b"http");
                let scheme_out = match scheme {
                    Some(s) => s.as_str(),
                    None => std::str::from_utf8(scheme_in).unwrap_or("http"),
                };
                // An explicit scheme implies its well-known port; otherwise keep the request's.
                let port = match (port, scheme) {
                    (Some(p), _) => Some(p.to_string()),
                    (None, Some(_)) => None,
                    // Gateway API: the port of the listener, as the user declared it.
                    (None, None) => match req.listener_port {
                        Some(p) => Some(self.listener_ports.get(&p).unwrap_or(&p).to_string()),
                        None => authority_port(req.authority).map(str::to_string),
                    },
                };
                let mut location =
                    format!("{scheme_out}://{}", hostname.as_deref().unwrap_or(host));
                if let Some(p) = port.filter(|p| !is_default_port(scheme_out, p)) {
                    location.push(':');
                    location.push_str(&p);
                }
                location.push_str(&rewrite_path(edit.as_ref(), cand, caps, path, query));
                Outcome::Reply(Reply {
                    rule: at,
                    status: *status,
                    redirect: true,
                    headers: vec![("location", Cow::Owned(location))],
                    body: "",
                })
            }
            Action::Forward(forward) => {
                let ForwardAction {
                    backends,
                    authority,
                    path: edit,
                    request,
                    response,
                    backend_edits,
                    cors,
                    policy,
                    bucket,
                } = &**forward;
                if let Some(c) = cors.as_ref().filter(|_| is_preflight(req)) {
                    // Answered here and never forwarded, allowed origin or not.
                    return Outcome::Reply(Reply {
                        rule: at,
                        status: 200,
                        redirect: false,
                        headers: c.preflight_headers(req),
                        body: "",
                    });
                }
                let mut object_path = None;
                if let Some(b) = bucket {
                    if req.method != b"GET" && req.method != b"HEAD" {
                        return Outcome::Reply(Reply {
                            rule: at,
                            status: 405,
                            redirect: false,
                            headers: vec![("allow", Cow::Borrowed(BUCKET_ALLOW))],
                            body: "a bucket serves GET and HEAD only\n",
                        });
                    }
                    let rewritten = edit
                        .as_ref()
                        .map(|e| rewrite_path(Some(e), cand, caps, path, None));
                    let asked = rewritten.as_ref().map_or(path, |p| p.as_bytes());
                    match b.object_path(asked) {
                        Ok(p) => object_path = Some(p),
                        Err(refusal) => {
                            return Outcome::Reply(Reply {
                                rule: at,
                                status: 400,
                                redirect: false,
                                headers: Vec::new(),
                                body: refusal.body(),
                            })
                        }
                    }
                }
                match backends.pick(rng) {
                    Picked::Nothing => Outcome::Reply(Reply {
                        rule: at,
                        status: 500,
                        redirect: false,
                        headers: Vec::new(),
                        body: "no backend with a non-zero weight\n",
                    }),
                    Picked::Unresolved => Outcome::Reply(Reply {
                        rule: at,
                        status: 500,
                        redirect: false,
                        headers: Vec::new(),
                        body: "backend not resolved\n",
                    }),
                    Picked::Target(i, service, cluster) => {
                        let mut response_headers = response.render(caps);
                        if let Some(c) = cors {
                            response_headers.set.extend(c.response_headers(req));
                        }
                        let backend_headers = match bucket {
                            // The client's credentials never reach the store.
                            Some(b) => Some(Box::new(BackendEdits {
                                request: HeaderEdits {
                                    remove: &b.request_strip,
                                    ..HeaderEdits::default()
                                },
                                response: HeaderEdits {
                                    remove: &b.response_strip,
                                    ..HeaderEdits::default()
                                },
                            })),
                            None => backend_edits
                                .get(i)
                                .filter(|(rq, rs)| !rq.is_empty() || !rs.is_empty())
                                .map(|(rq, rs)| {
                                    Box::new(BackendEdits {
                                        request: rq.render(caps),
                                        response: rs.render(caps),
                                    })
                                }),
                        };
                        let authority = match bucket {
                            Some(b) => Some(Cow::Borrowed(b.authority.as_str())),
                            None => authority.as_ref().map(|t| t.render(caps)),
                        };
                        Outcome::Forward(Forward {
                            rule: rule.at,
                            service,
                            cluster,
                            authority,
                            path: object_path.or_else(|| {
                                edit.as_ref()
                                    .map(|e| rewrite_path(Some(e), cand, caps, path, query))
                            }),
                            request_headers: request.render(caps),
                            response_headers,
                            backend_headers,
                            policy: policy.as_deref(),
                            bucket_not_found: bucket.as_ref().map(|b| b.not_found_body.as_str()),
                        })
                    }
                }
            }
        }
    }
}

fn authority_port(authority: &[u8]) -> Option<&str> {
    let after_bracket = authority
        .iter()
        .rposition(|&b| b == b']')
        .map_or(0, |i| i + 1);
    let rest = authority.get(after_bracket..)?;
    let colon = rest.iter().position(|&b| b == b':')?;
    std::str::from_utf8(rest.get(colon + 1..)?)
        .ok()
        .filter(|p| !p.is_empty())
}

fn is_default_port(scheme: &str, port: &str) -> bool {
    matches!((scheme, port), ("http", "80") | ("https", "443"))
}

/// Applies a path edit, keeping the query string.
fn rewrite_path(
    edit: Option<&PathEdit>,
    cand: &Candidate,
    caps: &Captures<'_>,
    path: &[u8],
    query: Option<&[u8]>,
) -> String {
    let mut out = match edit {
        None => String::from_utf8_lossy(path).into_owned(),
        Some(PathEdit::Full(t)) => t.render(caps).into_owned(),
        Some(PathEdit::Prefix(t)) => {
            let rest = path.get(cand.prefix_len..).unwrap_or_default();
            let replacement = t.render(caps);
            let mut s = replacement.trim_end_matches('/').to_string();
            let rest = String::from_utf8_lossy(rest);
            if rest.is_empty() || rest == "/" {
                // `/foo` -> `/bar`, `/foo/` -> `/bar/`; a `/` replacement never yields "".
                s.push_str(&rest);
                if s.is_empty() {
                    s.push('/');
                }
            } else {
                s.push_str(&rest);
            }
            s
        }
    };
    if let Some(q) = query {
        out.push('?');
        out.push_str(&String::from_utf8_lossy(q));
    }
    out
}

impl HostRules {
    fn find<'s, 'p>(
        &'s self,
        path: &'p [u8],
        query: Option<&[u8]>,
        req: &RequestView<'_>,
    ) -> Option<(&'s Candidate, Vec<(&'s str, &'p str)>)> {
        let first = |cands: &'s [Candidate]| cands.iter().find(|c| c.conditions_hold(req, query));
        if let Some(c) = self.exact.get(path).and_then(|cs| first(cs)) {
            return Some((c, Vec::new()));
        }
        let path_str = std::str::from_utf8(path).ok();
        if let (Some(router), Some(p)) = (&self.patterns, path_str) {
            if let Ok(m) = router.at(p) {
                if let Some(c) = self
                    .pattern_candidates
                    .get(*m.value)
                    .and_then(|cs| first(cs))
                {
                    return Some((c, m.params.iter().collect()));
                }
            }
        }
        if let Some(p) = path_str {
            let hit = self.regexes.iter().find(|c| {
                c.regex.as_ref().is_some_and(|r| r.is_match(p)) && c.conditions_hold(req, query)
            });
            if let Some(c) = hit {
                return Some((c, Vec::new()));
            }
        }
        if self.prefixes.is_empty() {
            return None;
        }
        // Element-wise prefixes, longest first: `/a/b/` tries `/a/b`, `/a`, then `/` ("").
        let mut key = trim_trailing_slashes(path);
        loop {
            if let Some(c) = self.prefixes.get(key).and_then(|cs| first(cs)) {
                return Some((c, Vec::new()));
            }
            if key.is_empty() {
                return None;
            }
            let cut = key.iter().rposition(|&b| b == b'/').unwrap_or(0);
            key = trim_trailing_slashes(key.get(..cut).unwrap_or_default());
        }
    }
}

fn trim_trailing_slashes(p: &[u8]) -> &[u8] {
    let end = p.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    p.get(..end).unwrap_or_default()
}

#[derive(Default)]
struct Compiler {
    rules: Vec<CompiledRule>,
    regexes: RegexBudget,
    header_names: BTreeSet<String>,
    needs_method: bool,
    needs_listener_port: bool,
    has_policies: bool,
    order: usize,
}

/// Names of the multi-cluster services; their members are the balancer's business.
type Services = BTreeSet<String>;

fn compile_services(
    services: &std::collections::BTreeMap<String, MultiClusterService>,
) -> Result<Services, ConfigError> {
    for (name, svc) in services {
        if svc.members.is_empty() {
            return Err(ConfigError::new(
                format!("multiClusterServices.{name}.members"),
                K::NoMembers,
            ));
        }
    }
    Ok(services.keys().cloned().collect())
}

/// Resolves backends to (service, cluster) targets. A multi-cluster service without an
/// explicit cluster is left for the balancer to resolve.
fn compile_backends(
    at: &str,
    single: Option<&Backend>,
    many: &[Backend],
    unresolved_weight: u32,
    services: &Services,
) -> Result<CompiledBackends, ConfigError> {
    if single.is_some() && !many.is_empty() {
        return Err(ConfigError::new(at, K::Exclusive("backend", "backends")));
    }
    let list: Vec<&Backend> = single.into_iter().chain(many).collect();
    if list.is_empty() {
        return Err(ConfigError::new(at, K::EmptyBackends));
    }
    let mut targets = Vec::new();
    for (i, b) in list.iter().enumerate() {
        if b.service.is_empty() {
            let bat = if single.is_some() {
                format!("{at}.backend")
            } else {
                format!("{at}.backends[{i}]")
            };
            return Err(ConfigError::new(format!("{bat}.service"), K::EmptyName));
        }
        let cluster = match &b.cluster {
            Some(c) => Some(c.clone()),
            None if services.contains(&b.service) => None,
            None => Some(default_cluster_name(&b.service, b.port)),
        };
        targets.push((b.service.clone(), cluster));
    }
    let unresolved = (unresolved_weight > 0).then_some(unresolved_weight);
    Ok(CompiledBackends {
        targets,
        weights: WeightedSet::new(list.iter().map(|b| b.weight).chain(unresolved)),
    })
}

fn compile_tcp(
    at: &str,
    t: &TcpRoute,
    services: &Services,
) -> Result<CompiledBackends, ConfigError> {
    match t.rules.as_slice() {
        [rule] => {
            let list = rule.backend.iter().chain(&rule.backends);
            if let Some(i) = list
                .into_iter()
                .position(|b| b.request_headers.is_some() || b.response_headers.is_some())
            {
                let field = match rule.backend {
                    Some(_) => "backend".to_string(),
                    None => format!("backends[{i}]"),
                };
                return Err(ConfigError::new(
                    format!("{at}.rules[0].{field}"),
                    K::Schema("header edits apply only to HTTP backends".into()),
                ));
            }
            compile_backends(
                &format!("{at}.rules[0]"),
                rule.backend.as_ref(),
                &rule.backends,
                0,
                services,
            )
        }
        _ => Err(ConfigError::new(
            format!("{at}.rules"),
            K::Schema("a tcp route takes exactly one rule".into()),
        )),
    }
}

fn check_header_name(name: &str) -> Result<(), K> {
    let ok = !name.is_empty()
        && name.bytes().enumerate().all(|(i, b)| {
            (i == 0 && b == b':') || b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
        });
    if ok {
        Ok(())
    } else {
        Err(K::InvalidHeaderName(name.to_string()))
    }
}

fn check_header_value(value: &str) -> Result<(), K> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        Err(K::InvalidHeaderValue(value.to_string()))
    } else {
        Ok(())
    }
}

/// A full match: the pattern anchored at both ends.
fn anchored(re: &str) -> String {
    format!("^(?:{re})$")
}

impl Compiler {
    fn compile_host(
        &mut self,
        ri: usize,
        http: &HttpRoute,
        services: &Services,
    ) -> Result<HostRules, ConfigError> {
        let mut host = HostRules::default();
        for (ui, rule) in http.rules.iter().enumerate() {
            let at = format!("routes[{ri}].http.rules[{ui}]");
            self.compile_rule(
                &at,
                RuleRef {
                    route: ri,
                    rule: ui,
                },
                rule,
                services,
                &mut host,
            )?;
        }
        for list in host
            .exact
            .values_mut()
            .chain(host.prefixes.values_mut())
            .chain(host.pattern_candidates.iter_mut())
            .chain(std::iter::once(&mut host.regexes))
        {
            list.sort_by_key(|c| c.precedence());
        }
        Ok(host)
    }

    fn compile_rule(
        &mut self,
        at: &str,
        rref: RuleRef,
        rule: &HttpRule,
        services: &Services,
        host: &mut HostRules,
    ) -> Result<(), ConfigError> {
        let e = |field: &str, kind| ConfigError::new(format!("{at}{field}"), kind);
        if rule.path.is_some() && !rule.matches.is_empty() {
            return Err(e("", K::Exclusive("path", "matches")));
        }
        // The seed's `path` is a prefix; no path at all matches everything (prefix `/`).
        let shorthand;
        let matches: &[HttpMatch] = match (&rule.path, rule.matches.is_empty()) {
            (Some(p), _) => {
                shorthand = [HttpMatch {
                    path: Some(PathMatch {
                        kind: PathMatchKind::PathPrefix,
                        value: p.clone(),
                    }),
                    ..HttpMatch::default()
                }];
                &shorthand
            }
            (None, true) => {
                shorthand = [HttpMatch::default()];
                &shorthand
            }
            (None, false) => &rule.matches,
        };
        let rule_index = self.rules.len();
        // Captures every match of the rule provides: the only names templates may use.
        let mut common_caps: Option<BTreeSet<String>> = None;
        let mut all_prefix = true;
        for (mi, m) in matches.iter().enumerate() {
            let mat = if rule.path.is_some() {
                String::new()
            } else {
                format!(".matches[{mi}]")
            };
            let caps = self.compile_match(at, &mat, rule_index, m, host)?;
            all_prefix &= m
                .path
                .as_ref()
                .is_none_or(|p| p.kind == PathMatchKind::PathPrefix);
            common_caps = Some(match common_caps {
                None => caps,
                Some(c) => c.intersection(&caps).cloned().collect(),
            });
        }
        let caps = common_caps.unwrap_or_default();
        let template = |field: &str, raw: &str| -> Result<Template, ConfigError> {
            let t = Template::parse(raw).map_err(|k| e(field, k))?;
            if let Some(missing) = t.captures().find(|c| !caps.contains(*c)) {
                return Err(e(field, K::UnknownCapture(missing.to_string())));
            }
            Ok(t)
        };
        let path_edit = |field: &str, m: &PathModifier| -> Result<PathEdit, ConfigError> {
            if !m.value.starts_with('/') {
                return Err(e(
                    field,
                    K::InvalidPath(format!("{} must start with `/`", quote(&m.value))),
                ));
            }
            let t = template(&format!("{field}.value"), &m.value)?;
            match m.kind {
                PathModifierKind::ReplaceFullPath => Ok(PathEdit::Full(t)),
                PathModifierKind::ReplacePrefixMatch if all_prefix => Ok(PathEdit::Prefix(t)),
                PathModifierKind::ReplacePrefixMatch => {
                    Err(e(field, K::PrefixRewriteWithoutPrefix))
                }
            }
        };
        let edits = |field: &str,
                     m: Option<&HeaderModifier>|
         -> Result<CompiledEdits, ConfigError> {
            let Some(m) = m else {
                return Ok(CompiledEdits::default());
            };
            let pairs = |list: &[HeaderValue], kind: &str| {
                list.iter()
                    .enumerate()
                    .map(|(i, hv)| {
                        let f = format!("{field}.{kind}[{i}]");
                        check_header_name(&hv.name).map_err(|k| e(&format!("{f}.name"), k))?;
                        check_header_value(&hv.value).map_err(|k| e(&format!("{f}.value"), k))?;
                        Ok((
                            hv.name.to_ascii_lowercase(),
                            template(&format!("{f}.value"), &hv.value)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, ConfigError>>()
            };
            let remove = m
                .remove
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    check_header_name(n).map_err(|k| e(&format!("{field}.remove[{i}]"), k))?;
                    Ok(n.to_ascii_lowercase())
                })
                .collect::<Result<Vec<_>, ConfigError>>()?;
            Ok(CompiledEdits {
                set: pairs(&m.set, "set")?,
                add: pairs(&m.add, "add")?,
                remove,
            })
        };

        let has_services = rule.backend.is_some() || !rule.backends.is_empty();
        let has_backend = has_services || rule.bucket.is_some();
        let actions = usize::from(has_services)
            + usize::from(rule.bucket.is_some())
            + usize::from(rule.status_code.is_some())
            + usize::from(rule.redirect.is_some());
        if actions != 1 {
            return Err(e("", K::ActionCount(actions)));
        }
        if !has_backend {
            if rule.url_rewrite.is_some() {
                return Err(e(".urlRewrite", K::ModifierWithoutBackend("urlRewrite")));
            }
            if rule.request_headers.is_some() {
                return Err(e(
                    ".requestHeaders",
                    K::ModifierWithoutBackend("requestHeaders"),
                ));
            }
            if rule.cors.is_some() {
                return Err(e(".cors", K::ModifierWithoutBackend("cors")));
            }
            if rule.policy.is_some() {
                return Err(e(".policy", K::ModifierWithoutBackend("policy")));
            }
        }
        let action = if let Some(sc) = &rule.status_code {
            if !(200..=599).contains(&sc.code) {
                return Err(e(".statusCode.code", K::InvalidStatusCode(sc.code)));
            }
            let headers = edits(
                ".statusCode",
                Some(&HeaderModifier {
                    set: sc.headers.clone(),
                    ..HeaderModifier::default()
                }),
            )
            .map_err(|mut err| {
                err.path = err.path.replace(".statusCode.set", ".statusCode.headers");
                err
            })?;
            Action::Reply {
                status: sc.code,
                headers: headers.set,
                body: sc.body.clone().unwrap_or_default(),
            }
        } else if let Some(r) = &rule.redirect {
            let status = r.status_code.unwrap_or(302);
            if ![301, 302, 303, 307, 308].contains(&status) {
                return Err(e(".redirect.statusCode", K::InvalidRedirectCode(status)));
            }
            if let Some(h) = &r.hostname {
                match HostPattern::parse(h) {
                    Ok(HostPattern::Exact(_)) => {}
                    _ => return Err(e(".redirect.hostname", K::InvalidHost(h.clone()))),
                }
            }
            if let Some(s) = &r.scheme {
                if !matches!(s.as_str(), "http" | "https") {
                    return Err(e(
                        ".redirect.scheme",
                        K::Schema(format!(
                            "unsupported scheme {}: expected http or https",
                            quote(s)
                        )),
                    ));
                }
                self.header_names.insert(":scheme".into());
            } else {
                self.header_names.insert(":scheme".into());
            }
            self.needs_listener_port |= r.port.is_none() && r.scheme.is_none();
            Action::Redirect {
                status,
                scheme: r.scheme.clone(),
                hostname: r.hostname.clone(),
                port: r.port,
                path: r
                    .path
                    .as_ref()
                    .map(|p| path_edit(".redirect.path", p))
                    .transpose()?,
            }
        } else {
            let bucket = rule
                .bucket
                .as_ref()
                .map(|b| CompiledBucket::compile(&format!("{at}.bucket"), b))
                .transpose()?;
            let backends = match &bucket {
                Some(b) => {
                    if rule
                        .url_rewrite
                        .as_ref()
                        .is_some_and(|r| r.hostname.is_some())
                    {
                        // The store's host is what the signature and the store check.
                        return Err(e(
                            ".urlRewrite.hostname",
                            K::Exclusive("bucket", "urlRewrite.hostname"),
                        ));
                    }
                    if rule.unresolved_weight > 0 {
                        return Err(e(
                            ".unresolvedWeight",
                            K::Exclusive("bucket", "unresolvedWeight"),
                        ));
                    }
                    self.needs_method = true;
                    CompiledBackends {
                        targets: vec![(b.name.clone(), Some(b.cluster.clone()))],
                        weights: WeightedSet::new([1]),
                    }
                }
                None => compile_backends(
                    at,
                    rule.backend.as_ref(),
                    &rule.backends,
                    rule.unresolved_weight,
                    services,
                )?,
            };
            let rewrite = rule.url_rewrite.as_ref();
            let authority = rewrite
                .and_then(|r| r.hostname.as_ref())
                .map(|h| {
                    let t = template(".urlRewrite.hostname", h)?;
                    if t.captures().next().is_none()
                        && !matches!(HostPattern::parse(h), Ok(HostPattern::Exact(_)))
                    {
                        return Err(e(".urlRewrite.hostname", K::InvalidHost(h.clone())));
                    }
                    Ok(t)
                })
                .transpose()?;
            let backend_edits = rule
                .backend
                .iter()
                .map(|b| (".backend".to_string(), b))
                .chain(
                    rule.backends
                        .iter()
                        .enumerate()
                        .map(|(i, b)| (format!(".backends[{i}]"), b)),
                )
                .map(|(f, b)| {
                    Ok((
                        edits(&format!("{f}.requestHeaders"), b.request_headers.as_ref())?,
                        edits(&format!("{f}.responseHeaders"), b.response_headers.as_ref())?,
                    ))
                })
                .collect::<Result<Vec<_>, ConfigError>>()?;
            let cors = rule
                .cors
                .as_ref()
                .map(|c| CompiledCors::compile(at, c))
                .transpose()?;
            if cors.is_some() {
                self.needs_method = true;
                self.header_names
                    .extend(CORS_REQUEST_HEADERS.iter().map(|h| h.to_string()));
            }
            if let Some(p) = &rule.policy {
                check_header_value(p).map_err(|k| e(".policy", k))?;
                if p.is_empty() {
                    return Err(e(".policy", K::EmptyName));
                }
                self.has_policies = true;
            }
            Action::Forward(Box::new(ForwardAction {
                backends,
                authority,
                path: rewrite
                    .and_then(|r| r.path.as_ref())
                    .map(|p| path_edit(".urlRewrite.path", p))
                    .transpose()?,
                request: edits(".requestHeaders", rule.request_headers.as_ref())?,
                response: edits(".responseHeaders", rule.response_headers.as_ref())?,
                backend_edits,
                cors,
                policy: rule.policy.clone(),
                bucket,
            }))
        };
        // Response header edits on a local reply apply to that reply.
        let action = match (action, &rule.response_headers) {
            (
                Action::Reply {
                    status,
                    mut headers,
                    body,
                },
                Some(m),
            ) => {
                let extra = edits(".responseHeaders", Some(m))?;
                headers.extend(extra.set);
                headers.extend(extra.add);
                Action::Reply {
                    status,
                    headers,
                    body,
                }
            }
            (a, _) => a,
        };
        self.rules.push(CompiledRule { at: rref, action });
        Ok(())
    }

    /// Compiles one match into a candidate in the host's index; returns its capture names.
    fn compile_match(
        &mut self,
        at: &str,
        mat: &str,
        rule: usize,
        m: &HttpMatch,
        host: &mut HostRules,
    ) -> Result<BTreeSet<String>, ConfigError> {
        let e = |field: &str, kind| ConfigError::new(format!("{at}{mat}{field}"), kind);
        let method = match &m.method {
            Some(me) => {
                if me.is_empty() || !me.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(e(".method", K::InvalidMethod(me.clone())));
                }
                self.needs_method = true;
                Some(me.as_bytes().into())
            }
            None => None,
        };
        let mut headers = Vec::new();
        for (i, h) in m.headers.iter().enumerate() {
            let f = format!(".headers[{i}]");
            check_header_name(&h.name).map_err(|k| e(&format!("{f}.name"), k))?;
            let name = h.name.to_ascii_lowercase();
            self.header_names.insert(name.clone());
            let value = || {
                h.value
                    .as_deref()
                    .ok_or_else(|| e(&format!("{f}.value"), K::MissingValue))
            };
            headers.push(match h.kind {
                HeaderMatchKind::Exact => {
                    HeaderCond::Value(name, ValueMatch::Exact(value()?.as_bytes().into()))
                }
                HeaderMatchKind::RegularExpression => HeaderCond::Value(
                    name,
                    ValueMatch::Regex(
                        self.regexes
                            .compile(&anchored(value()?))
                            .map_err(|k| e(&format!("{f}.value"), k))?,
                    ),
                ),
                HeaderMatchKind::Present => HeaderCond::Present(name),
                HeaderMatchKind::Absent => HeaderCond::Absent(name),
            });
        }
        let mut query = Vec::new();
        for (i, q) in m.query_params.iter().enumerate() {
            let f = format!(".queryParams[{i}]");
            if q.name.is_empty() {
                return Err(e(&format!("{f}.name"), K::EmptyName));
            }
            let value = match q.kind {
                QueryMatchKind::Exact => ValueMatch::Exact(q.value.as_bytes().into()),
                QueryMatchKind::RegularExpression => ValueMatch::Regex(
                    self.regexes
                        .compile(&anchored(&q.value))
                        .map_err(|k| e(&format!("{f}.value"), k))?,
                ),
            };
            query.push(QueryCond {
                name: q.name.clone(),
                value,
            });
        }
        let mut cand = Candidate {
            rule,
            order: self.order,
            regex: None,
            prefix_len: 0,
            method,
            headers,
            query,
        };
        self.order += 1;
        let mut caps = BTreeSet::new();
        let (kind, value) = match &m.path {
            Some(p) => (p.kind, p.value.as_str()),
            None => (PathMatchKind::PathPrefix, "/"),
        };
        let path_field = if mat.is_empty() {
            ".path"
        } else {
            ".path.value"
        };
        if kind != PathMatchKind::RegularExpression {
            if !value.starts_with('/') {
                return Err(e(
                    path_field,
                    K::InvalidPath(format!("{} must start with `/`", quote(value))),
                ));
            }
            if value.contains('?') || value.contains('#') {
                return Err(e(
                    path_field,
                    K::InvalidPath(format!("{} must not contain `?` or `#`", quote(value))),
                ));
            }
        }
        match kind {
            PathMatchKind::Exact => {
                host.exact
                    .entry(value.as_bytes().into())
                    .or_default()
                    .push(cand);
            }
            PathMatchKind::PathPrefix => {
                let key = trim_trailing_slashes(value.as_bytes());
                cand.prefix_len = key.len();
                host.prefixes.entry(key.into()).or_default().push(cand);
            }
            PathMatchKind::RegularExpression => {
                cand.regex = Some(
                    self.regexes
                        .compile(&anchored(value))
                        .map_err(|k| e(path_field, k))?,
                );
                host.regexes.push(cand);
            }
            PathMatchKind::Pattern => {
                let id = match host.pattern_ids.get(value) {
                    Some(id) => *id,
                    None => {
                        let router = host.patterns.get_or_insert_with(matchit::Router::new);
                        let id = host.pattern_candidates.len();
                        router
                            .insert(value, id)
                            .map_err(|err| e(path_field, K::ConflictingPattern(err.to_string())))?;
                        host.pattern_ids.insert(value.to_string(), id);
                        host.pattern_candidates.push(Vec::new());
                        id
                    }
                };
                caps = pattern_captures(value);
                if let Some(list) = host.pattern_candidates.get_mut(id) {
                    list.push(cand);
                }
            }
        }
        Ok(caps)
    }
}

/// Parameter names of a matchit pattern: `{id}` and `{*rest}`.
fn pattern_captures(pattern: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let Some(after) = rest.get(open + 1..) else {
            break;
        };
        let Some(close) = after.find('}') else { break };
        if let Some(name) = after.get(..close) {
            out.insert(name.trim_start_matches('*').to_string());
        }
        rest = after.get(close + 1..).unwrap_or_default();
    }
    out
}
