//! Turns the inputs into everything a proxy needs: the filters' JSON, an Envoy bootstrap, the
//! native Envoy equivalent, and Istio manifests. Every error of a run is collected; nothing
//! is produced unless everything is valid.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use wasmgate_core::config::{self as fc, BalancerConfig, RouterConfig, ServiceKey};

use crate::envoy_bootstrap::{self, Layout, NativeGap};
use crate::error::{ErrorKind, Errors, GenError, Location};
use crate::gateway_filters;
use crate::istio::{self, IstioOptions};
use crate::listeners::{http_listener_sets, PortMap};
use crate::load::Inputs;
use crate::resolve::Ctx;
use crate::router_rules;
use crate::status::{GatewayStatus, RouteStatus};

/// Where the generated config expects things to be.
#[derive(Debug, Clone)]
pub struct Options {
    pub router_wasm: PathBuf,
    pub balancer_wasm: PathBuf,
    /// Set: a listener with multi-cluster services runs this one module (router and balancer
    /// in one Wasm filter, `filters/combined`) instead of the two.
    pub combined_wasm: Option<PathBuf>,
    pub listen_address: String,
    /// The HTTP listener when no Gateway declares one.
    pub http_port: u16,
    pub admin_port: u16,
    /// Declared listener port -> port actually bound (to run a config on free local ports).
    pub port_map: BTreeMap<u16, u16>,
    /// Like `port_map`, for one Gateway's listeners: `(gateway name, declared) -> actual`.
    pub gateway_port_map: BTreeMap<(String, u16), u16>,
    /// Refuse the whole input on a fault Gateway API scopes to a route (status otherwise).
    pub strict: bool,
    /// The proxy's own region and zone, for the balancer's locality preference.
    pub region: Option<String>,
    pub zone: Option<String>,
    /// Where Envoy writes its access log.
    pub access_log: String,
    pub istio: IstioOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            router_wasm: PathBuf::from("target/wasm32-wasip1/release/wasmgate_router.wasm"),
            balancer_wasm: PathBuf::from("target/wasm32-wasip1/release/wasmgate_balancer.wasm"),
            combined_wasm: None,
            listen_address: "127.0.0.1".into(),
            http_port: 10000,
            admin_port: 9901,
            port_map: BTreeMap::new(),
            gateway_port_map: BTreeMap::new(),
            strict: false,
            region: None,
            zone: None,
            access_log: "/dev/stdout".into(),
            istio: IstioOptions::default(),
        }
    }
}

/// One Envoy HTTP listener and the router config it runs.
#[derive(Debug, Clone)]
pub struct ListenerOutput {
    /// The Envoy listener's name.
    pub name: String,
    /// `namespace/name` of its Gateway; empty for the default listener.
    pub gateway: String,
    pub declared_port: u16,
    pub port: u16,
    pub router: RouterConfig,
}

/// Everything the generator writes.
#[derive(Debug, Clone)]
pub struct Output {
    /// The router config of the first HTTP listener (the only one without Gateways).
    pub router: RouterConfig,
    /// Every HTTP listener, each with its own routes.
    pub listeners: Vec<ListenerOutput>,
    /// What was made of each HTTPRoute (Gateway API route status).
    pub status: Vec<RouteStatus>,
    /// What was made of each Gateway and its listeners (Gateway API Gateway status).
    pub gateways: Vec<GatewayStatus>,
    /// Documents read and left aside.
    pub notes: Vec<String>,
    /// Present when some backend is a multi-cluster service.
    pub balancer: Option<BalancerConfig>,
    pub envoy: Value,
    pub envoy_native: Value,
    /// Rules the native config leaves out, and why.
    pub native_gaps: Vec<NativeGap>,
    pub istio: Vec<Value>,
}

impl Output {
    /// File name -> contents, in a stable order.
    pub fn files(&self) -> Result<Vec<(String, String)>, serde_json::Error> {
        let yaml = |v: &Value| serde_yaml_ng::to_string(v).map_err(serde::ser::Error::custom);
        let mut files = vec![(
            "router.json".to_string(),
            serde_json::to_string_pretty(&self.router)? + "\n",
        )];
        if self.listeners.len() > 1 {
            for l in &self.listeners {
                files.push((
                    format!("router-{}.json", l.name),
                    serde_json::to_string_pretty(&l.router)? + "\n",
                ));
            }
        }
        if let Some(b) = &self.balancer {
            files.push((
                "balancer.json".into(),
                serde_json::to_string_pretty(b)? + "\n",
            ));
        }
        files.push(("envoy.yaml".into(), yaml(&self.envoy)?));
        files.push(("envoy-native.yaml".into(), yaml(&self.envoy_native)?));
        let mut istio = String::new();
        for doc in &self.istio {
            istio.push_str("---\n");
            istio.push_str(&yaml(doc)?);
        }
        files.push(("istio.yaml".into(), istio));
        if !self.status.is_empty() || !self.gateways.is_empty() {
            let mut status = String::new();
            for g in &self.gateways {
                status.push_str("---\n");
                status.push_str(&yaml(&g.to_document())?);
            }
            for r in &self.status {
                status.push_str("---\n");
                status.push_str(&yaml(&r.to_document())?);
            }
            files.push(("status.yaml".into(), status));
        }
        Ok(files)
    }
}

