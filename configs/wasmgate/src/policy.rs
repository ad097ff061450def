//! Tuning a multi-cluster service with an Istio `DestinationRule`: the policy object people
//! who run Envoy-based meshes already write for a service, read here for the multi-cluster
//! service its `spec.host` names. What maps, and to what:
//!
//! | DestinationRule field | wasmgate |
//! |---|---|
//! | `trafficPolicy.loadBalancer.simple: ROUND_ROBIN` | the balancer's weighted round robin (the default) |
//! | `loadBalancer.consistentHash.httpHeaderName` | `affinity: {header}` |
//! | `loadBalancer.consistentHash.httpCookie {name, ttl, path}` | `affinity: {cookie: {name, ttlSeconds, path}}` (a TTL issues the cookie, as Istio does) |
//! | `loadBalancer.consistentHash.useSourceIp` | `affinity: sourceAddress` |
//! | `loadBalancer.localityLbSetting.enabled` | `locality: {}`: zone, region, then anywhere, Envoy's 1.4 overprovisioning |
//! | `outlierDetection.consecutive5xxErrors` | `health.passive.consecutiveErrors` (0 turns passive ejection off) |
//! | `outlierDetection.baseEjectionTime` | `health.passive.baseEjectionMs` |
//! | `outlierDetection.maxEjectionPercent` | `health.passive.maxEjectionPercent` |
//! | `connectionPool.tcp.connectTimeout` | `connect_timeout` of each member's Envoy cluster |
//! | `connectionPool.tcp.maxConnections` | `circuit_breakers` `max_connections` of each member's cluster |
//! | `connectionPool.http.http1MaxPendingRequests` | `max_pending_requests` |
//! | `connectionPool.http.http2MaxRequests` | `max_requests` |
//!
//! Everything else is refused with its field path, never dropped: a rule that says more than
//! wasmgate does would otherwise look honoured.

use wasmgate_core::config::{self as fc, Affinity, CookieAffinity, LocalityPolicy};

use crate::error::{ErrorKind, GenError, Location};
use crate::model::*;

/// What a policy sets on each member's Envoy cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterPolicy {
    pub connect_timeout_ms: Option<u64>,
    pub max_connections: Option<u32>,
    pub max_pending_requests: Option<u32>,
    pub max_requests: Option<u32>,
}

impl ClusterPolicy {
    pub fn is_empty(&self) -> bool {
        *self == ClusterPolicy::default()
    }
}

/// `500ms`, `30s`, `1.5s`, `5m`, `1h` (protobuf Duration and Go spellings) in milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit {
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    let ms = n * scale;
    (ms.is_finite() && (0.0..1e15).contains(&ms)).then_some(ms.round() as u64)
}

/// Collects refusals and invalid values of one DestinationRule.
struct Check<'a> {
    at: &'a Location,
    errors: &'a mut Vec<GenError>,
}

impl Check<'_> {
    fn fail(&mut self, field: &str, kind: ErrorKind) {
        self.errors.push(GenError {
            at: Location {
                field: field.to_string(),
                ..self.at.clone()
            },
            kind,
        });
    }

    /// Refuses a field wasmgate cannot honour, when it is set.
    fn refuse<T>(&mut self, value: &Option<T>, field: &str, why: &'static str) {
        if value.is_some() {
            self.fail(field, ErrorKind::PolicyRefused(why));
        }
    }

    fn duration(&mut self, value: &Option<String>, field: &str) -> Option<u64> {
        let v = value.as_ref()?;
        let ms = parse_duration_ms(v);
        if ms.is_none() {
            self.fail(field, ErrorKind::PolicyDuration(v.clone()));
        }
        ms
    }
}

