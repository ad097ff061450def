//! The HTTP listeners to generate. Gateway API gives each Gateway listener its own routes:
//! the listeners of one Gateway that share a port become one Envoy listener whose router
//! config keeps their routes apart by listener hostname; each Gateway (and each port) gets
//! its own Envoy listener and router config.

use std::collections::BTreeMap;

use wasmgate_core::config as fc;

use crate::error::ErrorKind;
use crate::model::Listener;
use crate::resolve::Ctx;
use crate::router_rules::RouteSet;
use crate::status::{Condition, GatewayStatus, ListenerStatus};

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

/// The route kinds a listener admits that wasmgate supports, and whether it names others
/// (Gateway API `supportedKinds`, and ResolvedRefs `InvalidRouteKinds`).
fn route_kinds(l: &Listener) -> (Vec<String>, bool) {
    let http = l.protocol == "HTTP";
    let kinds = l
        .allowed_routes
        .as_ref()
        .map(|a| a.kinds.as_slice())
        .unwrap_or_default();
    if kinds.is_empty() {
        return (
            if http {
                vec!["HTTPRoute".into()]
            } else {
                vec![]
            },
            false,
        );
    }
    let supported = |k: &&crate::model::RouteGroupKind| {
        http && k.kind == "HTTPRoute"
            && k.group
                .as_deref()
                .is_none_or(|g| g == "gateway.networking.k8s.io")
    };
    let ok: Vec<String> = kinds
        .iter()
        .filter(supported)
        .map(|k| k.kind.clone())
        .collect();
    let invalid = ok.len() < kinds.len();
    (ok, invalid)
}

/// Gateway API's "distinct listeners": listeners of one Gateway on one port must differ in
/// protocol-relevant fields. Any listener sharing a port with another protocol is in
/// `ProtocolConflict`; HTTP listeners sharing port and hostname are in `HostnameConflict`.
fn conflict(listeners: &[Listener], i: usize) -> Option<(&'static str, String)> {
    let l = listeners.get(i)?;
    let host = |l: &Listener| l.hostname.as_ref().map(|h| h.to_ascii_lowercase());
    let others = listeners
        .iter()
        .enumerate()
        .filter(|(j, o)| *j != i && o.port == l.port);
    let mut hostname_twin = None;
    for (_, o) in others {
        if o.protocol != l.protocol {
            return Some((
                "ProtocolConflict",
                format!(
                    "listener {:?} is on port {} with protocol {}",
                    o.name, l.port, o.protocol
                ),
            ));
        }
        if host(o) == host(l) && hostname_twin.is_none() {
            hostname_twin = Some(o.name.clone());
        }
    }
    hostname_twin.map(|twin| {
        (
            "HostnameConflict",
            format!("listener {twin:?} has the same port and hostname; neither is accepted"),
        )
    })
}

