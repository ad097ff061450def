//! Envoy output: a bootstrap that runs the filters, and the equivalent native route
//! configuration without Wasm.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use wasmgate_core::config::{
    self as fc, BalancerConfig, HeaderMatchKind, PathMatchKind, PathModifierKind, QueryMatchKind,
    RouterConfig,
};

use wasmgate_core::observe;

use crate::envoy_api as api;
use crate::ha;
use crate::policy::ClusterPolicy;
use crate::resolve::Endpoints;

/// What the listeners of one bootstrap look like.
pub struct Layout<'a> {
    pub address: &'a str,
    pub admin_port: u16,
    /// The HTTP listeners: Envoy listener name, port, and the router config it runs.
    pub http: Vec<(&'a str, u16, &'a RouterConfig)>,
    pub router_wasm: &'a Path,
    pub balancer_wasm: &'a Path,
    /// Set: the router and balancer run as this one module on the HTTP listeners.
    pub combined_wasm: Option<&'a Path>,
    /// Where the access log goes (`/dev/stdout` by default).
    pub access_log: &'a str,
    /// The proxy's own region and zone: the failover order of member clusters starts there.
    pub region: Option<&'a str>,
    pub zone: Option<&'a str>,
}

/// The access log: one JSON object per request, with what the filters decided.
fn access_log(path: &str, wasm: bool) -> Value {
    let mut fields = json!({
        "start": "%START_TIME%",
        "method": "%REQ(:METHOD)%",
        "authority": "%REQ(:AUTHORITY)%",
        "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "status": "%RESPONSE_CODE%",
        "flags": "%RESPONSE_FLAGS%",
        "cluster": "%UPSTREAM_CLUSTER%",
        "upstream": "%UPSTREAM_HOST%",
        "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
        "duration_ms": "%DURATION%"
    });
    if wasm {
        fields["route"] = json!(observe::access_log_operator(observe::ROUTE_STATE));
        fields["member"] = json!(observe::access_log_operator(observe::MEMBER_STATE));
    }
    api::value(api::extension(
        "envoy.access_loggers.file",
        api::FileAccessLog {
            path: path.into(),
            log_format: api::JsonFormat {
                json_format: fields,
            },
        },
    ))
}

fn wasm_config(root_id: &str, wasm: &Path, configuration: &str) -> api::PluginConfig {
    api::PluginConfig {
        name: root_id.into(),
        root_id: root_id.into(),
        fail_open: false,
        vm_config: api::VmConfig {
            vm_id: "wasmgate".into(),
            runtime: "envoy.wasm.runtime.v8".into(),
            code: api::VmCode {
                local: api::LocalFile {
                    filename: wasm.display().to_string(),
                },
            },
        },
        configuration: api::Typed::new(api::StringValue {
            value: configuration.into(),
        }),
    }
}

fn http_wasm(root_id: &str, wasm: &Path, configuration: &str) -> Value {
    let config = wasm_config(root_id, wasm, configuration);
    api::value(api::extension(root_id, api::HttpWasm { config }))
}

fn network_wasm(root_id: &str, wasm: &Path, configuration: &str) -> Value {
    let config = wasm_config(root_id, wasm, configuration);
    api::value(api::extension(root_id, api::NetworkWasm { config }))
}

/// Envoy's outlier detection inside a cluster: it ejects single bad endpoints, never more
/// than half of them, so a member cluster that is wholly down is left to the balancer.
fn outlier_detection() -> api::OutlierDetection {
    api::OutlierDetection {
        consecutive_5xx: 5,
        consecutive_gateway_failure: 3,
        enforcing_consecutive_gateway_failure: 100,
        interval: "1s".into(),
        base_ejection_time: format!("{}s", ha::EJECT_BASE_MS / 1000),
        max_ejection_percent: 50,
    }
}

fn duration(ms: u64) -> String {
    format!("{}s", ms as f64 / 1000.0)
}