/// Applies `rule` to `svc` (the balancer's view) and returns what the member clusters get.
/// Errors name the rule's file, document and field.
pub fn apply(
    rule: &DestinationRule,
    at: &Location,
    svc: &mut fc::MultiClusterService,
    errors: &mut Vec<GenError>,
) -> ClusterPolicy {
    let mut c = Check { at, errors };
    let spec = &rule.spec;
    c.refuse(
        &spec.subsets,
        "spec.subsets",
        "member clusters come from the MultiClusterService and the inventory, not subsets",
    );
    c.refuse(
        &spec.export_to,
        "spec.exportTo",
        "the generated config is not namespaced",
    );
    c.refuse(
        &spec.workload_selector,
        "spec.workloadSelector",
        "the policy applies to the proxy the config is generated for",
    );
    let mut cluster = ClusterPolicy::default();
    let Some(tp) = &spec.traffic_policy else {
        return cluster;
    };
    let base = "spec.trafficPolicy";
    c.refuse(
        &tp.tls,
        &format!("{base}.tls"),
        "upstream TLS is not generated",
    );
    c.refuse(
        &tp.port_level_settings,
        &format!("{base}.portLevelSettings"),
        "a multi-cluster service is routed on one port; set the policy at the top level",
    );
    c.refuse(&tp.tunnel, &format!("{base}.tunnel"), "no tunnelling");
    c.refuse(
        &tp.proxy_protocol,
        &format!("{base}.proxyProtocol"),
        "no PROXY protocol upstream",
    );
    if let Some(lb) = &tp.load_balancer {
        let at = format!("{base}.loadBalancer");
        match lb.simple.as_deref() {
            None | Some("ROUND_ROBIN") | Some("UNSPECIFIED") => {}
            Some(other) => c.fail(
                &format!("{at}.simple"),
                ErrorKind::LoadBalancer(other.to_string()),
            ),
        }
        c.refuse(
            &lb.warmup_duration_secs,
            &format!("{at}.warmupDurationSecs"),
            "use the balancer's slowStartMs",
        );
        c.refuse(
            &lb.warmup,
            &format!("{at}.warmup"),
            "use the balancer's slowStartMs",
        );
        if let Some(h) = &lb.consistent_hash {
            let hat = format!("{at}.consistentHash");
            let why = "the balancer hashes a header, a cookie or the source address by weighted rendezvous hashing";
            c.refuse(
                &h.http_query_parameter_name,
                &format!("{hat}.httpQueryParameterName"),
                why,
            );
            c.refuse(&h.ring_hash, &format!("{hat}.ringHash"), why);
            c.refuse(&h.maglev, &format!("{hat}.maglev"), why);
            c.refuse(&h.minimum_ring_size, &format!("{hat}.minimumRingSize"), why);
            let mut keys = Vec::new();
            if let Some(name) = &h.http_header_name {
                keys.push(Affinity::Header(name.clone()));
            }
            if let Some(cookie) = &h.http_cookie {
                let cat = format!("{hat}.httpCookie");
                c.refuse(
                    &cookie.attributes,
                    &format!("{cat}.attributes"),
                    "the issued cookie is HttpOnly with Max-Age and Path only",
                );
                let ttl_ms = c.duration(&cookie.ttl, &format!("{cat}.ttl"));
                keys.push(Affinity::Cookie(CookieAffinity {
                    name: cookie.name.clone(),
                    ttl_seconds: ttl_ms.map(|ms| ms / 1000),
                    path: cookie.path.clone(),
                }));
            }
            if h.use_source_ip == Some(true) {
                keys.push(Affinity::SourceAddress);
            }
            match keys.len() {
                0 => {}
                1 => svc.affinity = keys.pop(),
                _ => c.fail(&hat, ErrorKind::AffinityKeys),
            }
        }
        if let Some(l) = &lb.locality_lb_setting {
            let lat = format!("{at}.localityLbSetting");
            let why = "failover goes zone, region, then anywhere, in that fixed order";
            c.refuse(&l.distribute, &format!("{lat}.distribute"), why);
            c.refuse(&l.failover, &format!("{lat}.failover"), why);
            c.refuse(
                &l.failover_priority,
                &format!("{lat}.failoverPriority"),
                why,
            );
            if l.enabled == Some(true) {
                svc.locality = Some(LocalityPolicy::default());
            }
        }
    }
    if let Some(od) = &tp.outlier_detection {
        let at = format!("{base}.outlierDetection");
        let passive_why = "the balancer counts every 5xx, reset and failed connect together: use consecutive5xxErrors";
        c.refuse(
            &od.consecutive_errors,
            &format!("{at}.consecutiveErrors"),
            passive_why,
        );
        c.refuse(
            &od.consecutive_gateway_errors,
            &format!("{at}.consecutiveGatewayErrors"),
            passive_why,
        );
        c.refuse(
            &od.consecutive_local_origin_failures,
            &format!("{at}.consecutiveLocalOriginFailures"),
            passive_why,
        );
        c.refuse(
            &od.split_external_local_origin_errors,
            &format!("{at}.splitExternalLocalOriginErrors"),
            passive_why,
        );
        c.refuse(
            &od.interval,
            &format!("{at}.interval"),
            "the balancer ejects as responses arrive, with no sweep interval",
        );
        c.refuse(
            &od.min_health_percent,
            &format!("{at}.minHealthPercent"),
            "with every member ejected the balancer's onAllUnhealthy applies (panic)",
        );
        let base_ms = c.duration(&od.base_ejection_time, &format!("{at}.baseEjectionTime"));
        if let Some(p) = od.max_ejection_percent.filter(|p| *p > 100) {
            c.fail(
                &format!("{at}.maxEjectionPercent"),
                ErrorKind::EjectionPercent(p),
            );
        }
        let health = svc.health.get_or_insert_with(Default::default);
        if od.consecutive_5xx_errors == Some(0) {
            health.passive = None;
        } else {
            let passive = health.passive.get_or_insert_with(Default::default);
            if let Some(n) = od.consecutive_5xx_errors {
                passive.consecutive_errors = n;
            }
            if let Some(ms) = base_ms {
                passive.base_ejection_ms = ms;
                passive.max_ejection_ms = passive.max_ejection_ms.max(ms);
            }
            if let Some(p) = od.max_ejection_percent {
                passive.max_ejection_percent = p.min(100);
            }
        }
    }
    if let Some(pool) = &tp.connection_pool {
        let at = format!("{base}.connectionPool");
        if let Some(tcp) = &pool.tcp {
            let tat = format!("{at}.tcp");
            cluster.max_connections = tcp.max_connections;
            cluster.connect_timeout_ms =
                c.duration(&tcp.connect_timeout, &format!("{tat}.connectTimeout"));
            let why = "not generated for member clusters";
            c.refuse(&tcp.tcp_keepalive, &format!("{tat}.tcpKeepalive"), why);
            c.refuse(
                &tcp.max_connection_duration,
                &format!("{tat}.maxConnectionDuration"),
                why,
            );
            c.refuse(&tcp.idle_timeout, &format!("{tat}.idleTimeout"), why);
        }
        if let Some(http) = &pool.http {
            let hat = format!("{at}.http");
            cluster.max_pending_requests = http.http1_max_pending_requests;
            cluster.max_requests = http.http2_max_requests;
            let why = "not generated for member clusters";
            c.refuse(
                &http.max_requests_per_connection,
                &format!("{hat}.maxRequestsPerConnection"),
                why,
            );
            c.refuse(
                &http.max_retries,
                &format!("{hat}.maxRetries"),
                "retries to other members run under a retry budget (20% of requests, at least 16)",
            );
            c.refuse(&http.idle_timeout, &format!("{hat}.idleTimeout"), why);
            c.refuse(
                &http.h2_upgrade_policy,
                &format!("{hat}.h2UpgradePolicy"),
                why,
            );
            c.refuse(
                &http.use_client_protocol,
                &format!("{hat}.useClientProtocol"),
                why,
            );
            c.refuse(
                &http.max_concurrent_streams,
                &format!("{hat}.maxConcurrentStreams"),
                why,
            );
        }
    }
    cluster
}

/// The multi-cluster service a DestinationRule's `spec.host` names: the service's name, or
/// its DNS name (`name.namespace.svc.cluster.local`, `name.namespace.svc.clusterset.local`).
pub fn service_of_host(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_protobuf_and_go_spellings() {
        for (s, want) in [
            ("500ms", Some(500)),
            ("30s", Some(30_000)),
            ("1.5s", Some(1500)),
            ("5m", Some(300_000)),
            ("1h", Some(3_600_000)),
            ("10", None),
            ("s", None),
            ("-1s", None),
            ("3d", None),
        ] {
            assert_eq!(parse_duration_ms(s), want, "{s}");
        }
    }
}
