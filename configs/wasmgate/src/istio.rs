//! Istio output: a WasmPlugin per filter (its configuration rewritten to Istio's cluster
//! names), a ServiceEntry per member cluster of each multi-cluster service so the mesh can
//! reach it, and an EnvoyFilter that points the gateway's routes at the router's header.
//!
//! Each Gateway listener routes only its own routes, so with several HTTP listeners the
//! router gets one WasmPlugin per listener, narrowed to that listener by WasmPlugin's
//! traffic selector (`match: [{mode: CLIENT, ports: [PORT]}]`; Istio selects a gateway's
//! listeners with `CLIENT`). Two Gateways that declare one port cannot be told apart by port
//! on the same workloads; their plugins name their Gateway in `targetRefs` instead of the
//! workload selector (Istio allows one or the other, and only a Gateway of the plugin's own
//! namespace).

use std::collections::BTreeMap;

use serde_json::Value;
use wasmgate_core::config::{BalancerConfig, RouterConfig};

use crate::emit::ListenerOutput;
use crate::envoy_api as api_envoy;
use crate::istio_api as api;
use crate::resolve::Endpoints;

/// Where the Istio manifests point.
#[derive(Debug, Clone)]
pub struct IstioOptions {
    pub namespace: String,
    /// Labels of the gateway workloads the plugins attach to.
    pub selector: BTreeMap<String, String>,
    /// Base of the module URLs (`oci://...`, `https://...` or `file:///...`).
    pub wasm_url_base: String,
    /// Namespace of the Kubernetes Services plain backends name.
    pub service_namespace: String,
}

impl Default for IstioOptions {
    fn default() -> Self {
        IstioOptions {
            namespace: "istio-system".into(),
            selector: BTreeMap::from([("istio".to_string(), "ingressgateway".to_string())]),
            wasm_url_base: "file:///var/local/wasmgate".into(),
            service_namespace: "default".into(),
        }
    }
}

/// The host a ServiceEntry gives one member cluster of a multi-cluster service.
fn member_host(service: &str, member: &str) -> String {
    format!("{service}.{member}.wasmgate.internal")
}

/// Istio names a cluster `outbound|PORT||HOST`.
fn istio_cluster(port: u16, host: &str) -> String {
    format!("outbound|{port}||{host}")
}

/// Our Envoy cluster name -> Istio's, for every cluster the configs use. `namespaces` gives
/// the namespace of the Service behind a cluster (`service_namespace` when absent).
fn cluster_names(
    routers: &[&RouterConfig],
    balancer: Option<&BalancerConfig>,
    namespaces: &BTreeMap<String, String>,
    o: &IstioOptions,
) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for r in routers.iter().flat_map(|r| &r.routes) {
        let backends = r
            .http
            .iter()
            .flat_map(|h| &h.rules)
            .flat_map(|rule| rule.backend.iter().chain(&rule.backends))
            .chain(
                r.tcp
                    .iter()
                    .flat_map(|t| &t.rules)
                    .flat_map(|rule| rule.backend.iter().chain(&rule.backends)),
            );
        for b in backends {
            if let (Some(c), Some(port)) = (&b.cluster, b.port) {
                let ns = namespaces.get(c).unwrap_or(&o.service_namespace);
                let host = format!("{}.{ns}.svc.cluster.local", b.service);
                map.insert(c.clone(), istio_cluster(port, &host));
            }
        }
    }
    for (svc, def) in balancer.map(|b| &b.services).into_iter().flatten() {
        for m in &def.members {
            let port = m
                .cluster
                .strip_prefix(&format!("{svc}_"))
                .and_then(|rest| rest.split('.').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(80);
            map.insert(
                m.cluster.clone(),
                istio_cluster(port, &member_host(svc, &m.name)),
            );
        }
    }
    map
}