fn clusters(
    endpoints: &Endpoints,
    health_paths: &BTreeMap<String, String>,
    policies: &BTreeMap<String, ClusterPolicy>,
) -> Vec<Value> {
    endpoints
        .iter()
        .map(|(name, eps)| {
            let addresses = eps
                .iter()
                .map(|ep| {
                    let (host, port) = ep.rsplit_once(':').unwrap_or((ep, "80"));
                    api::socket(host, port.parse().unwrap_or(80))
                })
                .collect();
            let mut c = api::Cluster::new(name, addresses);
            c.outlier_detection = Some(outlier_detection());
            if let Some(p) = policies.get(name) {
                if let Some(ms) = p.connect_timeout_ms {
                    c.connect_timeout = duration(ms);
                }
                if p.max_connections.is_some()
                    || p.max_pending_requests.is_some()
                    || p.max_requests.is_some()
                {
                    c.circuit_breakers = Some(api::CircuitBreakers {
                        thresholds: vec![api::Thresholds {
                            max_connections: p.max_connections,
                            max_pending_requests: p.max_pending_requests,
                            max_requests: p.max_requests,
                            ..Default::default()
                        }],
                    });
                }
            }
            // Envoy checks the endpoints inside a member cluster; the balancer checks members.
            // Same pace as the balancer's checks, also before the cluster's first request.
            if let Some(path) = health_paths.get(name) {
                let interval = duration(ha::CHECK_INTERVAL_MS);
                c.health_checks = Some(vec![api::HealthCheck {
                    timeout: duration(ha::CHECK_TIMEOUT_MS),
                    interval: interval.clone(),
                    no_traffic_interval: interval,
                    unhealthy_threshold: ha::CHECK_UNHEALTHY_THRESHOLD,
                    healthy_threshold: ha::CHECK_HEALTHY_THRESHOLD,
                    http_health_check: api::HttpHealthCheck { path: path.clone() },
                }]);
            }
            api::value(c)
        })
        .collect()
}

/// One aggregate cluster per member of a multi-cluster service that has a failover cluster:
/// the member first, then the others nearest first. Envoy's retry with
/// `previous_priorities` moves each retry to the next member.
fn failover_clusters(balancer: Option<&BalancerConfig>, layout: &Layout<'_>) -> Vec<Value> {
    let proxy = layout.region.map(|r| (r, layout.zone));
    let mut out = Vec::new();
    for svc in balancer.iter().flat_map(|b| b.services.values()) {
        for (i, m) in svc.members.iter().enumerate() {
            let Some(name) = &m.failover_cluster else {
                continue;
            };
            let children = ha::failover_order(&svc.members, i, proxy)
                .iter()
                .map(|m| m.cluster.clone())
                .collect();
            out.push(api::value(api::AggregateCluster {
                name: name.clone(),
                connect_timeout: "1s".into(),
                lb_policy: "CLUSTER_PROVIDED",
                cluster_type: api::extension(
                    "envoy.clusters.aggregate",
                    api::AggregateClusterConfig { clusters: children },
                ),
                // Retries are what this cluster is for: let a fifth of its requests retry at
                // once (at least 16), not Envoy's default of 3 concurrent retries.
                circuit_breakers: api::CircuitBreakers {
                    thresholds: vec![api::Thresholds {
                        retry_budget: Some(api::RetryBudget {
                            budget_percent: api::Percent { value: 20.0 },
                            min_retry_concurrency: 16,
                        }),
                        ..Default::default()
                    }],
                },
            }));
        }
    }
    out
}

