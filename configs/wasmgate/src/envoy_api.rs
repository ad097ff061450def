//! Typed Envoy resources the generator writes: a misspelt field or type URL is a compile
//! error here rather than a config Envoy rejects at load time. Each type serialises to
//! Envoy's JSON form; the generator turns them into `serde_json::Value` with [`value`] (a
//! JSON object's keys come out sorted either way, so the written files do not depend on
//! field order).
//!
//! Only what the generator sets is modelled; an `Option` left `None` is not written.

use serde::Serialize;
use serde_json::Value;

/// A resource's protobuf type, written as `@type` wherever Envoy takes an `Any`.
pub trait TypeUrl {
    const TYPE_URL: &'static str;
}

/// An `Any`: the type URL, then the resource's own fields.
#[derive(Debug, Clone, Serialize)]
pub struct Typed<T> {
    #[serde(rename = "@type")]
    type_url: &'static str,
    #[serde(flatten)]
    config: T,
}

impl<T: TypeUrl> Typed<T> {
    pub fn new(config: T) -> Self {
        Typed {
            type_url: T::TYPE_URL,
            config,
        }
    }
}

/// A named extension (filter, access logger, cluster type, retry plugin): `name` plus its
/// typed config.
#[derive(Debug, Clone, Serialize)]
pub struct Extension<T> {
    pub name: String,
    pub typed_config: Typed<T>,
}

pub fn extension<T: TypeUrl>(name: impl Into<String>, config: T) -> Extension<T> {
    Extension {
        name: name.into(),
        typed_config: Typed::new(config),
    }
}

/// Any of these types as a JSON value. Serialising them cannot fail (every map key is a
/// string), so `Null` is never seen in practice.
pub fn value(resource: impl Serialize) -> Value {
    serde_json::to_value(resource).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------------
// Addresses

#[derive(Debug, Clone, Serialize)]
pub struct Address {
    pub socket_address: SocketAddress,
}

#[derive(Debug, Clone, Serialize)]
pub struct SocketAddress {
    pub address: String,
    pub port_value: u16,
}

pub fn socket(address: impl Into<String>, port: u16) -> Address {
    Address {
        socket_address: SocketAddress {
            address: address.into(),
            port_value: port,
        },
    }
}

// ---------------------------------------------------------------------------------------
// HTTP connection manager and HTTP filters

/// How the HTTP connection manager hands `:path` to the filters. The router matches `:path`
/// as Envoy hands it over; these make that form canonical (RFC 3986 normalised, no repeated
/// slashes, no encoded slashes to disagree on). One definition for generated bootstraps and
/// the tests' hand-built ones, so the two cannot drift.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PathNormalization {
    pub normalize_path: bool,
    pub merge_slashes: bool,
    pub path_with_escaped_slashes_action: &'static str,
}

pub const PATH_NORMALIZATION: PathNormalization = PathNormalization {
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: "UNESCAPE_AND_REDIRECT",
};

#[derive(Debug, Clone, Serialize)]
pub struct HttpConnectionManager {
    pub stat_prefix: String,
    #[serde(flatten)]
    pub paths: PathNormalization,
    pub route_config: Value,
    pub http_filters: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access_log: Vec<Value>,
}

impl TypeUrl for HttpConnectionManager {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
}

/// Envoy's router filter, last in every HTTP chain.
#[derive(Debug, Clone, Serialize)]
pub struct Router {}

impl TypeUrl for Router {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
}

/// The network filter running HTTP on a listener: `filters` (without Envoy's router, which
/// is appended), normalised paths, `route_config`, and the access logs.
pub fn http_connection_manager(
    route_config: Value,
    mut filters: Vec<Value>,
    access_log: Vec<Value>,
) -> Value {
    filters.push(value(extension("envoy.filters.http.router", Router {})));
    value(extension(
        "envoy.filters.network.http_connection_manager",
        HttpConnectionManager {
            stat_prefix: "wasmgate".into(),
            paths: PATH_NORMALIZATION,
            route_config,
            http_filters: filters,
            access_log,
        },
    ))
}

