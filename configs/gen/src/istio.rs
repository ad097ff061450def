//! Istio output: a WasmPlugin per filter (its configuration rewritten to Istio's cluster
//! names), a ServiceEntry per member cluster of each multi-cluster service so the mesh can
//! reach it, and an EnvoyFilter that points the gateway's routes at the router's header.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use wasmgate_core::config::{BalancerConfig, RouterConfig};

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

/// Our Envoy cluster name -> Istio's, for every cluster the configs use.
fn cluster_names(
    router: &RouterConfig,
    balancer: Option<&BalancerConfig>,
    o: &IstioOptions,
) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for r in &router.routes {
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
                let host = format!("{}.{}.svc.cluster.local", b.service, o.service_namespace);
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

/// The manifests, in apply order.
pub fn manifests(
    router: &RouterConfig,
    balancer: Option<&BalancerConfig>,
    endpoints: &Endpoints,
    o: &IstioOptions,
) -> Vec<Value> {
    let names = cluster_names(router, balancer, o);
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
            let endpoints: Vec<Value> = eps
                .iter()
                .map(|ep| {
                    let (addr, target) = ep.rsplit_once(':').unwrap_or((ep, "80"));
                    json!({"address": addr, "ports": {"http": target.parse::<u16>().unwrap_or(80)}, "labels": m.labels})
                })
                .collect();
            docs.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": {"name": format!("wasmgate-{svc}-{}", m.name), "namespace": o.namespace},
                "spec": {
                    "hosts": [member_host(svc, &m.name)],
                    "location": "MESH_EXTERNAL",
                    "resolution": "STATIC",
                    "ports": [{"number": port, "name": "http", "protocol": "HTTP"}],
                    "endpoints": endpoints
                }
            }));
        }
    }
    let mut router_config = serde_json::to_value(router).unwrap_or_default();
    rename(&mut router_config, &names);
    let plugin = |name: &str, module: &str, root: &str, priority: u32, config: Value| {
        json!({
            "apiVersion": "extensions.istio.io/v1alpha1",
            "kind": "WasmPlugin",
            "metadata": {"name": name, "namespace": o.namespace},
            "spec": {
                "selector": {"matchLabels": o.selector},
                "url": format!("{}/{module}", o.wasm_url_base.trim_end_matches('/')),
                "pluginName": root,
                "phase": "UNSPECIFIED_PHASE",
                // Higher priority runs first: the router, then the balancer.
                "priority": priority,
                "failStrategy": "FAIL_CLOSE",
                "pluginConfig": config
            }
        })
    };
    docs.push(plugin(
        "wasmgate-router",
        "wasmgate_router.wasm",
        "wasmgate.router",
        20,
        router_config,
    ));
    if let Some(b) = balancer {
        let mut config = serde_json::to_value(b).unwrap_or_default();
        rename(&mut config, &names);
        docs.push(plugin(
            "wasmgate-balancer",
            "wasmgate_balancer.wasm",
            "wasmgate.balancer",
            10,
            config,
        ));
    }
    docs.push(json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": "wasmgate-cluster-header", "namespace": o.namespace},
        "spec": {
            "workloadSelector": {"labels": o.selector},
            "configPatches": [{
                "applyTo": "HTTP_ROUTE",
                "match": {"context": "GATEWAY"},
                "patch": {"operation": "MERGE", "value": {"route": {"cluster_header": router.cluster_header}}}
            }]
        }
    }));
    docs
}