/// A route to the cluster the filters chose, retrying what is safe to retry: a failed
/// connect or refused stream for any method (the request never reached a backend), a reset
/// only for idempotent methods. Each retry goes to another priority, which in a failover
/// cluster is another member. `method`: the route for one idempotent method (an exact match,
/// which every consumer of the bootstrap, host-sim included, reads); `None`: the rest.
fn steered_route(cluster_header: &str, method: Option<&str>, retries: usize) -> Value {
    let idempotent = method.is_some();
    let mut route = api::RouteAction {
        cluster_header: Some(cluster_header.into()),
        ..Default::default()
    };
    if retries > 0 {
        let retry_on = if idempotent {
            "connect-failure,refused-stream,reset"
        } else {
            "connect-failure,refused-stream,reset-before-request"
        };
        route.retry_policy = Some(api::RetryPolicy {
            retry_on,
            num_retries: retries,
            retry_priority: api::extension(
                "envoy.retry_priorities.previous_priorities",
                api::PreviousPriorities {
                    update_frequency: 1,
                },
            ),
            retry_host_predicate: vec![api::extension(
                "envoy.retry_host_predicates.previous_hosts",
                api::PreviousHosts {},
            )],
            host_selection_retry_max_attempts: 3,
            retry_back_off: api::RetryBackOff {
                base_interval: "0.005s".into(),
                max_interval: "0.05s".into(),
            },
        });
    }
    let mut matcher = api::RouteMatch::new(api::PathMatch::Prefix("/".into()));
    if let Some(m) = method {
        matcher.headers = vec![api::HeaderMatcher::exact(":method", m)];
    }
    api::value(api::Route {
        matching: matcher,
        entry: api::RouteEntry {
            route: Some(route),
            ..Default::default()
        },
    })
}

/// The bootstrap running the router (and the balancer when multi-cluster services are used).
pub fn bootstrap(
    router: &RouterConfig,
    balancer: Option<&BalancerConfig>,
    endpoints: &Endpoints,
    health_paths: &BTreeMap<String, String>,
    policies: &BTreeMap<String, ClusterPolicy>,
    layout: &Layout<'_>,
) -> Value {
    let router_json = serde_json::to_string(router).unwrap_or_default();
    let balancer_json = balancer.map(|b| serde_json::to_string(b).unwrap_or_default());
    // Retries after the first attempt: one per other member, at most ha::MAX_RETRIES; a
    // service cluster of several endpoints gets one retry to another endpoint.
    let most_members = balancer
        .iter()
        .flat_map(|b| b.services.values())
        .map(|s| s.members.len())
        .max()
        .unwrap_or(1);
    let retries = most_members.saturating_sub(1).clamp(1, ha::MAX_RETRIES);
    let vhost = api::VirtualHost {
        name: "wasmgate".into(),
        domains: vec!["*".into()],
        routes: ha::IDEMPOTENT_METHODS
            .iter()
            .map(|m| Some(*m))
            .chain([None])
            .map(|m| steered_route(&router.cluster_header, m, retries))
            .collect(),
        // The balancer reads (and removes) Envoy's attempt count: a response after a retry
        // tells it the member it picked failed.
        include_attempt_count_in_response: balancer.is_some().then_some(true),
    };
    let route_config = api::value(api::RouteConfiguration {
        name: "wasmgate".into(),
        virtual_hosts: vec![vhost],
    });
    // Each listener runs the router on its own routes.
    let mut listeners: Vec<Value> = layout
        .http
        .iter()
        .map(|(name, port, own)| {
            let own_json = serde_json::to_string(own).unwrap_or_default();
            let filters = match (layout.combined_wasm, balancer) {
                // One Wasm filter: Envoy's per-filter cost (a context per stream, a VM entry
                // per callback) paid once.
                (Some(combined), Some(b)) => {
                    let config = json!({"router": own, "balancer": b}).to_string();
                    vec![http_wasm("wasmgate.combined", combined, &config)]
                }
                _ => {
                    let mut filters =
                        vec![http_wasm("wasmgate.router", layout.router_wasm, &own_json)];
                    if let Some(b) = &balancer_json {
                        filters.push(http_wasm("wasmgate.balancer", layout.balancer_wasm, b));
                    }
                    filters
                }
            };
            let log = access_log(layout.access_log, true);
            let hcm = api::http_connection_manager(route_config.clone(), filters, vec![log]);
            api::listener(*name, api::socket(layout.address, *port), vec![hcm])
        })
        .collect();
    for route in router.routes.iter().filter_map(|r| r.tcp.as_ref()) {
        let backend = route.rules.first().and_then(|r| r.backend.as_ref());
        let mut network = vec![network_wasm(
            "wasmgate.router.tcp",
            layout.router_wasm,
            &router_json,
        )];
        // A multi-cluster backend is picked by the balancer's network root after the router.
        let fallback = match backend.and_then(|b| b.cluster.clone()) {
            Some(c) => c,
            None => {
                if let Some(b) = &balancer_json {
                    network.push(network_wasm(
                        "wasmgate.balancer.tcp",
                        layout.balancer_wasm,
                        b,
                    ));
                }
                let service = backend.map(|b| b.service.as_str()).unwrap_or_default();
                balancer
                    .and_then(|b| b.services.get(service))
                    .and_then(|s| s.members.first())
                    .map(|m| m.cluster.clone())
                    .unwrap_or_default()
            }
        };
        network.push(api::value(api::extension(
            "envoy.filters.network.tcp_proxy",
            api::TcpProxy {
                stat_prefix: format!("tcp_{}", route.port),
                // tcp_proxy needs a cluster; the filters override it per connection.
                cluster: fallback,
            },
        )));
        listeners.push(api::listener(
            format!("tcp_{}", route.port),
            api::socket(layout.address, route.port),
            network,
        ));
    }
    let mut all_clusters = clusters(endpoints, health_paths, policies);
    all_clusters.extend(failover_clusters(balancer, layout));
    api::bootstrap(
        api::socket(layout.address, layout.admin_port),
        listeners,
        all_clusters,
    )
}