// ---------------------------------------------------------------------------------------
// Wasm filters

/// The proxy-wasm plugin config shared by the HTTP and network Wasm filters.
#[derive(Debug, Clone, Serialize)]
pub struct PluginConfig {
    pub name: String,
    pub root_id: String,
    pub fail_open: bool,
    pub vm_config: VmConfig,
    pub configuration: Typed<StringValue>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VmConfig {
    pub vm_id: String,
    pub runtime: String,
    pub code: VmCode,
}

#[derive(Debug, Clone, Serialize)]
pub struct VmCode {
    pub local: LocalFile,
}

#[derive(Debug, Clone, Serialize)]
pub struct LocalFile {
    pub filename: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StringValue {
    pub value: String,
}

impl TypeUrl for StringValue {
    const TYPE_URL: &'static str = "type.googleapis.com/google.protobuf.StringValue";
}

/// The HTTP Wasm filter.
#[derive(Debug, Clone, Serialize)]
pub struct HttpWasm {
    pub config: PluginConfig,
}

impl TypeUrl for HttpWasm {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
}

/// The network (TCP) Wasm filter.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkWasm {
    pub config: PluginConfig,
}

impl TypeUrl for NetworkWasm {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm";
}

#[derive(Debug, Clone, Serialize)]
pub struct TcpProxy {
    pub stat_prefix: String,
    pub cluster: String,
}

impl TypeUrl for TcpProxy {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
}

// ---------------------------------------------------------------------------------------
// Access log

#[derive(Debug, Clone, Serialize)]
pub struct FileAccessLog {
    pub path: String,
    pub log_format: JsonFormat,
}

#[derive(Debug, Clone, Serialize)]
pub struct JsonFormat {
    pub json_format: Value,
}

impl TypeUrl for FileAccessLog {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";
}

// ---------------------------------------------------------------------------------------
// Listeners and the bootstrap

#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    pub name: String,
    pub address: Address,
    pub filter_chains: Vec<FilterChain>,
}

impl TypeUrl for Listener {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.config.listener.v3.Listener";
}

#[derive(Debug, Clone, Serialize)]
pub struct FilterChain {
    pub filters: Vec<Value>,
}

/// A listener with one filter chain.
pub fn listener(name: impl Into<String>, address: Address, filters: Vec<Value>) -> Value {
    value(Listener {
        name: name.into(),
        address,
        filter_chains: vec![FilterChain { filters }],
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Bootstrap {
    pub admin: Admin,
    pub static_resources: StaticResources,
}

#[derive(Debug, Clone, Serialize)]
pub struct Admin {
    pub address: Address,
}

#[derive(Debug, Clone, Serialize)]
pub struct StaticResources {
    pub listeners: Vec<Value>,
    pub clusters: Vec<Value>,
}

/// A static bootstrap: the admin listener, then `listeners` and `clusters`.
pub fn bootstrap(admin: Address, listeners: Vec<Value>, clusters: Vec<Value>) -> Value {
    value(Bootstrap {
        admin: Admin { address: admin },
        static_resources: StaticResources {
            listeners,
            clusters,
        },
    })
}

// ---------------------------------------------------------------------------------------
// Clusters

/// A cluster of endpoints given by address (`STATIC`) or by DNS name (`STRICT_DNS`).
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub connect_timeout: String,
    pub load_assignment: LoadAssignment,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_lookup_family: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_socket: Option<Extension<UpstreamTlsContext>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typed_extension_protocol_options: Option<ProtocolOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_breakers: Option<CircuitBreakers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_checks: Option<Vec<HealthCheck>>,
}

impl TypeUrl for Cluster {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
}

impl Cluster {
    /// `name` reaching `endpoints` by address, connect timeout 1 s.
    pub fn new(name: impl Into<String>, endpoints: Vec<Address>) -> Self {
        let name = name.into();
        Cluster {
            load_assignment: LoadAssignment {
                cluster_name: name.clone(),
                endpoints: vec![LocalityEndpoints {
                    lb_endpoints: endpoints
                        .into_iter()
                        .map(|address| LbEndpoint {
                            endpoint: Endpoint { address },
                        })
                        .collect(),
                }],
            },
            name,
            kind: "STATIC",
            connect_timeout: "1s".into(),
            dns_lookup_family: None,
            transport_socket: None,
            typed_extension_protocol_options: None,
            outlier_detection: None,
            circuit_breakers: None,
            health_checks: None,
        }
    }
}

/// The part of a cluster an Istio EnvoyFilter merges into the gateway's own cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterPatch {
    pub typed_extension_protocol_options: ProtocolOptions,
}

/// TLS to the upstream.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamTlsContext {
    pub sni: String,
    pub common_tls_context: CommonTlsContext,
}

