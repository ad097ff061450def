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
    pub service: String,
    pub service_port: PortRef,
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
