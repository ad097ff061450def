//! Gateway API's Extended HTTPRoute features beyond the core filters: backendRef filters,
//! `timeouts`, `retry` (GEP-1731; `backoff` refused), `RequestMirror` (with `percent`/`fraction`) and `CORS`
//! (GEP-1767), translated for the router and for Envoy.
//!
//! Two mechanisms, chosen per feature:
//! - the router does what it can do exactly per request: CORS (preflights answered at the
//!   gateway) and per-backend header edits;
//! - what only the proxy can do (deadlines, retries with backoff, copies of a request to
//!   another cluster) becomes a *rule policy*: an Envoy route, ahead of the steered routes,
//!   that matches the router's policy header and carries `timeout`, `retry_policy` and
//!   `request_mirror_policies`. The router writes the rule's policy name into that header.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use wasmgate_core::config as fc;

use crate::envoy_api as api;
use crate::error::{ErrorKind, Location};
use crate::listeners::namespace_of;
use crate::model::{HttpRouteFilter, HttpRouteRule, PortRef};
use crate::resolve::Ctx;

/// What a rule needs from the proxy's route, keyed by its content so equal rules share one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct RulePolicy {
    /// `timeouts.request`: the route's timeout, retries included. 0 disables it.
    pub request_timeout_ms: Option<u64>,
    /// `timeouts.backendRequest`: each attempt's timeout.
    pub backend_timeout_ms: Option<u64>,
    pub retry: Option<Retry>,
    pub mirrors: Vec<Mirror>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Retry {
    pub codes: Vec<u16>,
    /// Retries after the first attempt; `None`: the generated route's own count.
    pub attempts: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mirror {
    pub cluster: String,
    /// Share of requests mirrored, in millionths (1,000,000: all).
    pub per_million: u32,
}

/// The rule policies of one run, named `p0`, `p1`, ... in the order first used.
#[derive(Debug, Default)]
pub struct Policies {
    by_content: BTreeMap<RulePolicy, String>,
}

impl Policies {
    fn name(&mut self, policy: RulePolicy) -> String {
        let next = format!("p{}", self.by_content.len());
        self.by_content.entry(policy).or_insert(next).clone()
    }

    pub fn is_empty(&self) -> bool {
        self.by_content.is_empty()
    }

    /// (name, policy), by name.
    pub fn named(&self) -> Vec<(&str, &RulePolicy)> {
        let mut out: Vec<(&str, &RulePolicy)> = self
            .by_content
            .iter()
            .map(|(p, n)| (n.as_str(), p))
            .collect();
        out.sort_by_key(|(n, _)| n[1..].parse::<usize>().unwrap_or(usize::MAX));
        out
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GwTimeouts {
    request: Option<String>,
    backend_request: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GwRetry {
    #[serde(default)]
    codes: Vec<u16>,
    attempts: Option<u32>,
    backoff: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GwMirror {
    backend_ref: GwObjectRef,
    percent: Option<u32>,
    fraction: Option<GwFraction>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GwObjectRef {
    group: Option<String>,
    kind: Option<String>,
    name: String,
    namespace: Option<String>,
    port: Option<u16>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GwFraction {
    numerator: u32,
    denominator: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GwCors {
    #[serde(default)]
    allow_origins: Vec<String>,
    allow_credentials: Option<bool>,
    #[serde(default)]
    allow_methods: Vec<String>,
    #[serde(default)]
    allow_headers: Vec<String>,
    #[serde(default)]
    expose_headers: Vec<String>,
    max_age: Option<u32>,
}

/// Reads a field the model keeps as raw JSON, reporting a mismatch with its full path.
fn typed<T: for<'de> Deserialize<'de>>(
    cx: &mut Ctx<'_>,
    at: &Location,
    field: &str,
    value: &Value,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let path = if inner == "." {
                field.to_string()
            } else {
                format!("{field}.{inner}")
            };
            cx.fail(at, path, ErrorKind::Schema(e.into_inner().to_string()));
            None
        }
    }
}

/// A Gateway API Duration (`1h`, `500ms`, `1m30s`: up to four number-unit pairs) in ms.
pub fn duration_ms(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = text;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 5 {
            return None;
        }
        let n: u64 = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        let (unit_ms, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('s') {
            (1000, 1)
        } else {
            return None;
        };
        total = total.checked_add(n.checked_mul(unit_ms)?)?;
        rest = rest.get(len..)?;
        parts += 1;
    }
    (parts > 0 && parts <= 4).then_some(total)
}

fn duration(cx: &mut Ctx<'_>, at: &Location, field: String, text: &str) -> Option<u64> {
    let ms = duration_ms(text);
    if ms.is_none() {
        cx.fail(at, field, ErrorKind::Duration(text.to_string()));
    }
    ms
}

/// The rule's timeouts, retry and request mirrors as a policy name for the router, or
/// `None` when the rule has none (or they are in error, reported).
pub fn rule_policy(
    cx: &mut Ctx<'_>,
    at: &Location,
    base: &str,
    route_ns: &str,
    rule: &HttpRouteRule,
) -> Option<String> {
    let mut policy = RulePolicy::default();
    let mut failed = false;
    if let Some(t) = &rule.timeouts {
        let field = format!("{base}.timeouts");
        match typed::<GwTimeouts>(cx, at, &field, t) {
            Some(t) => {
                let mut read = |name: &str, v: &Option<String>| match v {
                    Some(s) => {
                        let ms = duration(cx, at, format!("{field}.{name}"), s);
                        failed |= ms.is_none();
                        ms
                    }
                    None => None,
                };
                policy.request_timeout_ms = read("request", &t.request);
                policy.backend_timeout_ms = read("backendRequest", &t.backend_request);
                if let (Some(r), Some(b)) = (policy.request_timeout_ms, policy.backend_timeout_ms) {
                    if r != 0 && (b > r || b == 0) {
                        cx.fail(
                            at,
                            format!("{field}.backendRequest"),
                            ErrorKind::BackendRequestLonger {
                                backend_request: t.backend_request.clone().unwrap_or_default(),
                                request: t.request.clone().unwrap_or_default(),
                            },
                        );
                        failed = true;
                    }
                }
            }
            None => failed = true,
        }
    }
    if let Some(r) = &rule.retry {
        let field = format!("{base}.retry");
        match typed::<GwRetry>(cx, at, &field, r) {
            Some(r) => {
                if let Some(i) = r.codes.iter().position(|c| !(400..=599).contains(c)) {
                    cx.fail(
                        at,
                        format!("{field}.codes[{i}]"),
                        ErrorKind::RetryCode(r.codes.get(i).copied().unwrap_or(0)),
                    );
                    failed = true;
                }
                if r.backoff.is_some() {
                    // Envoy's back-off is fully jittered: the first retry waits a random
                    // time in [0, base), so no setting guarantees Gateway API's minimum.
                    cx.fail(at, format!("{field}.backoff"), ErrorKind::RetryBackoff);
                    failed = true;
                }
                let mut codes = r.codes.clone();
                codes.sort_unstable();
                codes.dedup();
                policy.retry = Some(Retry {
                    codes,
                    attempts: r.attempts,
                });
            }
            None => failed = true,
        }
    }
    for (fi, f) in rule.filters.iter().enumerate() {
        if f.kind != "RequestMirror" {
            continue;
        }
        let field = format!("{base}.filters[{fi}].requestMirror");
        match mirror(cx, at, &field, route_ns, f) {
            Some(m) => policy.mirrors.push(m),
            None => failed = true,
        }
    }
    if failed || policy == RulePolicy::default() {
        return None;
    }
    Some(cx.rule_policies.name(policy))
}

fn mirror(
    cx: &mut Ctx<'_>,
    at: &Location,
    field: &str,
    route_ns: &str,
    f: &HttpRouteFilter,
) -> Option<Mirror> {
    let Some(raw) = &f.request_mirror else {
        cx.fail(at, field, ErrorKind::MirrorMissing);
        return None;
    };
    let m: GwMirror = typed(cx, at, field, raw)?;
    let r = &m.backend_ref;
    let kind = r.kind.as_deref().unwrap_or("Service");
    if !matches!(r.group.as_deref().unwrap_or(""), "" | "core") || kind != "Service" {
        cx.fail(
            at,
            format!("{field}.backendRef.kind"),
            ErrorKind::MirrorKind(kind.to_string()),
        );
        return None;
    }
    if r.namespace.is_some() && namespace_of(r.namespace.as_deref()) != route_ns {
        cx.fail(
            at,
            format!("{field}.backendRef.namespace"),
            ErrorKind::CrossNamespaceMirror,
        );
        return None;
    }
    if cx.mcs.contains_key(&r.name) {
        cx.fail(
            at,
            format!("{field}.backendRef.name"),
            ErrorKind::MirrorToMultiCluster(r.name.clone()),
        );
        return None;
    }
    let per_million = match (m.percent, &m.fraction) {
        (Some(_), Some(_)) => {
            cx.fail(
                at,
                format!("{field}.fraction"),
                ErrorKind::PercentAndFraction,
            );
            return None;
        }
        (Some(p), None) if p <= 100 => p * 10_000,
        (Some(p), None) => {
            cx.fail(at, format!("{field}.percent"), ErrorKind::Percent(p));
            return None;
        }
        (None, Some(fr)) => {
            let d = fr.denominator.unwrap_or(100);
            if d == 0 || fr.numerator > d {
                cx.fail(
                    at,
                    format!("{field}.fraction"),
                    ErrorKind::Fraction {
                        numerator: fr.numerator,
                        denominator: d,
                    },
                );
                return None;
            }
            // Envoy's denominators are 100, 10,000 and 1,000,000: millionths, rounded.
            let v = (u64::from(fr.numerator) * 1_000_000 + u64::from(d) / 2) / u64::from(d);
            u32::try_from(v).unwrap_or(1_000_000)
        }
        (None, None) => 1_000_000,
    };
    let port = r.port.map(PortRef::Number);
    let backend = cx.backend(
        at,
        &format!("{field}.backendRef"),
        "name",
        &r.name,
        Some(route_ns),
        port.as_ref(),
        1,
        "port",
    )?;
    Some(Mirror {
        cluster: backend.cluster?,
        per_million,
    })
}

/// The rule's CORS filter for the router, if any (errors reported).
pub fn cors(cx: &mut Ctx<'_>, at: &Location, field: &str, raw: &Value) -> Option<fc::Cors> {
    let c: GwCors = typed(cx, at, field, raw)?;
    let cors = fc::Cors {
        allow_origins: c.allow_origins,
        allow_credentials: c.allow_credentials.unwrap_or(false),
        allow_methods: c.allow_methods,
        allow_headers: c.allow_headers,
        expose_headers: c.expose_headers,
        max_age: c.max_age,
    };
    // Checked here, as the router will, so an error names the HTTPRoute's own field.
    let filter = field.strip_suffix(".cors").unwrap_or(field);
    if let Err(e) = wasmgate_core::route_table::cors::CompiledCors::compile(filter, &cors) {
        cx.fail(at, e.path, ErrorKind::Core(e.kind));
        return None;
    }
    Some(cors)
}

/// Request and response header edits of a backendRef's filters, onto `backend`. Only the
/// header modifiers are carried out per backend; other filter types are refused.
pub fn backend_filters(
    cx: &mut Ctx<'_>,
    at: &Location,
    field: &str,
    filters: &[Value],
    backend: &mut fc::Backend,
) -> bool {
    let mut ok = true;
    for (fi, raw) in filters.iter().enumerate() {
        let f_field = format!("{field}.filters[{fi}]");
        let Some(f) = typed::<HttpRouteFilter>(cx, at, &f_field, raw) else {
            ok = false;
            continue;
        };
        let modifier = |m: &crate::model::GwHeaderModifier| fc::HeaderModifier {
            set: m.set.clone(),
            add: m.add.clone(),
            remove: m.remove.clone(),
        };
        match (
            f.kind.as_str(),
            &f.request_header_modifier,
            &f.response_header_modifier,
        ) {
            ("RequestHeaderModifier", Some(m), None) if backend.request_headers.is_none() => {
                backend.request_headers = Some(modifier(m))
            }
            ("ResponseHeaderModifier", None, Some(m)) if backend.response_headers.is_none() => {
                backend.response_headers = Some(modifier(m))
            }
            (k @ ("RequestHeaderModifier" | "ResponseHeaderModifier"), ..) => {
                cx.fail(at, f_field, ErrorKind::BackendFilterShape(k.to_string()));
                ok = false;
            }
            (k, ..) => {
                cx.fail(
                    at,
                    format!("{f_field}.type"),
                    ErrorKind::BackendFilterUnsupported(k.to_string()),
                );
                ok = false;
            }
        }
    }
    ok
}

/// Adds, ahead of every steered route of every HTTP listener in `bootstrap`, one copy per
/// rule policy that matches the policy header and carries the policy.
pub fn add_policy_routes(bootstrap: &mut Value, policies: &Policies, policy_header: &str) {
    if policies.is_empty() {
        return;
    }
    let Some(listeners) = bootstrap
        .pointer_mut("/static_resources/listeners")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for listener in listeners {
        let chains = listener
            .get_mut("filter_chains")
            .and_then(Value::as_array_mut);
        for chain in chains.into_iter().flatten() {
            let filters = chain.get_mut("filters").and_then(Value::as_array_mut);
            for filter in filters.into_iter().flatten() {
                let vhosts = filter
                    .pointer_mut("/typed_config/route_config/virtual_hosts")
                    .and_then(Value::as_array_mut);
                for vhost in vhosts.into_iter().flatten() {
                    let Some(routes) = vhost.get_mut("routes").and_then(Value::as_array_mut) else {
                        continue;
                    };
                    let mut with_policies = Vec::new();
                    for (name, policy) in policies.named() {
                        for route in routes.iter() {
                            with_policies.push(policy_route(route, name, policy, policy_header));
                        }
                    }
                    with_policies.append(routes);
                    *routes = with_policies;
                }
            }
        }
    }
}

fn envoy_duration(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// Envoy's route timeout when the rule sets none.
const ENVOY_DEFAULT_TIMEOUT_MS: u64 = 15_000;

fn policy_route(steered: &Value, name: &str, policy: &RulePolicy, policy_header: &str) -> Value {
    let mut route = steered.clone();
    let header = api::value(api::HeaderMatcher::exact(policy_header, name));
    match route
        .pointer_mut("/match/headers")
        .and_then(Value::as_array_mut)
    {
        Some(headers) => headers.push(header),
        None => route["match"]["headers"] = json!([header]),
    }
    route["request_headers_to_remove"] = json!([policy_header]);
    let action = &mut route["route"];
    match (policy.request_timeout_ms, policy.backend_timeout_ms) {
        (Some(r), _) => action["timeout"] = json!(envoy_duration(r)),
        // An attempt may take longer than Envoy's default for the whole request.
        (None, Some(b)) if b > ENVOY_DEFAULT_TIMEOUT_MS || b == 0 => {
            action["timeout"] = json!(envoy_duration(b))
        }
        _ => {}
    }
    if policy.backend_timeout_ms.is_some() || policy.retry.is_some() {
        let rp = &mut action["retry_policy"];
        if rp.is_null() {
            // A retry without `attempts` still retries once; a timeout alone never retries.
            *rp = json!({"num_retries": u32::from(policy.retry.is_some())});
        }
        if let Some(b) = policy.backend_timeout_ms.filter(|b| *b > 0) {
            rp["per_try_timeout"] = json!(envoy_duration(b));
        }
        if let Some(retry) = &policy.retry {
            if !retry.codes.is_empty() {
                let on = rp["retry_on"].as_str().unwrap_or("").to_string();
                rp["retry_on"] = json!(if on.is_empty() {
                    "retriable-status-codes".to_string()
                } else {
                    format!("{on},retriable-status-codes")
                });
                rp["retriable_status_codes"] = json!(retry.codes);
            }
            if let Some(a) = retry.attempts {
                rp["num_retries"] = json!(a);
            }
        }
    }
    if !policy.mirrors.is_empty() {
        action["request_mirror_policies"] = policy
            .mirrors
            .iter()
            .map(|m| {
                api::value(api::RequestMirrorPolicy {
                    cluster: m.cluster.clone(),
                    disable_shadow_host_suffix_append: true,
                    runtime_fraction: (m.per_million < 1_000_000).then_some(api::RuntimeFraction {
                        default_value: api::FractionalPercent {
                            numerator: m.per_million,
                            denominator: "MILLION",
                        },
                    }),
                })
            })
            .collect();
    }
    route
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_route_matches_the_header_and_carries_the_policy() {
        let steered = json!({
            "match": {"prefix": "/", "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
            "route": {"cluster_header": "x-c", "retry_policy": {"retry_on": "connect-failure", "num_retries": 1}}
        });
        let policy = RulePolicy {
            request_timeout_ms: Some(1500),
            backend_timeout_ms: Some(250),
            retry: Some(Retry {
                codes: vec![500, 503],
                attempts: Some(3),
            }),
            mirrors: vec![
                Mirror {
                    cluster: "m_80".into(),
                    per_million: 1_000_000,
                },
                Mirror {
                    cluster: "n_80".into(),
                    per_million: 333_333,
                },
            ],
        };
        let r = policy_route(&steered, "p0", &policy, "x-wasmgate-policy");
        assert_eq!(r["match"]["headers"][0]["name"], ":method");
        assert_eq!(
            r["match"]["headers"][1],
            json!({"name": "x-wasmgate-policy", "string_match": {"exact": "p0"}})
        );
        assert_eq!(r["request_headers_to_remove"], json!(["x-wasmgate-policy"]));
        let a = &r["route"];
        assert_eq!(a["timeout"], "1.500s");
        assert_eq!(a["retry_policy"]["per_try_timeout"], "0.250s");
        assert_eq!(
            a["retry_policy"]["retry_on"],
            "connect-failure,retriable-status-codes"
        );
        assert_eq!(
            a["retry_policy"]["retriable_status_codes"],
            json!([500, 503])
        );
        assert_eq!(a["retry_policy"]["num_retries"], 3);
        let mirrors = a["request_mirror_policies"].as_array().unwrap();
        assert_eq!(
            mirrors[0],
            json!({"cluster": "m_80", "disable_shadow_host_suffix_append": true})
        );
        assert_eq!(
            mirrors[1]["runtime_fraction"]["default_value"],
            json!({"numerator": 333_333, "denominator": "MILLION"})
        );
        // Without a retry policy of its own, a retry without attempts still retries once.
        let bare = json!({"match": {"prefix": "/"}, "route": {"cluster_header": "x-c"}});
        let retry_only = RulePolicy {
            retry: Some(Retry {
                codes: vec![503],
                attempts: None,
            }),
            ..RulePolicy::default()
        };
        let r = policy_route(&bare, "p1", &retry_only, "x-wasmgate-policy");
        assert_eq!(r["route"]["retry_policy"]["num_retries"], 1);
        assert_eq!(
            r["route"]["retry_policy"]["retry_on"],
            "retriable-status-codes"
        );
        let timeout_only = RulePolicy {
            backend_timeout_ms: Some(20_000),
            ..RulePolicy::default()
        };
        let r = policy_route(&bare, "p2", &timeout_only, "x-wasmgate-policy");
        assert_eq!(r["route"]["retry_policy"]["num_retries"], 0);
        // An attempt longer than Envoy's 15 s default raises the route's timeout to it.
        assert_eq!(r["route"]["timeout"], "20.000s");
    }

    #[test]
    fn gateway_api_durations_parse_to_milliseconds() {
        let cases = [
            ("1h", Some(3_600_000)),
            ("500ms", Some(500)),
            ("1m30s", Some(90_000)),
            ("0s", Some(0)),
            ("1h2m3s4ms", Some(3_723_004)),
            ("1h2m3s4ms5s", None),
            ("", None),
            ("1.5s", None),
            ("10", None),
            ("s", None),
            ("123456s", None),
            ("1d", None),
        ];
        for (text, want) in cases {
            assert_eq!(duration_ms(text), want, "{text:?}");
        }
    }
}
