//! The filter-config schema: what the generator writes and the filters read.
//!
//! These types are the single source of truth for the JSON format. They mirror the seed's
//! VirtualHost model (`routes[].http {host, rules}`, `routes[].tcp {port, rules}`, rules with
//! `path`, `backend`, `statusCode`) and extend it with Gateway API HTTPRoute semantics.
//! Unknown fields are rejected everywhere: a typo must never be silently dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The default name of the request header Envoy's `cluster_header` route reads.
pub const DEFAULT_CLUSTER_HEADER: &str = "x-wasmgate-cluster";

fn default_cluster_header() -> String {
    DEFAULT_CLUSTER_HEADER.to_string()
}

fn is_default_cluster_header(name: &str) -> bool {
    name == DEFAULT_CLUSTER_HEADER
}

/// The default name of the request header that selects a generated Envoy route carrying a
/// rule's timeouts, retry policy and request mirrors (see [`HttpRule::policy`]).
pub const DEFAULT_POLICY_HEADER: &str = "x-wasmgate-policy";

fn default_policy_header() -> String {
    DEFAULT_POLICY_HEADER.to_string()
}

fn is_default_policy_header(name: &str) -> bool {
    name == DEFAULT_POLICY_HEADER
}

/// The default name of the header that carries a multi-cluster service to the balancer.
pub const DEFAULT_SERVICE_HEADER: &str = "x-wasmgate-service";

fn default_service_header() -> String {
    DEFAULT_SERVICE_HEADER.to_string()
}

fn is_default_service_header(name: &str) -> bool {
    name == DEFAULT_SERVICE_HEADER
}

fn default_weight() -> u32 {
    1
}

fn is_default_weight(w: &u32) -> bool {
    *w == 1
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Configuration of the router filter (and of its TCP network root).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouterConfig {
    /// Request header the filter writes and Envoy's `cluster_header` route reads.
    #[serde(
        default = "default_cluster_header",
        skip_serializing_if = "is_default_cluster_header"
    )]
    pub cluster_header: String,
    /// Request header the router writes with the chosen multi-cluster service, for the
    /// balancer filter after it (only when `multiClusterServices` is not empty).
    #[serde(
        default = "default_service_header",
        skip_serializing_if = "is_default_service_header"
    )]
    pub service_header: String,
    /// Request header the router writes with a rule's `policy` (and removes otherwise), so
    /// Envoy selects the generated route that carries that rule's timeouts, retries and mirrors.
    #[serde(
        default = "default_policy_header",
        skip_serializing_if = "is_default_policy_header"
    )]
    pub policy_header: String,
    /// Port the proxy listens on -> the port the user declared for that listener (Gateway
    /// API `listeners[].port`). A redirect that sets neither `port` nor `scheme` uses the
    /// declared port of the listener the request came in on (read from Envoy's
    /// `destination.port`); a port missing here is used as it is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub listener_ports: BTreeMap<u16, u16>,
    /// What happens to a request no rule matches.
    #[serde(default, skip_serializing_if = "NoMatch::is_default")]
    pub no_match: NoMatch,
    /// Also call Envoy's `clear_route_cache` foreign function after writing the routing header.
    /// Needed only on ABIs newer than 0.2.1, where header changes no longer clear it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub clear_route_cache: bool,
    pub routes: Vec<Route>,
    /// Multi-cluster services a backend may name. The router steers such a backend by writing
    /// `serviceHeader`; the balancer filter after it picks the member cluster.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub multi_cluster_services: BTreeMap<String, MultiClusterService>,
}

/// What the router does with a request that no rule matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NoMatch {
    /// Answer 404 locally.
    #[default]
    NotFound,
    /// Leave the request untouched for the proxy's own routing.
    PassThrough,
}

impl NoMatch {
    fn is_default(&self) -> bool {
        *self == NoMatch::NotFound
    }
}

/// One route of a VirtualHost: exactly one of `http` or `tcp`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpRoute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpRoute>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRoute {
    /// `foo.com`, `*.foo.com` (one or more leading labels) or `*` / empty for any host.
    #[serde(default)]
    pub host: String,
    pub rules: Vec<HttpRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRoute {
    /// The listener port whose connections this route takes.
    pub port: u16,
    pub rules: Vec<TcpRule>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<Backend>,
}

