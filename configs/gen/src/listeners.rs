//! The HTTP listeners to generate. Gateway API gives each Gateway listener its own routes:
//! the listeners of one Gateway that share a port become one Envoy listener whose router
//! config keeps their routes apart by listener hostname; each Gateway (and each port) gets
//! its own Envoy listener and router config.

use std::collections::BTreeMap;

use wasmgate_core::config as fc;

use crate::error::ErrorKind;
use crate::resolve::Ctx;
use crate::routes::RouteSet;

/// `namespace/name` of an object; `default` when the manifest names no namespace.
pub fn namespace_of(ns: Option<&str>) -> &str {
    ns.filter(|n| !n.is_empty()).unwrap_or("default")
}

/// One Gateway listener that routes HTTP.
#[derive(Debug, Clone)]
pub struct GatewayListener {
    pub name: String,
    /// Lower-cased; `None` serves any host.
    pub hostname: Option<String>,
    /// Index into the input's Gateways, and of the listener in it.
    pub gateway: usize,
    pub index: usize,
}

/// One Envoy HTTP listener: a Gateway's listeners on one port (or, without Gateways, the
/// default listener), with the routes attached to them.
#[derive(Default)]
pub struct HttpListenerSet {
    /// The Envoy listener's name.
    pub name: String,
    /// `namespace/name` of the Gateway; empty for the default listener.
    pub gateway: String,
    pub declared_port: u16,
    pub port: u16,
    pub listeners: Vec<GatewayListener>,
    /// The routes attached to each listener (one set for the default listener).
    pub routes: Vec<RouteSet>,
}

/// Where the Gateway listeners of the input listen: `declared port -> actual` for all
/// Gateways, and `(gateway name, declared port) -> actual` for one.
#[derive(Debug, Clone)]
pub struct PortMap<'a> {
    pub any: &'a BTreeMap<u16, u16>,
    pub by_gateway: &'a BTreeMap<(String, u16), u16>,
}

/// The HTTP listener sets of the input, in Gateway order. Listeners of other protocols are
/// checked (TCP needs a matching tcp route; anything else is refused).
pub fn http_listener_sets(
    cx: &mut Ctx<'_>,
    ports: &PortMap<'_>,
    default_port: u16,
    tcp_ports: &[u16],
) -> Vec<HttpListenerSet> {
    let inputs = cx.inputs;
    let mut sets: Vec<HttpListenerSet> = Vec::new();
    for (gi, gw) in inputs.gateways.iter().enumerate() {
        let meta = &gw.value.metadata;
        let id = format!("{}/{}", namespace_of(meta.namespace.as_deref()), meta.name);
        for (li, l) in gw.value.spec.listeners.iter().enumerate() {
            let field = format!("spec.listeners[{li}]");
            let port = ports
                .by_gateway
                .get(&(meta.name.clone(), l.port))
                .or_else(|| ports.any.get(&l.port))
                .copied()
                .unwrap_or(l.port);
            match l.protocol.as_str() {
                "HTTP" => {}
                "TCP" if tcp_ports.contains(&port) => continue,
                "TCP" => {
                    cx.fail(
                        &gw.at,
                        format!("{field}.port"),
                        ErrorKind::Invalid(format!(
                            "no VirtualHost tcp route for TCP listener port {}",
                            l.port
                        )),
                    );
                    continue;
                }
                p => {
                    cx.fail(
                        &gw.at,
                        format!("{field}.protocol"),
                        ErrorKind::Invalid(format!(
                            "protocol {p} is not supported: wasmgate listens for HTTP and TCP"
                        )),
                    );
                    continue;
                }
            }
            let hostname = l.hostname.as_ref().map(|h| h.to_ascii_lowercase());
            let listener = GatewayListener {
                name: l.name.clone(),
                hostname: hostname.clone(),
                gateway: gi,
                index: li,
            };
            if let Some(set) = sets
                .iter_mut()
                .find(|s| s.gateway == id && s.declared_port == l.port)
            {
                if let Some(twin) = set.listeners.iter().find(|o| o.hostname == hostname) {
                    // Gateway API: such listeners conflict; the first keeps the port.
                    cx.fail(
                        &gw.at,
                        format!("{field}.hostname"),
                        ErrorKind::Invalid(format!(
                            "listener {:?} has the port and hostname of listener {:?}",
                            l.name, twin.name
                        )),
                    );
                    continue;
                }
                set.listeners.push(listener);
                set.routes.push(RouteSet::default());
                continue;
            }
            sets.push(HttpListenerSet {
                name: String::new(),
                gateway: id.clone(),
                declared_port: l.port,
                port,
                listeners: vec![listener],
                routes: vec![RouteSet::default()],
            });
        }
    }
    // Envoy listener names: by port, and by Gateway too when Gateways share a port.
    let names: Vec<String> = sets
        .iter()
        .map(|s| {
            let shared = sets.iter().filter(|o| o.port == s.port).count() > 1;
            if shared {
                format!("http_{}_{}", s.gateway.replace('/', "_"), s.port)
            } else {
                format!("http_{}", s.port)
            }
        })
        .collect();
    for (s, name) in sets.iter_mut().zip(names) {
        s.name = name;
    }
    // Two Gateways on one actual port would merge in one socket: each needs its own.
    for (i, s) in sets.iter().enumerate() {
        if let Some(first) = sets[..i].iter().find(|o| o.port == s.port) {
            let gw_name = s.gateway.rsplit('/').next().unwrap_or_default();
            let at = s
                .listeners
                .first()
                .and_then(|l| inputs.gateways.get(l.gateway))
                .map(|g| g.at.clone())
                .unwrap_or_default();
            cx.fail(
                &at,
                "spec.listeners",
                ErrorKind::Invalid(format!(
                    "Gateway {} listens on port {} like Gateway {}: each Gateway gets its own Envoy listener, so give this one its own port (--port-map {gw_name}:{}=PORT)",
                    s.gateway, s.port, first.gateway, s.declared_port
                )),
            );
        }
    }
    if sets.is_empty() {
        sets.push(HttpListenerSet {
            name: format!("http_{default_port}"),
            gateway: String::new(),
            declared_port: default_port,
            port: default_port,
            listeners: Vec::new(),
            routes: vec![RouteSet::default()],
        });
    }
    sets
}