fn rename(value: &mut Value, names: &BTreeMap<String, String>) {
    match value {
        Value::Object(o) => {
            // The failover clusters are Envoy aggregate clusters of our bootstrap; Istio has
            // none, so requests go to the member's own cluster (Istio retries stay in it).
            o.remove("failoverCluster");
            for (k, v) in o.iter_mut() {
                match (k.as_str(), v.as_str().and_then(|s| names.get(s))) {
                    ("cluster", Some(new)) => *v = Value::String(new.clone()),
                    _ => rename(v, names),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| rename(v, names)),
        _ => {}
    }
}

/// A Kubernetes object name from an Envoy listener name (`http_8080` -> `http-8080`).
fn object_name(listener: &str) -> String {
    listener
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect()
}

/// Where one router WasmPlugin applies: the whole selected workload with one listener;
/// otherwise its listener's port, and its Gateway when another Gateway declares that port.
fn router_target(
    l: &ListenerOutput,
    all: &[ListenerOutput],
    o: &IstioOptions,
) -> (String, api::PluginTarget) {
    let workloads = || {
        Some(api::LabelSelector {
            match_labels: o.selector.clone(),
        })
    };
    let mut target = api::PluginTarget::default();
    if all.len() <= 1 {
        target.selector = workloads();
        return (o.namespace.clone(), target);
    }
    let shared_port = all
        .iter()
        .any(|other| other.name != l.name && other.declared_port == l.declared_port);
    let namespace = match l.gateway.split_once('/') {
        Some((ns, name)) if shared_port => {
            target.target_refs = Some(vec![api::TargetRef {
                group: "gateway.networking.k8s.io",
                kind: "Gateway",
                name: name.to_string(),
            }]);
            ns.to_string()
        }
        _ => {
            target.selector = workloads();
            o.namespace.clone()
        }
    };
    target.traffic = Some(vec![api::TrafficSelector {
        mode: "CLIENT",
        ports: vec![api::PortSelector {
            number: l.declared_port,
        }],
    }]);
    (namespace, target)
}

/// The manifests, in apply order. `namespaces`: the namespace of the Service behind each
/// Envoy cluster of a plain backend.
pub fn manifests(
    listeners: &[ListenerOutput],
    balancer: Option<&BalancerConfig>,
    endpoints: &Endpoints,
    namespaces: &BTreeMap<String, String>,
    o: &IstioOptions,
) -> Vec<Value> {
    let routers: Vec<&RouterConfig> = listeners.iter().map(|l| &l.router).collect();
    let names = cluster_names(&routers, balancer, namespaces, o);
    let mut docs = Vec::new();
    for (svc, def) in balancer.map(|b| &b.services).into_iter().flatten() {
        for m in &def.members {
            let Some(eps) = endpoints.get(&m.cluster) else {
                continue;
            };
            let port: u16 = names
                .get(&m.cluster)
                .and_then(|n| n.split('|').nth(1))
                .and_then(|p| p.parse().ok())
                .unwrap_or(80);
            let endpoints = eps
                .iter()
                .map(|ep| {
                    let (addr, target) = ep.rsplit_once(':').unwrap_or((ep, "80"));
                    let port = target.parse::<u16>().unwrap_or(80);
                    api::WorkloadEntry {
                        address: addr.to_string(),
                        ports: Some(BTreeMap::from([("http".to_string(), port)])),
                        labels: Some(m.labels.clone()),
                    }
                })
                .collect();
            let entry = api::ServiceEntry {
                hosts: vec![member_host(svc, &m.name)],
                location: "MESH_EXTERNAL",
                resolution: "STATIC",
                ports: vec![api::http_port(port)],
                endpoints: Some(endpoints),
            };
            let name = format!("wasmgate-{svc}-{}", m.name);
            docs.push(api::manifest(name, &o.namespace, entry));
        }
    }
    let url = |module: &str| format!("{}/{module}", o.wasm_url_base.trim_end_matches('/'));
    let plugin = |name: &str,
                  namespace: &str,
                  target: api::PluginTarget,
                  module: &str,
                  root: &str,
                  priority: u32,
                  config: Value| {
        let spec = api::WasmPlugin {
            target,
            url: url(module),
            plugin_name: root.into(),
            phase: "UNSPECIFIED_PHASE",
            // Higher priority runs first: the router, then the balancer.
            priority,
            fail_strategy: "FAIL_CLOSE",
            plugin_config: config,
        };
        api::manifest(name, namespace, spec)
    };
    // The balancer runs wherever a router does (it trusts the router's service header).
    let mut balancer_targets: Vec<(String, api::PluginTarget)> = Vec::new();
    for l in listeners {
        let mut router_config = serde_json::to_value(&l.router).unwrap_or_default();
        rename(&mut router_config, &names);
        let name = if listeners.len() > 1 {
            format!("wasmgate-router-{}", object_name(&l.name))
        } else {
            "wasmgate-router".to_string()
        };
        let (namespace, target) = router_target(l, listeners, o);
        let mut workload = target.clone();
        workload.traffic = None;
        if !balancer_targets.contains(&(namespace.clone(), workload.clone())) {
            balancer_targets.push((namespace.clone(), workload));
        }
        docs.push(plugin(
            &name,
            &namespace,
            target,
            "wasmgate_router.wasm",
            "wasmgate.router",
            20,
            router_config,
        ));
    }
    if let Some(b) = balancer {
        let mut config = serde_json::to_value(b).unwrap_or_default();
        rename(&mut config, &names);
        let several = balancer_targets.len() > 1;
        for (namespace, target) in balancer_targets {
            let gateway = target
                .target_refs
                .as_ref()
                .and_then(|t| t.first())
                .map(|r| r.name.as_str());
            let name = match gateway {
                Some(gw) if several => format!("wasmgate-balancer-{}", object_name(gw)),
                _ => "wasmgate-balancer".to_string(),
            };
            docs.push(plugin(
                &name,
                &namespace,
                target,
                "wasmgate_balancer.wasm",
                "wasmgate.balancer",
                10,
                config.clone(),
            ));
        }
    }
    let cluster_header = listeners
        .first()
        .map(|l| l.router.cluster_header.clone())
        .unwrap_or_default();
    // Istio's routes go to the cluster the filters chose.
    let route = api_envoy::value(api_envoy::RouteEntry {
        route: Some(api_envoy::RouteAction {
            cluster_header: Some(cluster_header),
            ..Default::default()
        }),
        ..Default::default()
    });
    let filter = api::EnvoyFilter {
        workload_selector: api::WorkloadSelector {
            labels: o.selector.clone(),
        },
        config_patches: vec![api::merge_patch("HTTP_ROUTE", None, route)],
    };
    docs.push(api::manifest(
        "wasmgate-cluster-header",
        &o.namespace,
        filter,
    ));
    docs
}