/// The HTTP listener sets of the input, in Gateway order, and each Gateway's status in
/// `cx.gateway_status`. Listeners of other protocols are checked (TCP needs a matching tcp
/// route). A listener Gateway API does not accept (conflicted, an unsupported protocol, a
/// port already taken) gets no Envoy listener and says why in its status (an error under
/// `--strict`).
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
        let ns = namespace_of(meta.namespace.as_deref()).to_string();
        let id = format!("{ns}/{}", meta.name);
        let mut status = GatewayStatus {
            name: meta.name.clone(),
            namespace: ns,
            at: gw.at.clone(),
            conditions: Vec::new(),
            listeners: Vec::new(),
        };
        let all = &gw.value.spec.listeners;
        for (li, l) in all.iter().enumerate() {
            let field = format!("spec.listeners[{li}]");
            let (supported_kinds, invalid_kinds) = route_kinds(l);
            let mut ls = ListenerStatus {
                name: l.name.clone(),
                supported_kinds,
                attached_routes: 0,
                conditions: Vec::new(),
            };
            let resolved = if invalid_kinds {
                Condition::failed(
                    "ResolvedRefs",
                    "InvalidRouteKinds",
                    "allowedRoutes.kinds names a kind wasmgate does not route here (HTTPRoute on HTTP listeners)".into(),
                )
            } else {
                Condition::ok("ResolvedRefs", "ResolvedRefs")
            };
            let port = ports
                .by_gateway
                .get(&(meta.name.clone(), l.port))
                .or_else(|| ports.any.get(&l.port))
                .copied()
                .unwrap_or(l.port);
            let refused: Option<(&'static str, String, String)> = match conflict(all, li) {
                Some((reason, message)) => Some((reason, format!("{field}.port"), message)),
                None => match l.protocol.as_str() {
                    "HTTP" | "TCP" => None,
                    p => Some((
                        "UnsupportedProtocol",
                        format!("{field}.protocol"),
                        format!("protocol {p} is not supported: wasmgate listens for HTTP and TCP"),
                    )),
                },
            };
            let conflicted = match &refused {
                Some((r @ ("HostnameConflict" | "ProtocolConflict"), _, m)) => {
                    Condition::failed("Conflicted", r, m.clone()).flip()
                }
                _ => Condition::failed("Conflicted", "NoConflicts", String::new()),
            };
            if let Some((reason, at_field, message)) = refused {
                cx.route_fault(&gw.at, &at_field, message.clone());
                ls.conditions = vec![
                    Condition::failed("Accepted", reason, message),
                    Condition::failed("Programmed", "Invalid", "not accepted".into()),
                    resolved,
                    conflicted,
                ];
                status.listeners.push(ls);
                continue;
            }
            ls.conditions = vec![
                Condition::ok("Accepted", "Accepted"),
                Condition::ok("Programmed", "Programmed"),
                resolved,
                conflicted,
            ];
            status.listeners.push(ls);
            if l.protocol == "TCP" {
                if !tcp_ports.contains(&port) {
                    cx.fail(
                        &gw.at,
                        format!("{field}.port"),
                        ErrorKind::NoTcpRoute(l.port),
                    );
                }
                continue;
            }
            let hostname = l.hostname.as_ref().map(|h| h.to_ascii_lowercase());
            let listener = GatewayListener {
                name: l.name.clone(),
                hostname,
                gateway: gi,
                index: li,
            };
            if let Some(set) = sets
                .iter_mut()
                .find(|s| s.gateway == id && s.declared_port == l.port)
            {
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
        cx.gateway_status.push(status);
    }
    // Two Gateways on one actual port would merge in one socket: the first keeps it, the
    // other's listeners there are not accepted (PortUnavailable).
    let mut kept: Vec<HttpListenerSet> = Vec::new();
    for s in sets {
        let Some(first) = kept.iter().find(|o| o.port == s.port) else {
            kept.push(s);
            continue;
        };
        let gw_name = s.gateway.rsplit('/').next().unwrap_or_default();
        let message = format!(
            "Gateway {} listens on port {} like Gateway {}: each Gateway gets its own Envoy listener, so give this one its own port (--port-map {gw_name}:{}=PORT)",
            s.gateway, s.port, first.gateway, s.declared_port
        );
        let at = s
            .listeners
            .first()
            .and_then(|l| inputs.gateways.get(l.gateway))
            .map(|g| g.at.clone())
            .unwrap_or_default();
        if cx.strict {
            cx.fail(
                &at,
                "spec.listeners",
                ErrorKind::StrictFault(message.clone()),
            );
        }
        for l in &s.listeners {
            let Some(ls) = cx
                .gateway_status
                .get_mut(l.gateway)
                .and_then(|g| g.listeners.get_mut(l.index))
            else {
                continue;
            };
            for c in &mut ls.conditions {
                match c.kind {
                    "Accepted" => {
                        *c = Condition::failed("Accepted", "PortUnavailable", message.clone())
                    }
                    "Programmed" => {
                        *c = Condition::failed("Programmed", "Invalid", "not accepted".into())
                    }
                    _ => {}
                }
            }
        }
    }
    let mut sets = kept;
    for g in &mut cx.gateway_status {
        g.conclude();
    }
    // Envoy listener names: by port (no two sets share one now).
    for s in &mut sets {
        s.name = format!("http_{}", s.port);
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
