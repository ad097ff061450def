//! Resolving what documents refer to: services and their ports, multi-cluster services and
//! their member clusters in the inventory, and the Envoy clusters all of that needs.

use std::collections::BTreeMap;

use wasmgate_core::config as fc;
use wasmgate_core::route_table::default_cluster_name;

use crate::error::{ErrorKind, GenError, Location};
use crate::listeners::namespace_of;
use crate::load::Inputs;
use crate::model::*;

/// An Envoy cluster to generate: its endpoints (`host:port`).
pub type Endpoints = BTreeMap<String, Vec<String>>;

/// A multi-cluster service as the generator sees it, from a MultiClusterService or a
/// ServiceImport.
#[derive(Debug, Clone)]
pub struct McsDef {
    pub at: Location,
    pub ports: Vec<ServicePort>,
    /// Label selectors over the inventory; empty selects every cluster.
    pub selectors: Vec<BTreeMap<String, String>>,
    pub health_path: Option<String>,
}

/// Resolution state shared by every document of a run; errors accumulate here.
pub struct Ctx<'a> {
    pub inputs: &'a Inputs,
    pub errors: Vec<GenError>,
    pub clusters: Endpoints,
    pub mcs: BTreeMap<String, McsDef>,
    /// Multi-cluster services in use, with the port they are used on.
    pub used_mcs: BTreeMap<String, fc::MultiClusterService>,
    /// DestinationRules by the multi-cluster service they tune (index into the inputs).
    pub policies: BTreeMap<String, usize>,
    /// What policies set on Envoy clusters, by cluster name.
    pub cluster_policy: BTreeMap<String, crate::policy::ClusterPolicy>,
    /// HTTPRoute rules' timeouts, retries and mirrors, for Envoy routes.
    pub rule_policies: crate::gateway_filters::Policies,
    /// `--strict`: a fault Gateway API scopes to a route is an error, not a status.
    pub strict: bool,
    /// The namespace of the Service behind each Envoy cluster of a plain backend.
    pub cluster_namespaces: BTreeMap<String, String>,
    /// Each input Gateway's status, in input order (filled by `listeners`).
    pub gateway_status: Vec<crate::status::GatewayStatus>,
    /// The Envoy clusters of storage buckets in use, by cluster name.
    pub buckets: crate::buckets::BucketClusters,
}

/// The annotation that turns on the balancer's active health checks for a multi-cluster
/// service: the HTTP path to probe in each member cluster.
pub const HEALTH_PATH_ANNOTATION: &str = "wasmgate.io/health-check-path";

impl<'a> Ctx<'a> {
    pub fn new(inputs: &'a Inputs) -> Self {
        let mut cx = Ctx {
            inputs,
            errors: Vec::new(),
            clusters: BTreeMap::new(),
            mcs: BTreeMap::new(),
            used_mcs: BTreeMap::new(),
            policies: BTreeMap::new(),
            cluster_policy: BTreeMap::new(),
            rule_policies: Default::default(),
            strict: false,
            cluster_namespaces: BTreeMap::new(),
            gateway_status: Vec::new(),
            buckets: Default::default(),
        };
        cx.index_mcs();
        cx.index_policies();
        cx
    }

    /// DestinationRules tune multi-cluster services: one per service, naming one that exists.
    fn index_policies(&mut self) {
        let inputs = self.inputs;
        for (i, dr) in inputs.destination_rules.iter().enumerate() {
            let name = crate::policy::service_of_host(&dr.value.spec.host);
            if !self.mcs.contains_key(name) {
                self.fail(
                    &dr.at,
                    "spec.host",
                    ErrorKind::NoMultiClusterService(name.to_string()),
                );
                continue;
            }
            if let Some(&prev) = self.policies.get(name) {
                let first = &inputs.destination_rules[prev].at;
                let first = format!("{}: document {}", first.file.display(), first.document);
                self.fail(
                    &dr.at,
                    "spec.host",
                    ErrorKind::DuplicateObject(format!(
                        "a DestinationRule for {name:?} (first in {first})"
                    )),
                );
                continue;
            }
            self.policies.insert(name.to_string(), i);
        }
    }