/// One rule: matchers, then exactly one terminal action (`backend`/`backends`, `statusCode`
/// or `redirect`), plus optional modifiers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRule {
    /// The seed's shorthand: a path prefix (element-wise). Exclusive with `matches`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Gateway API matches: OR'ed; the conditions inside one match are AND'ed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpMatch>,
    /// The seed's single backend. Exclusive with `backends`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<Backend>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<StatusCodeAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_rewrite: Option<UrlRewrite>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<HeaderModifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<HeaderModifier>,
    /// Cross-origin resource sharing (Gateway API's CORS filter): the router answers
    /// preflights itself and adds the CORS headers to responses of allowed origins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// A name the router writes into `policyHeader` when this rule forwards, so the proxy's
    /// route with that header match applies timeouts, retries and mirrors the router itself
    /// cannot (the generator writes both sides).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// A storage bucket the rule serves objects from, read-only (see [`BucketBackend`]).
    /// Exclusive with the other actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<BucketBackend>,
    /// The weight of the rule's backends that could not be resolved (Gateway API: that share
    /// of the rule's requests answers 500, the rest go to `backends`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unresolved_weight: u32,
}

/// Gateway API's HTTPCORSFilter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cors {
    /// `*`, or `scheme://host[:port]` where the host may start with `*` (any labels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_credentials: bool,
    /// Method names, or `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    /// Header names, or `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// `access-control-max-age` of a preflight answer, in seconds; default 5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
}

fn is_zero(w: &u32) -> bool {
    *w == 0
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<QueryMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathMatch {
    #[serde(rename = "type")]
    pub kind: PathMatchKind,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathMatchKind {
    Exact,
    PathPrefix,
    RegularExpression,
    /// A matchit pattern: `/users/{id}`, `/static/{*rest}`; captures feed templates.
    Pattern,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatch {
    #[serde(rename = "type", default)]
    pub kind: HeaderMatchKind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeaderMatchKind {
    #[default]
    Exact,
    RegularExpression,
    Present,
    Absent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryMatch {
    #[serde(rename = "type", default)]
    pub kind: QueryMatchKind,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryMatchKind {
    #[default]
    Exact,
    RegularExpression,
}

/// A backend service. `cluster` names the Envoy cluster directly; without it a service that
/// is a multi-cluster service is resolved by selection, any other to `<service>_<port>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backend {
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default = "default_weight", skip_serializing_if = "is_default_weight")]
    pub weight: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Request header edits applied only when this backend is picked, after the rule's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<HeaderModifier>,
    /// Response header edits applied only when this backend is picked, after the rule's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<HeaderModifier>,
}

/// An S3-compatible bucket served read-only: the router turns the request path into an
/// object key under `prefix`, steers the request to `cluster` with the store's `:authority`,
/// and maps the store's 403/404 for a missing key to 404. Signing (for a private bucket) is
/// the proxy's job on that cluster: no credential ever appears here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketBackend {
    /// The bucket's name (DNS-compatible: 3-63 of `a-z 0-9 . -`).
    pub name: String,
    /// The Envoy cluster that reaches the store's endpoint.
    pub cluster: String,
    /// The endpoint's `host[:port]`, as the store expects it in `:authority` (and as the
    /// signature covers it). Virtual-hosted addressing puts `<name>.` in front.
    pub host: String,
    #[serde(default, skip_serializing_if = "BucketAddressing::is_default")]
    pub addressing: BucketAddressing,
    /// A folder inside the bucket every key is under (`site/`); a missing trailing `/` is
    /// added. Requests can never name a key outside it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// The object served for a path ending in `/`; default `index.html`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_document: Option<String>,
    /// Single-page-app fallback: a path whose last segment has no `.` (no file extension,
    /// e.g. `/users/42`) is served this object (under `prefix`) instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spa_fallback: Option<String>,
    /// Body of the 404 answered when the store has no such key (its 403 or 404).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_found_body: Option<String>,
}

/// How a bucket is addressed: `/<bucket>/<key>` on the endpoint, or `/<key>` on
/// `<bucket>.<endpoint>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BucketAddressing {
    #[default]
    Path,
    VirtualHosted,
}

impl BucketAddressing {
    fn is_default(&self) -> bool {
        *self == BucketAddressing::Path
    }
}

/// The seed's StatusCode action: a local reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusCodeAction {
    pub code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderValue>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Redirect {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
    /// 301, 302 (default), 303, 307 or 308.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UrlRewrite {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathModifier {
    #[serde(rename = "type")]
    pub kind: PathModifierKind,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathModifierKind {
    ReplaceFullPath,
    ReplacePrefixMatch,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderModifier {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<HeaderValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<HeaderValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderValue {
    pub name: String,
    pub value: String,
}

/// A service whose backends run in several clusters (the seed's MultiClusterService).
///
/// `members` is the part of the cluster inventory that runs the service; `clusters` selects
/// among them by labels. Everything else is optional policy with safe defaults: plain weights,
/// no affinity, no canary, no locality preference, everyone healthy, panic when all fail.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MultiClusterService {
    pub members: Vec<Member>,
    /// The seed's `clusters: [{selector: {matchLabels}}]`: a member belongs to the service when
    /// any selector matches all of its labels. Empty: every member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterSelector>,
    /// Session affinity: the same key lands on the same member cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Prefer member clusters in the proxy's own zone, then region, then anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<LocalityPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthPolicy>,
    /// A member that becomes healthy (or is added) ramps from 10% to its full weight over
    /// this many milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_start_ms: Option<u64>,
}

/// One member cluster of a multi-cluster service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Member {
    /// The member cluster's name in the inventory (e.g. `us-east`).
    pub name: String,
    /// The Envoy cluster that reaches the service in that member cluster. Active health
    /// checks go here.
    pub cluster: String,
    /// The Envoy cluster requests are steered to, when not `cluster`: an aggregate cluster
    /// that starts with this member and lists the others after it, so that Envoy's retry (with
    /// `previous_priorities`) of a failed connect or reset lands on another member cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_cluster: Option<String>,
    #[serde(default = "default_weight", skip_serializing_if = "is_default_weight")]
    pub weight: u32,
    /// Inventory labels. `region` and `zone` (or `topology.kubernetes.io/region|zone`) place
    /// the member for locality.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `{selector: {matchLabels: {region: us}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSelector {
    pub selector: LabelSelector,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// Where the affinity key comes from: `{"header": "x-user"}`, `{"cookie": "session"}` or
/// `"sourceAddress"` (the client IP, without its port). A cookie may also be issued by the
/// balancer: `{"cookie": {"name": "session", "ttlSeconds": 3600, "path": "/"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Affinity {
    Header(String),
    Cookie(CookieAffinity),
    SourceAddress,
}

/// The affinity cookie: `"sid"` (read it; a request without it gets no affinity) or
/// `{"name": "sid", "ttlSeconds": 3600, "path": "/"}`.
///
/// With `ttlSeconds` the balancer generates the cookie like Envoy's cookie hash policy with a
/// `ttl`: a request without it (or with an empty value) gets a fresh random key, is placed by
/// that key, and its response carries `set-cookie: sid=KEY; Max-Age=3600; Path=/; HttpOnly`
/// (no `Max-Age` when `ttlSeconds` is 0: a session cookie). `path` defaults to `/`.
///
/// Written as a plain string when it only names the cookie, so configs from before the object
/// form parse and serialise unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieAffinity {
    pub name: String,
    /// Generate the cookie when a request lacks it, with this `Max-Age` (0: a session cookie).
    /// `None`: only read it.
    pub ttl_seconds: Option<u64>,
    /// `Path` of a generated cookie; default `/`. Needs `ttlSeconds`.
    pub path: Option<String>,
}

impl CookieAffinity {
    /// Only read the cookie `name`: the `{"cookie": NAME}` form.
    pub fn named(name: impl Into<String>) -> Self {
        CookieAffinity {
            name: name.into(),
            ttl_seconds: None,
            path: None,
        }
    }
}

impl From<&str> for CookieAffinity {
    fn from(name: &str) -> Self {
        CookieAffinity::named(name)
    }
}

/// The object form of [`CookieAffinity`], with its own unknown-field check.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CookieAffinityFields {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
}