/// Generates every output, or reports every error found.
pub fn generate(inputs: &Inputs, opts: &Options) -> Result<Output, Errors> {
    let mut cx = Ctx::new(inputs);
    cx.strict = opts.strict;
    let set = router_rules::collect_seed(&mut cx, &opts.port_map);
    let tcp_ports: Vec<u16> = set.tcp_ports().map(|(p, _)| *p).collect();
    let tcp_mcs: BTreeMap<u16, String> = set
        .tcp_ports()
        .filter_map(|(p, t)| {
            let b = t.rules.first()?.backend.as_ref()?;
            b.cluster.is_none().then(|| (*p, b.service.clone()))
        })
        .collect();
    let port_map = PortMap {
        any: &opts.port_map,
        by_gateway: &opts.gateway_port_map,
    };
    let mut sets = http_listener_sets(&mut cx, &port_map, opts.http_port, &tcp_ports);
    let status = router_rules::collect_http_routes(&mut cx, &mut sets);
    let services = std::mem::take(&mut cx.used_mcs);
    // The seed's routes are served on every listener, after its own; TCP routes ride along
    // in every router config (the TCP root reads them by port).
    let seed_routes = set.into_routes();
    let listeners: Vec<ListenerOutput> = sets
        .iter_mut()
        .map(|s| {
            let mut routes = s.router_routes();
            routes.extend(seed_routes.iter().cloned());
            ListenerOutput {
                name: s.name.clone(),
                gateway: s.gateway.clone(),
                declared_port: s.declared_port,
                port: s.port,
                router: RouterConfig {
                    cluster_header: fc::DEFAULT_CLUSTER_HEADER.into(),
                    service_header: fc::DEFAULT_SERVICE_HEADER.into(),
                    policy_header: fc::DEFAULT_POLICY_HEADER.into(),
                    // Redirects name the port the user declared, not the one Envoy was
                    // moved to.
                    listener_ports: (s.port != s.declared_port)
                        .then_some((s.port, s.declared_port))
                        .into_iter()
                        .collect(),
                    no_match: fc::NoMatch::NotFound,
                    clear_route_cache: false,
                    routes,
                    multi_cluster_services: services.clone(),
                },
            }
        })
        .collect();
    let Some(router) = listeners.first().map(|l| l.router.clone()) else {
        // http_listener_sets always yields at least the default listener.
        return Err(Errors(cx.errors));
    };
    let balancer = (!services.is_empty()).then(|| BalancerConfig {
        cluster_header: fc::DEFAULT_CLUSTER_HEADER.into(),
        service_from: ServiceKey::Router(fc::DEFAULT_SERVICE_HEADER.into()),
        services: services.clone(),
        tcp_ports: tcp_mcs,
        locality: (opts.region.is_some() || opts.zone.is_some()).then(|| fc::ProxyLocality {
            region: opts.region.clone(),
            zone: opts.zone.clone(),
        }),
        shared_prefix: "wasmgate.mc".into(),
    });
    if cx.errors.is_empty() {
        // The filters must accept what we write: compile it exactly as they will.
        for l in &listeners {
            if let Err(e) = wasmgate_core::RouteTable::compile(&l.router) {
                let which = if listeners.len() > 1 {
                    format!("router of listener {}", l.name)
                } else {
                    "router".to_string()
                };
                cx.errors.push(GenError {
                    at: Location::default(),
                    kind: ErrorKind::FilterConfig(format!("{which}: {e}")),
                });
            }
        }
        if let Some(b) = &balancer {
            if let Err(e) = wasmgate_core::multicluster::Balancer::compile(b) {
                cx.errors.push(GenError {
                    at: Location::default(),
                    kind: ErrorKind::FilterConfig(format!("balancer: {e}")),
                });
            }
        }
    }
    if !cx.errors.is_empty() {
        return Err(Errors(cx.errors));
    }
    // Envoy probes the endpoints inside each member cluster of a service with a health path.
    let health_paths: BTreeMap<String, String> = services
        .values()
        .filter_map(|s| Some((s, s.health.as_ref()?.active.as_ref()?.path.clone())))
        .flat_map(|(s, path)| {
            s.members
                .iter()
                .map(move |m| (m.cluster.clone(), path.clone()))
        })
        .collect();
    let layout = Layout {
        address: &opts.listen_address,
        admin_port: opts.admin_port,
        http: listeners
            .iter()
            .map(|l| (l.name.as_str(), l.port, &l.router))
            .collect(),
        router_wasm: &opts.router_wasm,
        balancer_wasm: &opts.balancer_wasm,
        combined_wasm: opts.combined_wasm.as_deref(),
        access_log: &opts.access_log,
        region: opts.region.as_deref(),
        zone: opts.zone.as_deref(),
    };
    let mut envoy = envoy_bootstrap::bootstrap(
        &router,
        balancer.as_ref(),
        &cx.clusters,
        &health_paths,
        &cx.cluster_policy,
        &layout,
    );
    gateway_filters::add_policy_routes(&mut envoy, &cx.rule_policies, &router.policy_header);
    crate::buckets::add_clusters(&mut envoy, &cx.buckets);
    let (envoy_native, native_gaps) =
        envoy_bootstrap::native_bootstrap(balancer.as_ref(), &cx.clusters, &layout);
    let mut istio = istio::manifests(
        &listeners,
        balancer.as_ref(),
        &cx.clusters,
        &cx.cluster_namespaces,
        &opts.istio,
    );
    crate::buckets::add_istio(&mut istio, &cx.buckets, &opts.istio);
    Ok(Output {
        router,
        listeners,
        status,
        gateways: std::mem::take(&mut cx.gateway_status),
        notes: inputs.notes.clone(),
        balancer,
        envoy,
        envoy_native,
        native_gaps,
        istio,
    })
}