/// Why a rule has no native equivalent (it is left out of the native config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeGap {
    pub route: usize,
    pub rule: usize,
    pub reason: String,
}

/// The router's candidate order: path kind, longer prefix, method, more headers, more query
/// matches, configuration order.
type Precedence = (u8, isize, bool, isize, isize, usize);

/// Envoy's domains for a router host: with any port, and with the trailing dot of a fully
/// qualified name, which the router ignores and Envoy compares literally.
fn domains(host: &str) -> Vec<String> {
    match host.trim_end_matches('.') {
        "" | "*" => vec!["*".into()],
        h => vec![
            h.to_string(),
            format!("{h}:*"),
            format!("{h}."),
            format!("{h}.:*"),
        ],
    }
}

fn string_match(kind_regex: bool, value: &str) -> api::StringMatcher {
    if kind_regex {
        api::StringMatcher::SafeRegex(api::regex(value))
    } else {
        api::StringMatcher::Exact(value.into())
    }
}

/// A matchit pattern as a regular expression: `{x}` is one segment, `{*x}` the rest.
fn pattern_regex(pattern: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&regex_escape(&rest[..open]));
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        out.push_str(if name.starts_with('*') { ".*" } else { "[^/]+" });
        rest = &rest[open + close + 1..];
    }
    out.push_str(&regex_escape(rest));
    out
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

fn header_values(list: &[fc::HeaderValue], append: &'static str) -> Vec<api::HeaderValueOption> {
    list.iter()
        .map(|h| api::HeaderValueOption {
            header: api::HeaderValue {
                key: h.name.clone(),
                value: h.value.clone(),
            },
            append_action: append,
        })
        .collect()
}

fn uses_template(s: &str) -> bool {
    s.contains('{')
}

