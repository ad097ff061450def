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
    /// What happens to a request no rule matches.
    #[serde(default, skip_serializing_if = "NoMatch::is_default")]
    pub no_match: NoMatch,
    /// Also call Envoy's `clear_route_cache` foreign function after writing the routing header.
    /// Needed only on ABIs newer than 0.2.1, where header changes no longer clear it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub clear_route_cache: bool,
    pub routes: Vec<Route>,
    /// Multi-cluster services a backend may name; resolved per request to one member cluster.
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpRoute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Gateway API matches: OR'ed; the conditions inside one match are AND'ed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpMatch>,
    /// The seed's single backend. Exclusive with `backends`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<Backend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<StatusCodeAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_rewrite: Option<UrlRewrite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<HeaderModifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<HeaderModifier>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<QueryMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default = "default_weight", skip_serializing_if = "is_default_weight")]
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// The seed's StatusCode action: a local reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusCodeAction {
    pub code: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderValue>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Redirect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
    /// 301, 302 (default), 303, 307 or 308.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UrlRewrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// A service whose backends run in several clusters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MultiClusterService {
    pub members: Vec<Member>,
}

/// One member cluster of a multi-cluster service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Member {
    /// The member cluster's name in the inventory (e.g. `us-east`).
    pub name: String,
    /// The Envoy cluster that reaches the service in that member cluster.
    pub cluster: String,
    #[serde(default = "default_weight", skip_serializing_if = "is_default_weight")]
    pub weight: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
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
}

/// How the balancer learns which service a request is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ServiceKey {
    /// The value of this request header names the service (the router writes it when composed).
    Header(String),
    /// The request's host (without port) names the service.
    Host,
}
