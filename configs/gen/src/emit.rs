//! Turns the inputs into everything a proxy needs: the filters' JSON, an Envoy bootstrap, the
//! native Envoy equivalent, and Istio manifests. Every error of a run is collected; nothing
//! is produced unless everything is valid.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use wasmgate_core::config::{self as fc, BalancerConfig, RouterConfig, ServiceKey};

use crate::envoy::{self, Layout, NativeGap};
use crate::error::{ErrorKind, Errors, GenError, Location};
use crate::gateway_filters;
use crate::istio::{self, IstioOptions};
use crate::load::Inputs;
use crate::resolve::Ctx;
use crate::routes;

/// Where the generated config expects things to be.
#[derive(Debug, Clone)]
pub struct Options {
    pub router_wasm: PathBuf,
    pub balancer_wasm: PathBuf,
    pub listen_address: String,
    /// The HTTP listener when no Gateway declares one.
    pub http_port: u16,
    pub admin_port: u16,
    /// Declared listener port -> port actually bound (to run a config on free local ports).
    pub port_map: BTreeMap<u16, u16>,
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
            listen_address: "127.0.0.1".into(),
            http_port: 10000,
            admin_port: 9901,
            port_map: BTreeMap::new(),
            region: None,
            zone: None,
            access_log: "/dev/stdout".into(),
            istio: IstioOptions::default(),
        }
    }
}

/// Everything the generator writes.
#[derive(Debug, Clone)]
pub struct Output {
    pub router: RouterConfig,
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
    pub fn files(&self) -> Result<Vec<(&'static str, String)>, serde_json::Error> {
        let yaml = |v: &Value| serde_yaml_ng::to_string(v).map_err(serde::ser::Error::custom);
        let mut files = vec![(
            "router.json",
            serde_json::to_string_pretty(&self.router)? + "\n",
        )];
        if let Some(b) = &self.balancer {
            files.push(("balancer.json", serde_json::to_string_pretty(b)? + "\n"));
        }
        files.push(("envoy.yaml", yaml(&self.envoy)?));
        files.push(("envoy-native.yaml", yaml(&self.envoy_native)?));
        let mut istio = String::new();
        for doc in &self.istio {
            istio.push_str("---\n");
            istio.push_str(&yaml(doc)?);
        }
        files.push(("istio.yaml", istio));
        Ok(files)
    }
}

/// HTTP listener ports: every HTTP listener of every Gateway, else `opts.http_port`.
fn http_ports(cx: &mut Ctx<'_>, opts: &Options, tcp_ports: &[u16]) -> Vec<u16> {
    let mut ports = Vec::new();
    let inputs = cx.inputs;
    for gw in &inputs.gateways {
        for (li, l) in gw.value.spec.listeners.iter().enumerate() {
            let field = format!("spec.listeners[{li}]");
            let port = opts.port_map.get(&l.port).copied().unwrap_or(l.port);
            match l.protocol.as_str() {
                "HTTP" => {
                    if !ports.contains(&port) {
                        ports.push(port);
                    }
                }
                "TCP" if tcp_ports.contains(&port) => {}
                "TCP" => cx.fail(
                    &gw.at,
                    format!("{field}.port"),
                    ErrorKind::Invalid(format!(
                        "no VirtualHost tcp route for TCP listener port {}",
                        l.port
                    )),
                ),
                p => cx.fail(
                    &gw.at,
                    format!("{field}.protocol"),
                    ErrorKind::Invalid(format!(
                        "protocol {p} is not supported: wasmgate listens for HTTP and TCP"
                    )),
                ),
            }
        }
    }
    if ports.is_empty() {
        ports.push(opts.http_port);
    }
    ports
}

/// Generates every output, or reports every error found.
pub fn generate(inputs: &Inputs, opts: &Options) -> Result<Output, Errors> {
    let mut cx = Ctx::new(inputs);
    let set = routes::collect(&mut cx, &opts.port_map);
    let tcp_ports: Vec<u16> = set.tcp_ports().map(|(p, _)| *p).collect();
    let tcp_mcs: BTreeMap<u16, String> = set
        .tcp_ports()
        .filter_map(|(p, t)| {
            let b = t.rules.first()?.backend.as_ref()?;
            b.cluster.is_none().then(|| (*p, b.service.clone()))
        })
        .collect();
    let ports = http_ports(&mut cx, opts, &tcp_ports);
    let services = std::mem::take(&mut cx.used_mcs);
    let router = RouterConfig {
        cluster_header: fc::DEFAULT_CLUSTER_HEADER.into(),
        service_header: fc::DEFAULT_SERVICE_HEADER.into(),
        policy_header: fc::DEFAULT_POLICY_HEADER.into(),
        // Redirects name the port the user declared, not the one Envoy was moved to.
        listener_ports: opts
            .port_map
            .iter()
            .filter(|(from, to)| from != to && ports.contains(to))
            .map(|(from, to)| (*to, *from))
            .collect(),
        no_match: fc::NoMatch::NotFound,
        clear_route_cache: false,
        routes: set.into_routes(),
        multi_cluster_services: services.clone(),
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
        if let Err(e) = wasmgate_core::RouteTable::compile(&router) {
            cx.errors.push(GenError {
                at: Location::default(),
                kind: ErrorKind::FilterConfig(format!("router: {e}")),
            });
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
        http_ports: ports,
        router_wasm: &opts.router_wasm,
        balancer_wasm: &opts.balancer_wasm,
        access_log: &opts.access_log,
        region: opts.region.as_deref(),
        zone: opts.zone.as_deref(),
    };
    let mut envoy = envoy::bootstrap(
        &router,
        balancer.as_ref(),
        &cx.clusters,
        &health_paths,
        &cx.cluster_policy,
        &layout,
    );
    gateway_filters::add_policy_routes(&mut envoy, &cx.rule_policies, &router.policy_header);
    let (envoy_native, native_gaps) =
        envoy::native_bootstrap(&router, balancer.as_ref(), &cx.clusters, &layout);
    let istio = istio::manifests(&router, balancer.as_ref(), &cx.clusters, &opts.istio);
    Ok(Output {
        router,
        balancer,
        envoy,
        envoy_native,
        native_gaps,
        istio,
    })
}