/// Whether wildcard or exact hostname `a` covers every name `b` covers.
pub fn covers(a: &str, b: &str) -> bool {
    a == b
        || a.strip_prefix('*')
            .is_some_and(|suffix| b.len() > suffix.len() && b.ends_with(suffix))
}

/// How specific a listener hostname is: an exact name beats any wildcard, a longer wildcard
/// a shorter one, any hostname no hostname.
fn specificity(h: Option<&str>) -> (u8, usize) {
    match h {
        None => (0, 0),
        Some(w) if w.starts_with('*') => (1, w.len()),
        Some(e) => (2, e.len()),
    }
}

impl HttpListenerSet {
    /// Gateway API picks, for a request, the most specific listener whose hostname matches
    /// it; the router picks the most specific route host. So that both agree on a port
    /// shared by listeners of different hostnames: a route host that a more specific
    /// listener covers is dropped from a less specific listener's routes, and each listener
    /// hostname ends in a 404 catch-all that keeps its requests from falling through to
    /// another listener's hosts.
    pub fn router_routes(&mut self) -> Vec<fc::Route> {
        let mut merged = RouteSet::default();
        let several = self.listeners.len() > 1;
        for (li, routes) in std::mem::take(&mut self.routes).into_iter().enumerate() {
            let own = self.listeners.get(li).and_then(|l| l.hostname.clone());
            for (host, rules) in routes.into_hosts() {
                let shadowed = self.listeners.iter().any(|o| {
                    o.hostname.as_deref().is_some_and(|oh| {
                        specificity(Some(oh)) > specificity(own.as_deref()) && covers(oh, &host)
                    })
                });
                if !shadowed {
                    merged.host_rules(&host).extend(rules);
                }
            }
        }
        if several {
            for l in &self.listeners {
                if let Some(h) = &l.hostname {
                    merged.host_rules(h).push(fc::HttpRule {
                        status_code: Some(fc::StatusCodeAction {
                            code: 404,
                            body: Some(format!("no route on listener {}\n", l.name)),
                            headers: Vec::new(),
                        }),
                        ..fc::HttpRule::default()
                    });
                }
            }
        }
        merged.into_routes()
    }
}