/// Envoy's own route table for the router's config. Envoy matches routes in order, so rules
/// are emitted in the router's precedence; what Envoy cannot express is reported.
pub fn native_route_config(
    router: &RouterConfig,
    balancer: Option<&BalancerConfig>,
) -> (Value, Vec<NativeGap>) {
    let mut gaps = Vec::new();
    let mut vhosts = Vec::new();
    for (ri, route) in router.routes.iter().enumerate() {
        let Some(http) = &route.http else { continue };
        // (rank, -prefix length, method first, -headers, -query, order) as the router orders.
        let mut entries: Vec<(Precedence, Value)> = Vec::new();
        let mut order = 0;
        for (ui, rule) in http.rules.iter().enumerate() {
            let action = match native_action(rule, balancer) {
                Ok(a) => a,
                Err(reason) => {
                    gaps.push(NativeGap {
                        route: ri,
                        rule: ui,
                        reason,
                    });
                    continue;
                }
            };
            let matches: Vec<fc::HttpMatch> = match (&rule.path, rule.matches.is_empty()) {
                (Some(p), _) => vec![fc::HttpMatch {
                    path: Some(fc::PathMatch {
                        kind: PathMatchKind::PathPrefix,
                        value: p.clone(),
                    }),
                    ..Default::default()
                }],
                (None, true) => vec![fc::HttpMatch::default()],
                (None, false) => rule.matches.clone(),
            };
            for m in matches {
                let (kind, value) = m
                    .path
                    .as_ref()
                    .map_or((PathMatchKind::PathPrefix, "/".to_string()), |p| {
                        (p.kind, p.value.clone())
                    });
                let (rank, path_match) = match kind {
                    PathMatchKind::Exact => (0, api::PathMatch::Path(value.clone())),
                    PathMatchKind::Pattern => (
                        1,
                        api::PathMatch::SafeRegex(api::regex(pattern_regex(&value))),
                    ),
                    PathMatchKind::RegularExpression => {
                        (2, api::PathMatch::SafeRegex(api::regex(value.clone())))
                    }
                    PathMatchKind::PathPrefix => {
                        let trimmed = value.trim_end_matches('/');
                        if trimmed.is_empty() {
                            (3, api::PathMatch::Prefix("/".into()))
                        } else {
                            (3, api::PathMatch::PathSeparatedPrefix(trimmed.into()))
                        }
                    }
                };
                let mut matcher = api::RouteMatch::new(path_match);
                matcher.headers = m
                    .headers
                    .iter()
                    .map(|h| {
                        let name = h.name.to_ascii_lowercase();
                        match h.kind {
                            HeaderMatchKind::Exact | HeaderMatchKind::RegularExpression => {
                                let regex = h.kind == HeaderMatchKind::RegularExpression;
                                let value = h.value.as_deref().unwrap_or("");
                                api::HeaderMatcher::matching(name, string_match(regex, value))
                            }
                            HeaderMatchKind::Present => api::HeaderMatcher::present(name, true),
                            HeaderMatchKind::Absent => api::HeaderMatcher::present(name, false),
                        }
                    })
                    .collect();
                if let Some(method) = &m.method {
                    matcher
                        .headers
                        .push(api::HeaderMatcher::exact(":method", method));
                }
                matcher.query_parameters = m
                    .query_params
                    .iter()
                    .map(|q| api::QueryParameterMatcher {
                        name: q.name.clone(),
                        string_match: string_match(
                            q.kind == QueryMatchKind::RegularExpression,
                            &q.value,
                        ),
                    })
                    .collect();
                let prefix_len = if rank == 3 {
                    value.trim_end_matches('/').len() as isize
                } else {
                    0
                };
                let key = (
                    rank,
                    -prefix_len,
                    m.method.is_none(),
                    -(m.headers.len() as isize),
                    -(m.query_params.len() as isize),
                    order,
                );
                order += 1;
                let route = api::Route {
                    matching: matcher,
                    entry: action.clone(),
                };
                entries.push((key, api::value(route)));
            }
        }
        entries.sort_by_key(|e| e.0);
        vhosts.push(api::VirtualHost {
            name: format!("host_{ri}"),
            domains: domains(&http.host),
            routes: entries.into_iter().map(|(_, v)| v).collect(),
            include_attempt_count_in_response: None,
        });
    }
    let routes = api::RouteConfiguration {
        name: "wasmgate-native".into(),
        virtual_hosts: vhosts,
    };
    (api::value(routes), gaps)
}