impl Serialize for CookieAffinity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.ttl_seconds.is_none() && self.path.is_none() {
            return s.serialize_str(&self.name);
        }
        CookieAffinityFields {
            name: self.name.clone(),
            ttl_seconds: self.ttl_seconds,
            path: self.path.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for CookieAffinity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A string or an object, told apart by a visitor rather than `untagged`, so an error
        // inside the object keeps its own message and field path.
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CookieAffinity;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a cookie name or {\"name\", \"ttlSeconds\", \"path\"}")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CookieAffinity::named(v))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let f = CookieAffinityFields::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(CookieAffinity {
                    name: f.name,
                    ttl_seconds: f.ttl_seconds,
                    path: f.path,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A canary member: forced by a header or cookie value, and/or given a fixed share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Canary {
    /// The member (by `name`) that is the canary. It takes no part in the weighted split.
    pub member: String,
    /// A request with this header value goes to the canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<NameValue>,
    /// A request with this cookie value goes to the canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie: Option<NameValue>,
    /// Share of the other requests sent to the canary, 0 to 100 (per key with affinity).
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub percent: f64,
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

/// Locality tiers (same zone, same region, anywhere) with Envoy's priority-load math.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityPolicy {
    /// A tier's health is `min(100, overprovisioning/100 x 100 x healthy/total)`; Envoy's
    /// default factor is 140 (1.4).
    #[serde(default = "default_overprovisioning")]
    pub overprovisioning: u32,
}

fn default_overprovisioning() -> u32 {
    140
}

impl Default for LocalityPolicy {
    fn default() -> Self {
        LocalityPolicy {
            overprovisioning: default_overprovisioning(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthPolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveHealth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passive: Option<PassiveHealth>,
    /// What to do when no member is healthy.
    #[serde(default)]
    pub on_all_unhealthy: AllUnhealthy,
}

/// Active checks: `GET path` on each member's Envoy cluster every `intervalMs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActiveHealth {
    pub path: String,
    /// `:authority` of the check; default: the service name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive passing checks that bring a member back.
    #[serde(default = "default_one")]
    pub healthy_threshold: u32,
    /// Consecutive failing checks that take a member out.
    #[serde(default = "default_two")]
    pub unhealthy_threshold: u32,
}

fn default_interval_ms() -> u64 {
    1000
}
fn default_timeout_ms() -> u64 {
    500
}
fn default_one() -> u32 {
    1
}
fn default_two() -> u32 {
    2
}

/// Passive ejection from what responses show: `consecutiveErrors` 5xx or resets eject a
/// member for `baseEjectionMs x (number of ejections)`, at most `maxEjectionMs`.
///
/// Like Envoy's outlier detection (`max_ejection_percent`, `always_eject_one_host`), an
/// ejection that would leave more than `maxEjectionPercent` of the service's members ejected
/// at once is refused; `alwaysEjectOne` still allows one when none is ejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassiveHealth {
    #[serde(default = "default_consecutive_errors")]
    pub consecutive_errors: u32,
    #[serde(default = "default_base_ejection_ms")]
    pub base_ejection_ms: u64,
    #[serde(default = "default_max_ejection_ms")]
    pub max_ejection_ms: u64,
    /// At most this share of the members (0 to 100) may be passively ejected at once,
    /// counting the one about to be ejected. Default 100: every ejection is allowed.
    #[serde(default = "default_max_ejection_percent")]
    pub max_ejection_percent: u32,
    /// Eject one member while none is ejected, whatever `maxEjectionPercent` says (Envoy's
    /// `always_eject_one_host`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub always_eject_one: bool,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth {
            consecutive_errors: default_consecutive_errors(),
            base_ejection_ms: default_base_ejection_ms(),
            max_ejection_ms: default_max_ejection_ms(),
            max_ejection_percent: default_max_ejection_percent(),
            always_eject_one: false,
        }
    }
}

fn default_consecutive_errors() -> u32 {
    5
}
fn default_base_ejection_ms() -> u64 {
    30_000
}
fn default_max_ejection_ms() -> u64 {
    300_000
}
fn default_max_ejection_percent() -> u32 {
    100
}

/// When every member is unhealthy: `panic` spreads over all members by weight (Envoy's
/// panic mode), `reject` answers 503.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AllUnhealthy {
    #[default]
    Panic,
    Reject,
}