    pub fn fail(&mut self, at: &Location, field: impl Into<String>, kind: ErrorKind) {
        self.errors.push(GenError {
            at: Location {
                field: field.into(),
                ..at.clone()
            },
            kind,
        });
    }

    /// A fault the spec scopes to one route (reported in its status): an error only under
    /// `--strict`.
    pub fn route_fault(&mut self, at: &Location, field: &str, message: String) {
        if self.strict {
            self.fail(at, field, ErrorKind::StrictFault(message));
        }
    }

    /// Endpoints of `service` (in namespace `ns`) port `port` from the input's
    /// EndpointSlices: each ready address with the slice port named like the service port
    /// (or the only one).
    fn slice_endpoints(&self, ns: &str, service: &str, port: &ServicePort) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.inputs.endpoint_slices {
            let slice = &s.value;
            if slice
                .metadata
                .labels
                .get("kubernetes.io/service-name")
                .map(String::as_str)
                != Some(service)
                || namespace_of(slice.metadata.namespace.as_deref()) != ns
            {
                continue;
            }
            let target = match slice.ports.as_slice() {
                [only] if port.name.is_none() || only.name == port.name => only.port,
                many => many
                    .iter()
                    .find(|p| p.name.is_some() && p.name == port.name)
                    .and_then(|p| p.port),
            };
            let Some(target) = target else { continue };
            for e in &slice.endpoints {
                if e.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                    continue;
                }
                for a in &e.addresses {
                    let ep = if a.contains(':') {
                        format!("[{a}]:{target}")
                    } else {
                        format!("{a}:{target}")
                    };
                    if !out.contains(&ep) {
                        out.push(ep);
                    }
                }
            }
        }
        out
    }

    fn index_mcs(&mut self) {
        let inputs = self.inputs;
        for m in &inputs.multi_cluster_services {
            let spec = &m.value.spec;
            let pick = |a: &Option<Vec<ServicePort>>, b: &Option<Vec<ServicePort>>| match (a, b) {
                (Some(_), Some(_)) => Err(()),
                (Some(p), None) | (None, Some(p)) => Ok(p.clone()),
                (None, None) => Ok(Vec::new()),
            };
            let ports = match pick(&spec.template.ports, &spec.ports) {
                Ok(p) => p,
                Err(()) => {
                    self.fail(&m.at, "spec.ports", ErrorKind::GivenTwice("ports"));
                    continue;
                }
            };
            let clusters = match (&spec.template.clusters, &spec.clusters) {
                (Some(_), Some(_)) => {
                    self.fail(&m.at, "spec.clusters", ErrorKind::GivenTwice("clusters"));
                    continue;
                }
                (Some(c), None) | (None, Some(c)) => c.clone(),
                (None, None) => Vec::new(),
            };
            if ports.is_empty() {
                self.fail(&m.at, "spec.template.ports", ErrorKind::NoServicePort);
                continue;
            }
            let def = McsDef {
                at: m.at.clone(),
                ports,
                selectors: clusters
                    .into_iter()
                    .map(|c| c.selector.match_labels)
                    .collect(),
                health_path: m
                    .value
                    .metadata
                    .annotations
                    .get(HEALTH_PATH_ANNOTATION)
                    .cloned(),
            };
            self.add_mcs(&m.value.metadata.name, def);
        }
        for s in &inputs.service_imports {
            if let Some(k) = s
                .value
                .spec
                .kind
                .as_deref()
                .filter(|k| *k != "ClusterSetIP")
            {
                self.fail(&s.at, "spec.type", ErrorKind::ImportType(k.to_string()));
                continue;
            }
            let def = McsDef {
                at: s.at.clone(),
                ports: s.value.spec.ports.clone(),
                selectors: Vec::new(),
                health_path: s
                    .value
                    .metadata
                    .annotations
                    .get(HEALTH_PATH_ANNOTATION)
                    .cloned(),
            };
            self.add_mcs(&s.value.metadata.name, def);
        }
    }

    fn add_mcs(&mut self, name: &str, def: McsDef) {
        if let Some(prev) = self.mcs.get(name) {
            let first = format!("{}: document {}", prev.at.file.display(), prev.at.document);
            self.fail(
                &def.at,
                "metadata.name",
                ErrorKind::DuplicateObject(format!(
                    "multi-cluster service {name:?} (first defined in {first})"
                )),
            );
            return;
        }
        self.mcs.insert(name.to_string(), def);
    }

    /// The port a backend names on a Service (by number or name); without one, the Service's
    /// only port. An unknown or ambiguous port is reported at `field.port_field`.
    fn service_port(
        &mut self,
        at: &Location,
        field: &str,
        port_field: &str,
        service: &str,
        ports: &[ServicePort],
        port: Option<&PortRef>,
    ) -> Option<u16> {
        let found = match port {
            Some(wanted) => ports
                .iter()
                .find(|p| match wanted {
                    PortRef::Number(n) => p.port == *n,
                    PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
                })
                .map(|p| p.port),
            // Without a port, a service with exactly one port is unambiguous.
            None => match ports {
                [only] => Some(only.port),
                _ => None,
            },
        };
        if found.is_none() {
            self.fail(
                at,
                format!("{field}.{port_field}"),
                ErrorKind::UnknownPort {
                    service: service.to_string(),
                    port: port.map_or_else(|| "(none)".to_string(), PortRef::to_string),
                },
            );
        }
        found
    }

    fn inventory_clusters(&self) -> impl Iterator<Item = &'a InventoryCluster> {
        self.inputs
            .inventories
            .iter()
            .flat_map(|inv| &inv.value.spec.clusters)
    }

    /// The Envoy cluster of port `port` of Service `ns/service`: `<service>_<port>`, or
    /// `<service>.<ns>_<port>` when a Service of that name exists in another namespace too
    /// (Service names are DNS labels, so the dot cannot clash with a name).
    pub fn service_cluster(&self, ns: &str, service: &str, port: u16) -> String {
        let elsewhere = self.inputs.services.iter().any(|s| {
            s.value.metadata.name == service
                && namespace_of(s.value.metadata.namespace.as_deref()) != ns
        });
        if elsewhere {
            default_cluster_name(&format!("{service}.{ns}"), Some(port))
        } else {
            default_cluster_name(service, Some(port))
        }
    }

    /// Resolves a backend (a Service or a multi-cluster service) at `field` of `at`; records
    /// the Envoy clusters it needs. `port` names the service port (number or name).
    /// `namespace`: the Service's namespace; `None` (the seed's kinds, which name none)
    /// takes the first Service of that name.
    #[allow(clippy::too_many_arguments)]
    pub fn backend(
        &mut self,
        at: &Location,
        field: &str,
        name_field: &str,
        service: &str,
        namespace: Option<&str>,
        port: Option<&PortRef>,
        weight: u32,
        port_field: &str,
    ) -> Option<fc::Backend> {
        if let Some(def) = self.mcs.get(service).cloned() {
            return self.mcs_backend(at, field, service, &def, port, weight, port_field);
        }
        let Some(svc) = self.inputs.services.iter().find(|s| {
            s.value.metadata.name == service
                && namespace
                    .is_none_or(|ns| namespace_of(s.value.metadata.namespace.as_deref()) == ns)
        }) else {
            self.fail(
                at,
                format!("{field}.{name_field}"),
                ErrorKind::UnknownService(service.to_string()),
            );
            return None;
        };
        let port_number =
            self.service_port(at, field, port_field, service, &svc.value.spec.ports, port)?;
        let ns = namespace_of(svc.value.metadata.namespace.as_deref()).to_string();
        // An inventory names a Service `namespace/name`, or just `name`.
        let qualified = format!("{ns}/{service}");
        let mut endpoints: Vec<String> = self
            .inventory_clusters()
            .filter_map(|c| {
                c.services
                    .get(&qualified)
                    .or_else(|| c.services.get(service))?
                    .get(&port_number)
            })
            .flatten()
            .cloned()
            .collect();
        if let Some(sp) = svc.value.spec.ports.iter().find(|p| p.port == port_number) {
            for ep in self.slice_endpoints(&ns, service, sp) {
                if !endpoints.contains(&ep) {
                    endpoints.push(ep);
                }
            }
        }
        if endpoints.is_empty() {
            self.fail(
                at,
                format!("{field}.{port_field}"),
                ErrorKind::NoEndpoints {
                    service: service.to_string(),
                    port: port_number,
                },
            );
            return None;
        }
        let cluster = self.service_cluster(&ns, service, port_number);
        self.clusters.insert(cluster.clone(), endpoints);
        self.cluster_namespaces.insert(cluster.clone(), ns);
        Some(fc::Backend {
            service: service.to_string(),
            port: Some(port_number),
            weight,
            cluster: Some(cluster),
            request_headers: None,
            response_headers: None,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn mcs_backend(
        &mut self,
        at: &Location,
        field: &str,
        name: &str,
        def: &McsDef,
        port: Option<&PortRef>,
        weight: u32,
        port_field: &str,
    ) -> Option<fc::Backend> {
        let port_number = self.service_port(at, field, port_field, name, &def.ports, port)?;
        if let Some(used) = self.used_mcs.get(name) {
            let used_port = used
                .members
                .first()
                .map(|m| m.cluster.clone())
                .unwrap_or_default();
            if !used_port.starts_with(&format!("{name}_{port_number}.")) {
                self.fail(
                    at,
                    format!("{field}.{port_field}"),
                    ErrorKind::SecondServicePort(name.to_string()),
                );
                return None;
            }
        } else {
            let mut members = Vec::new();
            for c in self.inventory_clusters() {
                let selected = def.selectors.is_empty()
                    || def
                        .selectors
                        .iter()
                        .any(|sel| sel.iter().all(|(k, v)| c.labels.get(k) == Some(v)));
                let Some(endpoints) = c.services.get(name).and_then(|p| p.get(&port_number)) else {
                    continue;
                };
                if !selected || endpoints.is_empty() {
                    continue;
                }
                let cluster = format!(
                    "{}.{}",
                    default_cluster_name(name, Some(port_number)),
                    c.name
                );
                self.clusters.insert(cluster.clone(), endpoints.clone());
                members.push(fc::Member {
                    name: c.name.clone(),
                    cluster,
                    failover_cluster: None,
                    weight: 1,
                    labels: c.labels.clone(),
                });
            }
            if members.is_empty() {
                self.fail(
                    at,
                    format!("{field}.{port_field}"),
                    ErrorKind::NoMembers {
                        service: name.to_string(),
                        port: port_number,
                    },
                );
                return None;
            }
            // With more than one member, requests go through a failover cluster per member
            // (Envoy's retries move on to another member); see `ha`.
            if members.len() > 1 {
                for m in &mut members {
                    m.failover_cluster = Some(crate::ha::failover_cluster_name(&m.cluster));
                }
            }
            let mut svc = fc::MultiClusterService {
                members,
                health: Some(crate::ha::default_health(def.health_path.as_deref())),
                ..Default::default()
            };
            let inputs = self.inputs;
            if let Some(dr) = self
                .policies
                .get(name)
                .and_then(|&i| inputs.destination_rules.get(i))
            {
                let policy = crate::policy::apply(&dr.value, &dr.at, &mut svc, &mut self.errors);
                if !policy.is_empty() {
                    for m in &svc.members {
                        self.cluster_policy
                            .insert(m.cluster.clone(), policy.clone());
                    }
                }
            }
            self.used_mcs.insert(name.to_string(), svc);
        }
        Some(fc::Backend {
            service: name.to_string(),
            port: Some(port_number),
            weight,
            cluster: None,
            request_headers: None,
            response_headers: None,
        })
    }
}