impl TypeUrl for UpstreamTlsContext {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
}

#[derive(Debug, Clone, Serialize)]
pub struct CommonTlsContext {
    pub validation_context: ValidationContext,
}

#[derive(Debug, Clone, Serialize)]
pub struct ValidationContext {
    pub trusted_ca: LocalFile,
    pub match_typed_subject_alt_names: Vec<SanMatcher>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SanMatcher {
    pub san_type: &'static str,
    pub matcher: StringMatcher,
}

/// A cluster's `typed_extension_protocol_options`: the one entry the generator writes.
#[derive(Debug, Clone, Serialize)]
pub struct ProtocolOptions {
    #[serde(rename = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions")]
    pub http: Typed<HttpProtocolOptions>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpProtocolOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explicit_http_config: Option<ExplicitHttpConfig>,
    /// Upstream HTTP filters; Envoy's upstream codec must be last.
    pub http_filters: Vec<Value>,
}

impl TypeUrl for HttpProtocolOptions {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
}

/// HTTP/1.1 to the upstream, whatever the downstream spoke.
#[derive(Debug, Clone, Serialize)]
pub struct ExplicitHttpConfig {
    pub http_protocol_options: Empty,
}

/// A message whose presence is its meaning.
#[derive(Debug, Clone, Serialize)]
pub struct Empty {}

/// The codec filter that ends an upstream filter chain.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamCodec {}

impl TypeUrl for UpstreamCodec {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec";
}

/// Envoy's SigV4 request signing filter.
#[derive(Debug, Clone, Serialize)]
pub struct AwsRequestSigning {
    pub service_name: &'static str,
    pub region: String,
    pub use_unsigned_payload: bool,
    pub credential_provider: CredentialProvider,
    pub match_excluded_headers: Vec<StringMatcher>,
}

/// Where the signing filter finds its credentials.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialProvider {
    /// Only the sources named here (not Envoy's default chain).
    pub custom_credential_provider_chain: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_file_provider: Option<CredentialsFileProvider>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_credential_provider: Option<Empty>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CredentialsFileProvider {
    pub credentials_data_source: LocalFile,
    pub profile: String,
}

impl TypeUrl for AwsRequestSigning {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.extensions.filters.http.aws_request_signing.v3.AwsRequestSigning";
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadAssignment {
    pub cluster_name: String,
    pub endpoints: Vec<LocalityEndpoints>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LocalityEndpoints {
    pub lb_endpoints: Vec<LbEndpoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LbEndpoint {
    pub endpoint: Endpoint,
}

#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub address: Address,
}

/// Envoy's outlier detection (passive health of single endpoints).
#[derive(Debug, Clone, Serialize)]
pub struct OutlierDetection {
    pub consecutive_5xx: u32,
    pub consecutive_gateway_failure: u32,
    pub enforcing_consecutive_gateway_failure: u32,
    pub interval: String,
    pub base_ejection_time: String,
    pub max_ejection_percent: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct CircuitBreakers {
    pub thresholds: Vec<Thresholds>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Thresholds {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending_requests: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_budget: Option<RetryBudget>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetryBudget {
    pub budget_percent: Percent,
    pub min_retry_concurrency: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Percent {
    pub value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthCheck {
    pub timeout: String,
    pub interval: String,
    pub no_traffic_interval: String,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    pub http_health_check: HttpHealthCheck,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpHealthCheck {
    pub path: String,
}

/// A cluster that tries its child clusters in order (Envoy's aggregate cluster).
#[derive(Debug, Clone, Serialize)]
pub struct AggregateCluster {
    pub name: String,
    pub connect_timeout: String,
    pub lb_policy: &'static str,
    pub cluster_type: Extension<AggregateClusterConfig>,
    pub circuit_breakers: CircuitBreakers,
}

#[derive(Debug, Clone, Serialize)]
pub struct AggregateClusterConfig {
    pub clusters: Vec<String>,
}

impl TypeUrl for AggregateClusterConfig {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig";
}

// ---------------------------------------------------------------------------------------
// Routes

#[derive(Debug, Clone, Serialize)]
pub struct RouteConfiguration {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
}

impl TypeUrl for RouteConfiguration {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
}

#[derive(Debug, Clone, Serialize)]
pub struct VirtualHost {
    pub name: String,
    pub domains: Vec<String>,
    pub routes: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_attempt_count_in_response: Option<bool>,
}

/// A route: what it matches and what it does.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    #[serde(rename = "match")]
    pub matching: RouteMatch,
    #[serde(flatten)]
    pub entry: RouteEntry,
}

/// What a route matches.
#[derive(Debug, Clone, Serialize)]
pub struct RouteMatch {
    #[serde(flatten)]
    pub path: PathMatch,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatcher>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub query_parameters: Vec<QueryParameterMatcher>,
}

impl RouteMatch {
    pub fn new(path: PathMatch) -> Self {
        RouteMatch {
            path,
            headers: Vec::new(),
            query_parameters: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    Path(String),
    Prefix(String),
    PathSeparatedPrefix(String),
    SafeRegex(Regex),
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StringMatcher {
    Exact(String),
    Prefix(String),
    SafeRegex(Regex),
}

#[derive(Debug, Clone, Serialize)]
pub struct Regex {
    pub regex: String,
}

pub fn regex(regex: impl Into<String>) -> Regex {
    Regex {
        regex: regex.into(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HeaderMatcher {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_match: Option<StringMatcher>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub present_match: Option<bool>,
}

impl HeaderMatcher {
    pub fn matching(name: impl Into<String>, m: StringMatcher) -> Self {
        HeaderMatcher {
            name: name.into(),
            string_match: Some(m),
            present_match: None,
        }
    }

    pub fn exact(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::matching(name, StringMatcher::Exact(value.into()))
    }

    /// Present (`true`) or absent (`false`).
    pub fn present(name: impl Into<String>, present: bool) -> Self {
        HeaderMatcher {
            name: name.into(),
            string_match: None,
            present_match: Some(present),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryParameterMatcher {
    pub name: String,
    pub string_match: StringMatcher,
}

/// What a route does: forward, redirect or answer, and the header edits around it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_response: Option<DirectResponse>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_add: Vec<HeaderValueOption>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_remove: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_remove: Vec<String>,
}

/// Forwarding: to one cluster or several by weight, with the path and host rewritten.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteAction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The cluster named by this request header (the filters write it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_header: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weighted_clusters: Option<WeightedClusters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_rewrite_literal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex_rewrite: Option<RegexRewrite>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WeightedClusters {
    pub clusters: Vec<ClusterWeight>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterWeight {
    pub name: String,
    pub weight: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RedirectAction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme_redirect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_redirect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_redirect: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_redirect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex_rewrite: Option<RegexRewrite>,
    pub response_code: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct DirectResponse {
    pub status: u16,
    pub body: InlineString,
}

#[derive(Debug, Clone, Serialize)]
pub struct InlineString {
    pub inline_string: String,
}

/// A regex rewrite of the path (`regex_rewrite`).
#[derive(Debug, Clone, Serialize)]
pub struct RegexRewrite {
    pub pattern: Regex,
    pub substitution: String,
}

/// A header to add (`request_headers_to_add`, `response_headers_to_add`).
#[derive(Debug, Clone, Serialize)]
pub struct HeaderValueOption {
    pub header: HeaderValue,
    pub append_action: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeaderValue {
    pub key: String,
    pub value: String,
}

/// A route's retry policy toward the cluster the filters chose.
#[derive(Debug, Clone, Serialize)]
pub struct RetryPolicy {
    pub retry_on: &'static str,
    pub num_retries: usize,
    pub retry_priority: Extension<PreviousPriorities>,
    pub retry_host_predicate: Vec<Extension<PreviousHosts>>,
    pub host_selection_retry_max_attempts: u32,
    pub retry_back_off: RetryBackOff,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetryBackOff {
    pub base_interval: String,
    pub max_interval: String,
}

/// A copy of the request sent to `cluster`, for `runtime_fraction` of requests (all when
/// `None`).
#[derive(Debug, Clone, Serialize)]
pub struct RequestMirrorPolicy {
    pub cluster: String,
    pub disable_shadow_host_suffix_append: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_fraction: Option<RuntimeFraction>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuntimeFraction {
    pub default_value: FractionalPercent,
}

#[derive(Debug, Clone, Serialize)]
pub struct FractionalPercent {
    pub numerator: u32,
    pub denominator: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviousPriorities {
    pub update_frequency: u32,
}

impl TypeUrl for PreviousPriorities {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig";
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviousHosts {}

impl TypeUrl for PreviousHosts {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";
}

// ---------------------------------------------------------------------------------------
// File-based xDS

/// Where Envoy reads a discovery resource from: a file it watches.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigSource {
    pub path_config_source: PathConfigSource,
    pub resource_api_version: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathConfigSource {
    pub path: String,
}

pub fn file_source(path: &std::path::Path) -> ConfigSource {
    ConfigSource {
        path_config_source: PathConfigSource {
            path: path.display().to_string(),
        },
        resource_api_version: "V3",
    }
}

/// The content of one xDS file.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoveryResponse {
    pub version_info: String,
    pub resources: Vec<Value>,
}

/// An HCM's routes by RDS instead of inline.
#[derive(Debug, Clone, Serialize)]
pub struct Rds {
    pub route_config_name: String,
    pub config_source: ConfigSource,
}

/// A filter whose config comes by ECDS.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoveredFilter {
    pub name: String,
    pub config_discovery: ExtensionConfigSource,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExtensionConfigSource {
    pub config_source: ConfigSource,
    pub type_urls: Vec<String>,
}

/// An ECDS resource: a filter's name and typed config.
#[derive(Debug, Clone, Serialize)]
pub struct TypedExtensionConfig {
    pub name: String,
    pub typed_config: Value,
}

impl TypeUrl for TypedExtensionConfig {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
}

#[derive(Debug, Clone, Serialize)]
pub struct DynamicResources {
    pub lds_config: ConfigSource,
    pub cds_config: ConfigSource,
}

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub id: String,
    pub cluster: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_extension_writes_its_type_url_beside_its_fields() {
        let got = value(extension(
            "a",
            TcpProxy {
                stat_prefix: "p".into(),
                cluster: "c".into(),
            },
        ));
        assert_eq!(
            got,
            json!({"name": "a", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "stat_prefix": "p", "cluster": "c"
            }})
        );
    }

    #[test]
    fn an_empty_config_writes_only_its_type_url() {
        assert_eq!(
            value(Typed::new(Router {})),
            json!({"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"})
        );
    }
}