fn native_action(
    rule: &fc::HttpRule,
    balancer: Option<&BalancerConfig>,
) -> Result<api::RouteEntry, String> {
    let backend_edits = rule
        .backend
        .iter()
        .chain(&rule.backends)
        .any(|b| b.request_headers.is_some() || b.response_headers.is_some());
    if rule.bucket.is_some() {
        // Key mapping, index and fallback documents, 405 and the 404 for a missing key are
        // the router's work; Envoy's routes alone cannot do them.
        return Err("storage buckets are served by the router only".into());
    }
    if rule.cors.is_some() || rule.policy.is_some() || backend_edits {
        return Err(
            "CORS, backend header edits, timeouts, retries and mirrors are not translated natively"
                .into(),
        );
    }
    let mut v = api::RouteEntry::default();
    if let Some(sc) = &rule.status_code {
        v.direct_response = Some(api::DirectResponse {
            status: sc.code,
            body: api::InlineString {
                inline_string: sc.body.clone().unwrap_or_default(),
            },
        });
        v.response_headers_to_add = header_values(&sc.headers, "OVERWRITE_IF_EXISTS_OR_ADD");
        return Ok(v);
    }
    if let Some(r) = &rule.redirect {
        let mut red = api::RedirectAction {
            scheme_redirect: r.scheme.clone(),
            host_redirect: r.hostname.clone(),
            port_redirect: r.port,
            ..Default::default()
        };
        match &r.path {
            Some(p) if uses_template(&p.value) => {
                return Err("capture templates have no native equivalent".into())
            }
            Some(p) if p.kind == PathModifierKind::ReplaceFullPath => {
                red.path_redirect = Some(p.value.clone())
            }
            Some(p) => red.regex_rewrite = Some(prefix_rewrite(rule, &p.value)?),
            None => {}
        }
        red.response_code = match r.status_code.unwrap_or(302) {
            301 => "MOVED_PERMANENTLY",
            303 => "SEE_OTHER",
            307 => "TEMPORARY_REDIRECT",
            308 => "PERMANENT_REDIRECT",
            _ => "FOUND",
        };
        v.redirect = Some(red);
        return Ok(v);
    }
    if rule.unresolved_weight > 0 {
        return Err("a share of unresolved backends answering 500 has no native equivalent".into());
    }
    // Backends: a multi-cluster service spreads over its members by weight (no health,
    // affinity or locality natively).
    let mut targets: Vec<(String, u32)> = Vec::new();
    for b in rule.backend.iter().chain(&rule.backends) {
        match (
            &b.cluster,
            balancer.and_then(|bal| bal.services.get(&b.service)),
        ) {
            (Some(c), _) => targets.push((c.clone(), b.weight)),
            (None, Some(svc)) => {
                let total: u32 = svc.members.iter().map(|m| m.weight).sum::<u32>().max(1);
                for m in &svc.members {
                    targets.push((
                        m.cluster.clone(),
                        (b.weight * m.weight * 100).div_ceil(total),
                    ));
                }
            }
            (None, None) => return Err(format!("backend {} has no cluster", b.service)),
        }
    }
    let mut route = match targets.as_slice() {
        [(c, _)] => api::RouteAction {
            cluster: Some(c.clone()),
            ..Default::default()
        },
        _ => api::RouteAction {
            weighted_clusters: Some(api::WeightedClusters {
                clusters: targets
                    .into_iter()
                    .map(|(name, weight)| api::ClusterWeight { name, weight })
                    .collect(),
            }),
            ..Default::default()
        },
    };
    if let Some(rw) = &rule.url_rewrite {
        if let Some(h) = &rw.hostname {
            if uses_template(h) {
                return Err("capture templates have no native equivalent".into());
            }
            route.host_rewrite_literal = Some(h.clone());
        }
        match &rw.path {
            Some(p) if uses_template(&p.value) => {
                return Err("capture templates have no native equivalent".into())
            }
            Some(p) if p.kind == PathModifierKind::ReplacePrefixMatch => {
                route.regex_rewrite = Some(prefix_rewrite(rule, &p.value)?)
            }
            Some(p) => {
                route.regex_rewrite = Some(api::RegexRewrite {
                    pattern: api::regex("^/.*$"),
                    substitution: p.value.clone(),
                })
            }
            None => {}
        }
    }
    v.route = Some(route);
    for (add, remove, m) in [
        (
            &mut v.request_headers_to_add,
            &mut v.request_headers_to_remove,
            &rule.request_headers,
        ),
        (
            &mut v.response_headers_to_add,
            &mut v.response_headers_to_remove,
            &rule.response_headers,
        ),
    ] {
        let Some(m) = m else { continue };
        if m.set.iter().chain(&m.add).any(|h| uses_template(&h.value)) {
            return Err("capture templates have no native equivalent".into());
        }
        add.extend(header_values(&m.set, "OVERWRITE_IF_EXISTS_OR_ADD"));
        add.extend(header_values(&m.add, "APPEND_IF_EXISTS_OR_ADD"));
        remove.extend(m.remove.iter().cloned());
    }
    Ok(v)
}

