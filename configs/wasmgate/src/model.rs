//! The input documents the generator understands, as serde types (unknown fields rejected).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// What `kubectl get -o yaml` adds; read and ignored.
    #[serde(default)]
    pub uid: Option<serde_json::Value>,
    #[serde(default)]
    pub resource_version: Option<serde_json::Value>,
    #[serde(default)]
    pub generation: Option<serde_json::Value>,
    #[serde(default)]
    pub creation_timestamp: Option<serde_json::Value>,
    #[serde(default)]
    pub managed_fields: Option<serde_json::Value>,
    #[serde(default)]
    pub owner_references: Option<serde_json::Value>,
    #[serde(default)]
    pub generate_name: Option<serde_json::Value>,
    #[serde(default)]
    pub finalizers: Option<serde_json::Value>,
    #[serde(default)]
    pub self_link: Option<serde_json::Value>,
}

/// A port given by number or by name, as Kubernetes' IntOrString.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(s) => write!(f, "{s}"),
        }
    }
}

impl<'de> Deserialize<'de> for PortRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number (1-65535) or a port name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRef, E> {
                u16::try_from(v)
                    .ok()
                    .filter(|p| *p > 0)
                    .map(PortRef::Number)
                    .ok_or_else(|| E::custom(format!("port {v} is out of range 1-65535")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRef, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("port {v} is out of range 1-65535")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortRef, E> {
                if v.is_empty() {
                    return Err(E::custom("a port name must not be empty"));
                }
                Ok(PortRef::Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

// ---- Kubernetes Service (the parts routing needs) ----

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    pub metadata: Metadata,
    pub spec: ServiceSpec,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default, rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    /// What `kubectl get -o yaml` adds; read and ignored.
    #[serde(default, rename = "clusterIPs")]
    pub cluster_ips: Option<serde_json::Value>,
    #[serde(default)]
    pub ip_families: Option<serde_json::Value>,
    #[serde(default)]
    pub ip_family_policy: Option<serde_json::Value>,
    #[serde(default)]
    pub internal_traffic_policy: Option<serde_json::Value>,
    #[serde(default)]
    pub session_affinity: Option<serde_json::Value>,
    #[serde(default)]
    pub external_traffic_policy: Option<serde_json::Value>,
    #[serde(default)]
    pub allocate_load_balancer_node_ports: Option<serde_json::Value>,
    #[serde(default)]
    pub health_check_node_port: Option<serde_json::Value>,
    #[serde(default)]
    pub publish_not_ready_addresses: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    #[serde(default)]
    pub name: Option<String>,
    pub port: u16,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub target_port: Option<PortRef>,
    #[serde(default)]
    pub app_protocol: Option<String>,
    /// What `kubectl get -o yaml` shows of a NodePort or LoadBalancer Service; ignored.
    #[serde(default)]
    pub node_port: Option<u16>,
}

// ---- The seed's VirtualHost ----

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualHost {
    pub metadata: Metadata,
    pub spec: VirtualHostSpec,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualHostSpec {
    pub routes: Vec<VhRoute>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VhRoute {
    #[serde(default)]
    pub http: Option<VhHttpRoute>,
    #[serde(default)]
    pub tcp: Option<VhTcpRoute>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VhHttpRoute {
    #[serde(default)]
    pub host: String,
    pub rules: Vec<VhHttpRule>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VhHttpRule {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub backend: Option<VhBackend>,
    #[serde(default)]
    pub status_code: Option<VhStatusCode>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VhBackend {
    /// The service; empty for a bucket.
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub service_port: Option<PortRef>,
    /// A storage bucket instead of a service (HTTP rules only).
    #[serde(default)]
    pub bucket: Option<crate::buckets::BucketSpec>,
}

/// The seed's StatusCode action: a bare code, or a code with a body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VhStatusCode {
    pub code: u16,
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VhTcpRoute {
    pub port: u16,
    pub rules: Vec<VhTcpRule>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VhTcpRule {
    pub backend: VhBackend,
}

// ---- Our cluster inventory ----

/// The member clusters and how each service is reached in each of them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterInventory {
    pub metadata: Metadata,
    pub spec: InventorySpec,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InventorySpec {
    pub clusters: Vec<InventoryCluster>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InventoryCluster {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Service name -> service port -> endpoints (`host:port`) reaching it in this cluster.
    #[serde(default)]
    pub services: BTreeMap<String, BTreeMap<u16, Vec<String>>>,
}

// ---- The seed's multi-cluster APIs ----

/// The seed's MultiClusterService. The talk shows `ports` and `clusters` both inside
/// `spec.template` and directly under `spec`; both spellings are accepted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MultiClusterService {
    pub metadata: Metadata,
    pub spec: McsSpec,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McsSpec {
    #[serde(default)]
    pub template: McsTemplate,
    #[serde(default)]
    pub ports: Option<Vec<ServicePort>>,
    #[serde(default)]
    pub clusters: Option<Vec<McsClusterSelector>>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McsTemplate {
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Option<Vec<ServicePort>>,
    #[serde(default)]
    pub clusters: Option<Vec<McsClusterSelector>>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McsClusterSelector {
    pub selector: MatchLabels,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchLabels {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// The seed's MultiClusterIngress: an Ingress (v1beta1 shape) under `spec.template.spec`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MultiClusterIngress {
    pub metadata: Metadata,
    pub spec: MciSpec,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MciSpec {
    pub template: MciTemplate,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MciTemplate {
    pub spec: IngressSpec,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressSpec {
    #[serde(default)]
    pub backend: Option<IngressBackend>,
    #[serde(default)]
    pub rules: Vec<IngressRule>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressRule {
    #[serde(default)]
    pub host: Option<String>,
    pub http: IngressHttp,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressHttp {
    pub paths: Vec<IngressPath>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressPath {
    #[serde(default)]
    pub path: Option<String>,
    pub backend: IngressBackend,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressBackend {
    pub service_name: String,
    pub service_port: PortRef,
}

// ---- Gateway API v1 and the MCS API ----

/// A Gateway (Gateway API v1; the seed's Gateway is its ancestor): where the proxy listens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gateway {
    pub metadata: Metadata,
    pub spec: GatewaySpec,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    #[serde(default)]
    pub gateway_class_name: Option<String>,
    pub listeners: Vec<Listener>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    #[serde(default)]
    pub hostname: Option<String>,
    pub port: u16,
    pub protocol: String,
    #[serde(default)]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// Which routes may attach to a listener (Gateway API `allowedRoutes`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedRoutes {
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
    #[serde(default)]
    pub kinds: Vec<RouteGroupKind>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteNamespaces {
    /// `Same` (the default), `All` or `Selector`.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub selector: Option<LabelSelector>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteGroupKind {
    #[serde(default)]
    pub group: Option<String>,
    pub kind: String,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// A Kubernetes Namespace: its labels are what listener selectors match.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    pub metadata: Metadata,
}

/// Gateway API ReferenceGrant: lets objects of other namespaces refer to objects in this one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferenceGrant {
    pub metadata: Metadata,
    pub spec: ReferenceGrantSpec,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferenceGrantSpec {
    pub from: Vec<GrantFrom>,
    pub to: Vec<GrantTo>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantFrom {
    pub group: String,
    pub kind: String,
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantTo {
    pub group: String,
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRoute {
    pub metadata: Metadata,
    pub spec: HttpRouteSpec,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentRef>,
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

/// Where a route attaches (Gateway API ParentReference): a Gateway, optionally one of its
/// listeners by name or port.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParentRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default)]
    pub section_name: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub matches: Vec<wasmgate_core::config::HttpMatch>,
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    #[serde(default)]
    pub backend_refs: Vec<BackendRef>,
    /// Accepted by the schema, not supported by wasmgate: rejected with a clear error.
    #[serde(default)]
    pub timeouts: Option<serde_json::Value>,
    #[serde(default)]
    pub retry: Option<serde_json::Value>,
    #[serde(default)]
    pub session_persistence: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteFilter {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub request_header_modifier: Option<GwHeaderModifier>,
    #[serde(default)]
    pub response_header_modifier: Option<GwHeaderModifier>,
    #[serde(default)]
    pub request_redirect: Option<GwRedirect>,
    #[serde(default)]
    pub url_rewrite: Option<GwUrlRewrite>,
    #[serde(default)]
    pub request_mirror: Option<serde_json::Value>,
    #[serde(default)]
    pub extension_ref: Option<serde_json::Value>,
    #[serde(default)]
    pub cors: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GwHeaderModifier {
    #[serde(default)]
    pub set: Vec<wasmgate_core::config::HeaderValue>,
    #[serde(default)]
    pub add: Vec<wasmgate_core::config::HeaderValue>,
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GwRedirect {
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub path: Option<GwPathModifier>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub status_code: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GwUrlRewrite {
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub path: Option<GwPathModifier>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GwPathModifier {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub replace_full_path: Option<String>,
    #[serde(default)]
    pub replace_prefix_match: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub filters: Vec<serde_json::Value>,
}

/// The MCS API's ServiceImport: a service exported from several clusters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceImport {
    pub metadata: Metadata,
    pub spec: ServiceImportSpec,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceImportSpec {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub session_affinity: Option<String>,
    #[serde(default)]
    pub session_affinity_config: Option<serde_json::Value>,
}

/// Istio's `DestinationRule` (networking.istio.io), read as the tuning policy of a
/// multi-cluster service whose name `spec.host` gives. Fields wasmgate cannot honour are
/// kept as raw values here so that they are refused by name, never dropped (see `policy`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationRule {
    pub metadata: Metadata,
    pub spec: DestinationRuleSpec,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationRuleSpec {
    pub host: String,
    #[serde(default)]
    pub traffic_policy: Option<TrafficPolicy>,
    #[serde(default)]
    pub subsets: Option<serde_json::Value>,
    #[serde(default)]
    pub export_to: Option<serde_json::Value>,
    #[serde(default)]
    pub workload_selector: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicy {
    #[serde(default)]
    pub load_balancer: Option<LoadBalancerSettings>,
    #[serde(default)]
    pub connection_pool: Option<ConnectionPoolSettings>,
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetection>,
    #[serde(default)]
    pub tls: Option<serde_json::Value>,
    #[serde(default)]
    pub port_level_settings: Option<serde_json::Value>,
    #[serde(default)]
    pub tunnel: Option<serde_json::Value>,
    #[serde(default)]
    pub proxy_protocol: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerSettings {
    #[serde(default)]
    pub simple: Option<String>,
    #[serde(default)]
    pub consistent_hash: Option<ConsistentHash>,
    #[serde(default)]
    pub locality_lb_setting: Option<LocalityLbSetting>,
    #[serde(default)]
    pub warmup_duration_secs: Option<serde_json::Value>,
    #[serde(default)]
    pub warmup: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsistentHash {
    #[serde(default)]
    pub http_header_name: Option<String>,
    #[serde(default)]
    pub http_cookie: Option<HttpCookie>,
    #[serde(default)]
    pub use_source_ip: Option<bool>,
    #[serde(default)]
    pub http_query_parameter_name: Option<serde_json::Value>,
    #[serde(default)]
    pub ring_hash: Option<serde_json::Value>,
    #[serde(default)]
    pub maglev: Option<serde_json::Value>,
    #[serde(default)]
    pub minimum_ring_size: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCookie {
    pub name: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub ttl: Option<String>,
    #[serde(default)]
    pub attributes: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityLbSetting {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub distribute: Option<serde_json::Value>,
    #[serde(default)]
    pub failover: Option<serde_json::Value>,
    #[serde(default)]
    pub failover_priority: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionPoolSettings {
    #[serde(default)]
    pub tcp: Option<TcpPool>,
    #[serde(default)]
    pub http: Option<HttpPool>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpPool {
    #[serde(default)]
    pub max_connections: Option<u32>,
    #[serde(default)]
    pub connect_timeout: Option<String>,
    #[serde(default)]
    pub tcp_keepalive: Option<serde_json::Value>,
    #[serde(default)]
    pub max_connection_duration: Option<serde_json::Value>,
    #[serde(default)]
    pub idle_timeout: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpPool {
    #[serde(default)]
    pub http1_max_pending_requests: Option<u32>,
    #[serde(default)]
    pub http2_max_requests: Option<u32>,
    #[serde(default)]
    pub max_requests_per_connection: Option<serde_json::Value>,
    #[serde(default)]
    pub max_retries: Option<serde_json::Value>,
    #[serde(default)]
    pub idle_timeout: Option<serde_json::Value>,
    #[serde(default)]
    pub h2_upgrade_policy: Option<serde_json::Value>,
    #[serde(default)]
    pub use_client_protocol: Option<serde_json::Value>,
    #[serde(default)]
    pub max_concurrent_streams: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    #[serde(default, rename = "consecutive5xxErrors")]
    pub consecutive_5xx_errors: Option<u32>,
    #[serde(default)]
    pub consecutive_errors: Option<serde_json::Value>,
    #[serde(default)]
    pub consecutive_gateway_errors: Option<serde_json::Value>,
    #[serde(default)]
    pub consecutive_local_origin_failures: Option<serde_json::Value>,
    #[serde(default)]
    pub split_external_local_origin_errors: Option<serde_json::Value>,
    #[serde(default)]
    pub interval: Option<serde_json::Value>,
    #[serde(default)]
    pub base_ejection_time: Option<String>,
    #[serde(default)]
    pub max_ejection_percent: Option<u32>,
    #[serde(default)]
    pub min_health_percent: Option<serde_json::Value>,
}

/// A Kubernetes EndpointSlice (discovery.k8s.io/v1): endpoints of the Service its
/// `kubernetes.io/service-name` label names.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    pub metadata: Metadata,
    #[serde(default)]
    pub address_type: Option<String>,
    #[serde(default)]
    pub endpoints: Vec<SliceEndpoint>,
    #[serde(default)]
    pub ports: Vec<SlicePort>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceEndpoint {
    pub addresses: Vec<String>,
    #[serde(default)]
    pub conditions: Option<SliceConditions>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceConditions {
    #[serde(default)]
    pub ready: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlicePort {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub protocol: Option<String>,
}
