//! Typed Istio manifests the generator writes (WasmPlugin, ServiceEntry, DestinationRule,
//! EnvoyFilter): a misspelt field, apiVersion or kind is a compile error. Only what the
//! generator sets is modelled; an `Option` left `None` is not written.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::envoy_api::value;

/// A manifest kind: its apiVersion and kind.
pub trait IstioKind {
    const API_VERSION: &'static str;
    const KIND: &'static str;
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<S> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: S,
}

#[derive(Debug, Clone, Serialize)]
struct Metadata {
    name: String,
    namespace: String,
}

/// The manifest `name` in `namespace` with `spec`.
pub fn manifest<S: IstioKind + Serialize>(
    name: impl Into<String>,
    namespace: impl Into<String>,
    spec: S,
) -> Value {
    value(Manifest {
        api_version: S::API_VERSION,
        kind: S::KIND,
        metadata: Metadata {
            name: name.into(),
            namespace: namespace.into(),
        },
        spec,
    })
}

// ---------------------------------------------------------------------------------------
// ServiceEntry

#[derive(Debug, Clone, Serialize)]
pub struct ServiceEntry {
    pub hosts: Vec<String>,
    pub location: &'static str,
    pub resolution: &'static str,
    pub ports: Vec<ServicePort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<WorkloadEntry>>,
}

impl IstioKind for ServiceEntry {
    const API_VERSION: &'static str = "networking.istio.io/v1";
    const KIND: &'static str = "ServiceEntry";
}

#[derive(Debug, Clone, Serialize)]
pub struct ServicePort {
    pub number: u16,
    pub name: &'static str,
    pub protocol: &'static str,
}

/// The one port of the generated ServiceEntries: plain HTTP, so the gateway's Envoy (its
/// router and filters) sees the requests.
pub fn http_port(number: u16) -> ServicePort {
    ServicePort {
        number,
        name: "http",
        protocol: "HTTP",
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadEntry {
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<BTreeMap<String, u16>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

// ---------------------------------------------------------------------------------------
// DestinationRule

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    pub host: String,
    pub traffic_policy: TrafficPolicy,
}

impl IstioKind for DestinationRule {
    const API_VERSION: &'static str = "networking.istio.io/v1";
    const KIND: &'static str = "DestinationRule";
}

#[derive(Debug, Clone, Serialize)]
pub struct TrafficPolicy {
    pub tls: ClientTls,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientTls {
    pub mode: &'static str,
    pub sni: String,
}

// ---------------------------------------------------------------------------------------
// EnvoyFilter

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvoyFilter {
    pub workload_selector: WorkloadSelector,
    pub config_patches: Vec<ConfigPatch>,
}

impl IstioKind for EnvoyFilter {
    const API_VERSION: &'static str = "networking.istio.io/v1alpha3";
    const KIND: &'static str = "EnvoyFilter";
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadSelector {
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigPatch {
    pub apply_to: &'static str,
    #[serde(rename = "match")]
    pub matching: PatchMatch,
    pub patch: Patch,
}

/// Which objects of the gateway's Envoy config a patch applies to.
#[derive(Debug, Clone, Serialize)]
pub struct PatchMatch {
    pub context: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterMatch>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterMatch {
    pub service: String,
    pub port_number: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct Patch {
    pub operation: &'static str,
    pub value: Value,
}

/// A patch merging `value` into what `matching` selects in the gateway's config.
pub fn merge_patch(
    apply_to: &'static str,
    cluster: Option<ClusterMatch>,
    value: Value,
) -> ConfigPatch {
    ConfigPatch {
        apply_to,
        matching: PatchMatch {
            context: "GATEWAY",
            cluster,
        },
        patch: Patch {
            operation: "MERGE",
            value,
        },
    }
}

// ---------------------------------------------------------------------------------------
// WasmPlugin

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmPlugin {
    #[serde(flatten)]
    pub target: PluginTarget,
    pub url: String,
    pub plugin_name: String,
    pub phase: &'static str,
    /// Higher priority runs first.
    pub priority: u32,
    pub fail_strategy: &'static str,
    pub plugin_config: Value,
}

impl IstioKind for WasmPlugin {
    const API_VERSION: &'static str = "extensions.istio.io/v1alpha1";
    const KIND: &'static str = "WasmPlugin";
}

/// Where a WasmPlugin applies: workloads by label or a Gateway, optionally one port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginTarget {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_refs: Option<Vec<TargetRef>>,
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Vec<TrafficSelector>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetRef {
    pub group: &'static str,
    pub kind: &'static str,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficSelector {
    pub mode: &'static str,
    pub ports: Vec<PortSelector>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortSelector {
    pub number: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_manifest_carries_its_kinds_api_version_and_camel_case_fields() {
        let got = manifest(
            "n",
            "ns",
            DestinationRule {
                host: "h".into(),
                traffic_policy: TrafficPolicy {
                    tls: ClientTls {
                        mode: "SIMPLE",
                        sni: "h".into(),
                    },
                },
            },
        );
        assert_eq!(
            got,
            json!({
                "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": "n", "namespace": "ns"},
                "spec": {"host": "h", "trafficPolicy": {"tls": {"mode": "SIMPLE", "sni": "h"}}}
            })
        );
    }
}