/// Gateway API's ReplacePrefixMatch as a regex rewrite: Envoy's literal `prefix_rewrite`
/// would turn `/old/x` with replacement `/` into `//x`.
fn prefix_rewrite(rule: &fc::HttpRule, replacement: &str) -> Result<api::RegexRewrite, String> {
    let mut prefixes = rule
        .path
        .iter()
        .cloned()
        .chain(rule.matches.iter().map(|m| {
            m.path
                .as_ref()
                .map_or_else(|| "/".to_string(), |p| p.value.clone())
        }));
    let first = prefixes.next().unwrap_or_else(|| "/".into());
    if prefixes.any(|p| p != first) {
        return Err(
            "a prefix rewrite over several different prefixes has no single native rewrite".into(),
        );
    }
    let prefix = regex_escape(first.trim_end_matches('/'));
    let pattern = if replacement.ends_with('/') {
        format!("^{prefix}/?")
    } else {
        format!("^{prefix}")
    };
    Ok(api::RegexRewrite {
        pattern: api::regex(pattern),
        substitution: replacement.into(),
    })
}

/// The native bootstrap: the same listeners and clusters, Envoy's own routes, no Wasm.
pub fn native_bootstrap(
    balancer: Option<&BalancerConfig>,
    endpoints: &Endpoints,
    layout: &Layout<'_>,
) -> (Value, Vec<NativeGap>) {
    let mut gaps: Vec<NativeGap> = Vec::new();
    let listeners: Vec<Value> = layout
        .http
        .iter()
        .map(|(name, port, router)| {
            let (routes, mut own_gaps) = native_route_config(router, balancer);
            // One listener's gaps are everyone's when listeners share routes.
            own_gaps.retain(|g| !gaps.contains(g));
            gaps.extend(own_gaps);
            let log = access_log(layout.access_log, false);
            let hcm = api::http_connection_manager(routes, Vec::new(), vec![log]);
            api::listener(*name, api::socket(layout.address, *port), vec![hcm])
        })
        .collect();
    let boot = api::bootstrap(
        api::socket(layout.address, layout.admin_port),
        listeners,
        clusters(endpoints, &BTreeMap::new(), &BTreeMap::new()),
    );
    (boot, gaps)
}