/// Configuration of the balancer filter when it runs on its own, after the proxy's routing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BalancerConfig {
    #[serde(
        default = "default_cluster_header",
        skip_serializing_if = "is_default_cluster_header"
    )]
    pub cluster_header: String,
    /// Which multi-cluster service a request is for.
    pub service_from: ServiceKey,
    pub services: BTreeMap<String, MultiClusterService>,
    /// For the network root: listener port to service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tcp_ports: BTreeMap<u16, String>,
    /// The proxy's own place; without it the filter reads `node.metadata.REGION` / `ZONE`
    /// (then `node.locality.region` / `zone`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<ProxyLocality>,
    /// Prefix of the shared-data keys holding health state (one key per service).
    #[serde(default = "default_shared_prefix")]
    pub shared_prefix: String,
}

fn default_shared_prefix() -> String {
    "wasmgate.mc".to_string()
}

/// Where the proxy runs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyLocality {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// How the balancer learns which service a request is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ServiceKey {
    /// Composed after the wasmgate router: the router writes the service into this header
    /// (its `serviceHeader`) and owns the cluster header, so a request for a service the
    /// balancer does not know keeps the cluster the router chose.
    Router(String),
    /// Alone, after the proxy's own routing: the value of this request header names the
    /// service. A client-sent cluster header is removed when the balancer does not pick.
    Header(String),
    /// The request's host (without port) names the service.
    Host,
}
