//! The router's routes from every routing document: the seed's VirtualHost and
//! MultiClusterIngress, and Gateway API HTTPRoutes. Rules for one host from several documents
//! merge into one router host, in input order (the router then applies Gateway API
//! precedence across them).

use std::collections::BTreeMap;

use wasmgate_core::config::{self as fc, PathModifier, PathModifierKind};

use crate::buckets;
use crate::error::{ErrorKind, Location};
use crate::gateway_filters;
use crate::listeners::{covers, namespace_of, HttpListenerSet};
use crate::model::*;
use crate::resolve::Ctx;
use crate::status::{Condition, ParentStatus, RouteStatus};

/// Routes under construction: HTTP rules per host (insertion-ordered), TCP routes per port.
#[derive(Default)]
pub struct RouteSet {
    hosts: Vec<(String, Vec<fc::HttpRule>)>,
    tcp: BTreeMap<u16, (Location, fc::TcpRoute)>,
}

impl RouteSet {
    /// The rules of `host` (created empty).
    pub fn host_rules(&mut self, host: &str) -> &mut Vec<fc::HttpRule> {
        self.host(host)
    }

    /// The HTTP hosts and their rules, in insertion order.
    pub fn into_hosts(self) -> Vec<(String, Vec<fc::HttpRule>)> {
        self.hosts
    }

    fn host(&mut self, host: &str) -> &mut Vec<fc::HttpRule> {
        let key = host.trim().to_ascii_lowercase();
        let key = if key.is_empty() { "*".to_string() } else { key };
        let i = match self.hosts.iter().position(|(h, _)| *h == key) {
            Some(i) => i,
            None => {
                self.hosts.push((key, Vec::new()));
                self.hosts.len() - 1
            }
        };
        &mut self.hosts[i].1
    }

    pub fn into_routes(self) -> Vec<fc::Route> {
        let http = self.hosts.into_iter().map(|(host, rules)| fc::Route {
            http: Some(fc::HttpRoute { host, rules }),
            tcp: None,
        });
        let tcp = self.tcp.into_values().map(|(_, t)| fc::Route {
            http: None,
            tcp: Some(t),
        });
        http.chain(tcp).collect()
    }

    pub fn tcp_ports(&self) -> impl Iterator<Item = (&u16, &fc::TcpRoute)> {
        self.tcp.iter().map(|(p, (_, t))| (p, t))
    }
}

/// The seed's documents' routes (VirtualHost, MultiClusterIngress): they name no Gateway and
/// are served on every HTTP listener. `port_map` moves declared TCP ports.
pub fn collect_seed(cx: &mut Ctx<'_>, port_map: &BTreeMap<u16, u16>) -> RouteSet {
    let mut set = RouteSet::default();
    let inputs = cx.inputs;
    for vh in &inputs.virtual_hosts {
        virtual_host(cx, &mut set, &vh.at, &vh.value, port_map);
    }
    for mci in &inputs.multi_cluster_ingresses {
        ingress(cx, &mut set, &mci.at, &mci.value.spec.template.spec);
    }
    set
}

/// Attaches every HTTPRoute to the listeners it may attach to, and reports its status.
pub fn collect_http_routes(cx: &mut Ctx<'_>, sets: &mut [HttpListenerSet]) -> Vec<RouteStatus> {
    let inputs = cx.inputs;
    inputs
        .http_routes
        .iter()
        .map(|r| http_route(cx, sets, &r.at, &r.value))
        .collect()
}

fn virtual_host(
    cx: &mut Ctx<'_>,
    set: &mut RouteSet,
    at: &Location,
    vh: &VirtualHost,
    port_map: &BTreeMap<u16, u16>,
) {
    for (ri, r) in vh.spec.routes.iter().enumerate() {
        let base = format!("spec.routes[{ri}]");
        match (&r.http, &r.tcp) {
            (Some(http), None) => {
                let mut rules = Vec::new();
                for (ui, rule) in http.rules.iter().enumerate() {
                    let field = format!("{base}.http.rules[{ui}]");
                    let (backend, bucket) = match &rule.backend {
                        Some(b) => {
                            match buckets::seed_backend(cx, at, &format!("{field}.backend"), b) {
                                Some(pair) => pair,
                                None => continue,
                            }
                        }
                        None => (None, None),
                    };
                    rules.push(fc::HttpRule {
                        path: rule.path.clone(),
                        backend,
                        bucket,
                        status_code: rule.status_code.as_ref().map(|s| fc::StatusCodeAction {
                            code: s.code,
                            body: s.body.clone(),
                            headers: Vec::new(),
                        }),
                        ..fc::HttpRule::default()
                    });
                }
                set.host(&http.host).extend(rules);
            }
            (None, Some(tcp)) => {
                let mut rules = Vec::new();
                for (ui, rule) in tcp.rules.iter().enumerate() {
                    let field = format!("{base}.tcp.rules[{ui}].backend");
                    let b = &rule.backend;
                    if b.bucket.is_some() {
                        cx.fail(at, format!("{field}.bucket"), ErrorKind::BucketOverTcp);
                        continue;
                    }
                    if let Some(backend) = cx.backend(
                        at,
                        &field,
                        "service",
                        &b.service,
                        None,
                        b.service_port.as_ref(),
                        1,
                        "servicePort",
                    ) {
                        rules.push(fc::TcpRule {
                            backend: Some(backend),
                            backends: Vec::new(),
                        });
                    }
                }
                let port = port_map.get(&tcp.port).copied().unwrap_or(tcp.port);
                if let Some((first, _)) = set.tcp.get(&port) {
                    let first = format!("{}: document {}", first.file.display(), first.document);
                    cx.fail(
                        at,
                        format!("{base}.tcp.port"),
                        ErrorKind::DuplicateObject(format!(
                            "tcp port {} (first routed in {first})",
                            tcp.port
                        )),
                    );
                    continue;
                }
                set.tcp
                    .insert(port, (at.clone(), fc::TcpRoute { port, rules }));
            }
            _ => cx.fail(at, base, ErrorKind::RouteKind),
        }
    }
}

fn ingress(cx: &mut Ctx<'_>, set: &mut RouteSet, at: &Location, spec: &IngressSpec) {
    let base = "spec.template.spec";
    for (ri, rule) in spec.rules.iter().enumerate() {
        let mut rules = Vec::new();
        for (pi, p) in rule.http.paths.iter().enumerate() {
            let field = format!("{base}.rules[{ri}].http.paths[{pi}].backend");
            if let Some(backend) = ingress_backend(cx, at, &field, &p.backend) {
                rules.push(fc::HttpRule {
                    path: Some(p.path.clone().unwrap_or_else(|| "/".into())),
                    backend: Some(backend),
                    ..fc::HttpRule::default()
                });
            }
        }
        set.host(rule.host.as_deref().unwrap_or("*")).extend(rules);
    }
    // The Ingress default backend takes whatever no rule matches: the catch-all host.
    if let Some(b) = &spec.backend {
        let field = format!("{base}.backend");
        if let Some(backend) = ingress_backend(cx, at, &field, b) {
            set.host("*").push(fc::HttpRule {
                path: Some("/".into()),
                backend: Some(backend),
                ..fc::HttpRule::default()
            });
        }
    }
}

/// An Ingress backend (`serviceName`, `servicePort`) resolved like any other.
fn ingress_backend(
    cx: &mut Ctx<'_>,
    at: &Location,
    field: &str,
    b: &IngressBackend,
) -> Option<fc::Backend> {
    let port = Some(&b.service_port);
    cx.backend(
        at,
        field,
        "serviceName",
        &b.service_name,
        None,
        port,
        1,
        "servicePort",
    )
}

fn path_modifier(
    cx: &mut Ctx<'_>,
    at: &Location,
    field: &str,
    m: &GwPathModifier,
) -> Option<PathModifier> {
    let (kind, value) = match (
        m.kind.as_str(),
        &m.replace_full_path,
        &m.replace_prefix_match,
    ) {
        ("ReplaceFullPath", Some(v), None) => (PathModifierKind::ReplaceFullPath, v),
        ("ReplacePrefixMatch", None, Some(v)) => (PathModifierKind::ReplacePrefixMatch, v),
        (k, _, _) => {
            cx.fail(at, field, ErrorKind::PathModifierShape(k.to_string()));
            return None;
        }
    };
    Some(PathModifier {
        kind,
        value: value.clone(),
    })
}

fn modifier(m: &GwHeaderModifier) -> fc::HeaderModifier {
    fc::HeaderModifier {
        set: m.set.clone(),
        add: m.add.clone(),
        remove: m.remove.clone(),
    }
}

/// Why a backendRef does not resolve: the ResolvedRefs reason, the field, the message.
type Why = (&'static str, String, String);

/// The first reason a rule's backendRefs are not all resolved (Gateway API ResolvedRefs).
type Unresolved = Option<Why>;

fn http_route(
    cx: &mut Ctx<'_>,
    sets: &mut [HttpListenerSet],
    at: &Location,
    route: &HttpRoute,
) -> RouteStatus {
    let spec = &route.spec;
    let ns = namespace_of(route.metadata.namespace.as_deref()).to_string();
    let mut unresolved: Unresolved = None;
    let mut rules = Vec::new();
    for (ui, rule) in spec.rules.iter().enumerate() {
        if let Some(out) = http_rule(cx, at, &ns, ui, rule, &mut unresolved) {
            rules.push(out);
        }
    }
    let resolved = match &unresolved {
        None => Condition::ok("ResolvedRefs", "ResolvedRefs"),
        Some((reason, field, message)) => {
            Condition::failed("ResolvedRefs", reason, format!("{field}: {message}"))
        }
    };
    let mut status = RouteStatus {
        kind: "HTTPRoute",
        name: route.metadata.name.clone(),
        namespace: ns.clone(),
        at: at.clone(),
        parents: Vec::new(),
    };
    let own: Vec<String> = spec
        .hostnames
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if cx.inputs.gateways.is_empty() {
        // No Gateway to attach to: the route serves its hostnames on the default listener.
        let hosts = if own.is_empty() {
            vec!["*".to_string()]
        } else {
            own
        };
        for set in sets.iter_mut() {
            for routes in &mut set.routes {
                for h in &hosts {
                    routes.host(h).extend(rules.iter().cloned());
                }
            }
        }
        return status;
    }
    if spec.parent_refs.is_empty() {
        cx.fail(at, "spec.parentRefs", ErrorKind::NoParentGateway);
        return status;
    }
    for (pi, p) in spec.parent_refs.iter().enumerate() {
        let field = format!("spec.parentRefs[{pi}]");
        let parent_ns = namespace_of(p.namespace.as_deref().or(Some(&ns))).to_string();
        let mut parent = ParentStatus {
            name: p.name.clone(),
            namespace: parent_ns.clone(),
            section_name: p.section_name.clone(),
            port: p.port,
            conditions: Vec::new(),
        };
        let accepted = attach(cx, sets, at, &field, &ns, &parent_ns, p, &own, &rules);
        if let Err((reason, at_field, message)) = &accepted {
            cx.route_fault(at, at_field, message.clone());
            parent
                .conditions
                .push(Condition::failed("Accepted", reason, message.clone()));
        } else {
            parent
                .conditions
                .push(Condition::ok("Accepted", "Accepted"));
        }
        parent.conditions.push(resolved.clone());
        status.parents.push(parent);
    }
    status
}

/// Attaches a route's rules to the listeners `p` selects, or says why it cannot.
#[allow(clippy::too_many_arguments)]
fn attach(
    cx: &mut Ctx<'_>,
    sets: &mut [HttpListenerSet],
    at: &Location,
    field: &str,
    route_ns: &str,
    parent_ns: &str,
    p: &ParentRef,
    own: &[String],
    rules: &[fc::HttpRule],
) -> Result<(), Why> {
    if p.kind.as_deref().is_some_and(|k| k != "Gateway")
        || p.group
            .as_deref()
            .is_some_and(|g| g != "gateway.networking.k8s.io")
    {
        cx.fail(at, format!("{field}.kind"), ErrorKind::ParentNotGateway);
        return Err((
            "NoMatchingParent",
            format!("{field}.kind"),
            "not a Gateway".into(),
        ));
    }
    let inputs = cx.inputs;
    let Some(gi) = inputs.gateways.iter().position(|g| {
        let m = &g.value.metadata;
        m.name == p.name && namespace_of(m.namespace.as_deref()) == parent_ns
    }) else {
        return Err((
            "NoMatchingParent",
            format!("{field}.name"),
            format!("no Gateway named {parent_ns}/{}", p.name),
        ));
    };
    let gateway = &inputs.gateways[gi].value;
    // The listeners the parentRef names (all, or by sectionName and/or port).
    let named: Vec<&Listener> = gateway
        .spec
        .listeners
        .iter()
        .filter(|l| p.section_name.as_ref().is_none_or(|s| *s == l.name))
        .collect();
    if let (Some(s), true) = (&p.section_name, named.is_empty()) {
        return Err((
            "NoMatchingParent",
            format!("{field}.sectionName"),
            format!("Gateway {parent_ns}/{} has no listener named {s:?}", p.name),
        ));
    }
    let chosen: Vec<&Listener> = named
        .iter()
        .copied()
        .filter(|l| p.port.is_none_or(|port| port == l.port))
        .collect();
    if chosen.is_empty() {
        let port = p.port.unwrap_or_default();
        let message = match (&p.section_name, named.as_slice()) {
            (Some(s), [l, ..]) => format!(
                "Gateway {parent_ns}/{}: listener {s:?} is on port {}, not {port}",
                p.name, l.port
            ),
            _ => format!(
                "Gateway {parent_ns}/{} has no listener on port {port}",
                p.name
            ),
        };
        return Err(("NoMatchingParent", format!("{field}.port"), message));
    }
    let http: Vec<&Listener> = chosen
        .iter()
        .copied()
        .filter(|l| l.protocol == "HTTP")
        .collect();
    if http.is_empty() {
        return Err((
            "NotAllowedByListeners",
            field.to_string(),
            "the listeners it names do not route HTTP".into(),
        ));
    }
    let allowed: Vec<&Listener> = http
        .iter()
        .copied()
        .filter(|l| crate::namespaces::allows(inputs, l, gateway, route_ns))
        .collect();
    if allowed.is_empty() {
        return Err((
            "NotAllowedByListeners",
            field.to_string(),
            format!("no listener it names allows routes from namespace {route_ns} (allowedRoutes)"),
        ));
    }
    // Listeners Gateway API does not accept (conflicted, port unavailable) take no routes.
    let accepted = |l: &Listener| {
        let li = gateway.spec.listeners.iter().position(|o| o.name == l.name);
        cx.gateway_status
            .get(gi)
            .and_then(|g| g.listeners.get(li?))
            .is_some_and(|s| s.accepted())
    };
    let allowed: Vec<&Listener> = allowed.into_iter().filter(|l| accepted(l)).collect();
    if allowed.is_empty() {
        return Err((
            "NotAllowedByListeners",
            field.to_string(),
            "the listeners it names are not accepted (see the Gateway's status)".into(),
        ));
    }
    let mut attached = false;
    for l in allowed.iter().copied() {
        let hosts: Vec<String> = match (&l.hostname, own.is_empty()) {
            (None, true) => vec!["*".into()],
            (None, false) => own.to_vec(),
            (Some(h), true) => vec![h.to_ascii_lowercase()],
            (Some(h), false) => own.iter().filter_map(|r| intersect(r, h)).collect(),
        };
        if hosts.is_empty() {
            continue;
        }
        let Some((set, li)) = sets.iter_mut().find_map(|s| {
            let li = s
                .listeners
                .iter()
                .position(|gl| gl.gateway == gi && gl.name == l.name)?;
            Some((s, li))
        }) else {
            continue;
        };
        let Some(routes) = set.routes.get_mut(li) else {
            continue;
        };
        for h in hosts {
            routes.host(&h).extend(rules.iter().cloned());
        }
        attached = true;
    }
    if !attached {
        return Err((
            "NoMatchingListenerHostname",
            "spec.hostnames".to_string(),
            format!(
                "none of the hostnames {own:?} intersects the hostname of a listener it attaches to"
            ),
        ));
    }
    // The route is Accepted: it counts on every listener its parentRef selects and whose
    // allowedRoutes admit it (hostnames aside), as `attachedRoutes` is defined.
    for l in allowed {
        let li = gateway.spec.listeners.iter().position(|o| o.name == l.name);
        if let Some(ls) = cx
            .gateway_status
            .get_mut(gi)
            .and_then(|g| g.listeners.get_mut(li?))
        {
            ls.attached_routes += 1;
        }
    }
    Ok(())
}

/// One HTTPRoute rule for the router; `None` when the rule is in error (reported). Invalid
/// backendRefs do not drop the rule: their share of its requests answers 500, and the
/// first reason is kept in `unresolved`.
fn http_rule(
    cx: &mut Ctx<'_>,
    at: &Location,
    route_ns: &str,
    ui: usize,
    rule: &HttpRouteRule,
    unresolved: &mut Unresolved,
) -> Option<fc::HttpRule> {
    let base = format!("spec.rules[{ui}]");
    for (field, present) in [("sessionPersistence", rule.session_persistence.is_some())] {
        if present {
            cx.fail(
                at,
                format!("{base}.{field}"),
                ErrorKind::Unsupported(field.to_string()),
            );
        }
    }
    let mut out = fc::HttpRule {
        matches: rule.matches.clone(),
        ..fc::HttpRule::default()
    };
    for (fi, f) in rule.filters.iter().enumerate() {
        let field = format!("{base}.filters[{fi}]");
        match (
            f.kind.as_str(),
            &f.request_header_modifier,
            &f.response_header_modifier,
            &f.request_redirect,
            &f.url_rewrite,
        ) {
            ("RequestHeaderModifier", Some(m), None, None, None) => {
                out.request_headers = Some(modifier(m))
            }
            ("ResponseHeaderModifier", None, Some(m), None, None) => {
                out.response_headers = Some(modifier(m))
            }
            ("RequestRedirect", None, None, Some(r), None) => {
                let path = match &r.path {
                    Some(p) => path_modifier(cx, at, &format!("{field}.requestRedirect.path"), p),
                    None => None,
                };
                out.redirect = Some(fc::Redirect {
                    scheme: r.scheme.clone(),
                    hostname: r.hostname.clone(),
                    port: r.port,
                    path,
                    status_code: r.status_code,
                });
            }
            ("URLRewrite", None, None, None, Some(u)) => {
                let path = match &u.path {
                    Some(p) => path_modifier(cx, at, &format!("{field}.urlRewrite.path"), p),
                    None => None,
                };
                out.url_rewrite = Some(fc::UrlRewrite {
                    hostname: u.hostname.clone(),
                    path,
                });
            }
            // Carried by the rule's policy (gateway_filters::rule_policy).
            ("RequestMirror", None, None, None, None) if f.request_mirror.is_some() => {}
            ("CORS", None, None, None, None) if f.cors.is_some() => {
                let raw = f.cors.as_ref().unwrap_or(&serde_json::Value::Null);
                out.cors = gateway_filters::cors(cx, at, &format!("{field}.cors"), raw);
            }
            (k @ "ExtensionRef", ..) => {
                cx.fail(
                    at,
                    format!("{field}.type"),
                    ErrorKind::Unsupported(format!("filter {k}")),
                );
            }
            (k, ..) => cx.fail(
                at,
                format!("{field}.type"),
                ErrorKind::FilterShape(k.to_string()),
            ),
        }
    }
    let mut invalid_weight = 0u32;
    for (bi, b) in rule.backend_refs.iter().enumerate() {
        let field = format!("{base}.backendRefs[{bi}]");
        let weight = b.weight.unwrap_or(1);
        if buckets::is_bucket_ref(b) {
            match buckets::backend_ref(cx, &field, route_ns, b, rule.backend_refs.len()) {
                Ok(bucket) => out.bucket = Some(bucket),
                Err(why) => {
                    cx.route_fault(at, &why.1, why.2.clone());
                    if unresolved.is_none() {
                        *unresolved = Some(why);
                    }
                }
            }
            continue;
        }
        match backend_ref(cx, at, &field, route_ns, b, weight) {
            Ok(mut backend) => {
                if gateway_filters::backend_filters(cx, at, &field, &b.filters, &mut backend) {
                    out.backends.push(backend);
                }
            }
            Err(why) => {
                cx.route_fault(at, &why.1, why.2.clone());
                invalid_weight = invalid_weight.saturating_add(weight);
                if unresolved.is_none() {
                    *unresolved = Some(why);
                }
            }
        }
    }
    out.policy = gateway_filters::rule_policy(cx, at, &base, route_ns, rule);
    if out.redirect.is_none() && out.backends.is_empty() && out.bucket.is_none() {
        // Gateway API: a rule with nowhere valid to send its requests answers 500.
        out.status_code = Some(fc::StatusCodeAction {
            code: 500,
            body: None,
            headers: Vec::new(),
        });
        out.request_headers = None;
        out.url_rewrite = None;
        // Nothing is forwarded, so there is nothing to time, retry, mirror or share.
        out.cors = None;
        out.policy = None;
    } else if !out.backends.is_empty() {
        out.unresolved_weight = invalid_weight;
    }
    if out.redirect.is_some() && (out.policy.is_some() || out.cors.is_some()) {
        cx.fail(at, base.clone(), ErrorKind::RedirectWithPolicy);
        return None;
    }
    if out.redirect.is_some() && !out.backends.is_empty() {
        cx.fail(at, base.clone(), ErrorKind::RedirectAndBackends);
        return None;
    }
    Some(out)
}

/// Resolves one backendRef, or gives the ResolvedRefs reason it fails with.
fn backend_ref(
    cx: &mut Ctx<'_>,
    at: &Location,
    field: &str,
    route_ns: &str,
    b: &BackendRef,
    weight: u32,
) -> Result<fc::Backend, Why> {
    let kind = b.kind.as_deref().unwrap_or("Service");
    let group = b.group.as_deref().unwrap_or("");
    let inputs = cx.inputs;
    let ns = namespace_of(b.namespace.as_deref().or(Some(route_ns))).to_string();
    let known = match (group, kind) {
        ("" | "core", "Service") => {
            inputs.services.iter().any(|s| {
                s.value.metadata.name == b.name
                    && namespace_of(s.value.metadata.namespace.as_deref()) == ns
            }) || cx.mcs.contains_key(&b.name)
        }
        ("multicluster.x-k8s.io", "ServiceImport") => inputs.service_imports.iter().any(|s| {
            s.value.metadata.name == b.name
                && namespace_of(s.value.metadata.namespace.as_deref()) == ns
        }),
        (g, k) => {
            return Err((
                "InvalidKind",
                format!("{field}.kind"),
                format!("backend kind {k:?} of group {g:?} is not supported"),
            ))
        }
    };
    if ns != route_ns
        && !crate::namespaces::granted(inputs, route_ns, "HTTPRoute", &ns, group, kind, &b.name)
    {
        return Err((
            "RefNotPermitted",
            format!("{field}.namespace"),
            format!(
                "a backendRef to namespace {ns} needs a ReferenceGrant there from HTTPRoutes in {route_ns}"
            ),
        ));
    }
    if !known {
        return Err((
            "BackendNotFound",
            format!("{field}.name"),
            format!("no {kind} named {ns}/{}", b.name),
        ));
    }
    let port = b.port.map(PortRef::Number);
    let before = cx.errors.len();
    match cx.backend(
        at,
        field,
        "name",
        &b.name,
        Some(&ns),
        port.as_ref(),
        weight,
        "port",
    ) {
        Some(backend) => Ok(backend),
        None => {
            let errors: Vec<_> = cx.errors.drain(before..).collect();
            let field = errors
                .first()
                .map_or_else(|| field.to_string(), |e| e.at.field.clone());
            let why: Vec<String> = errors.iter().map(|e| e.kind.to_string()).collect();
            Err(("BackendNotFound", field, why.join("; ")))
        }
    }
}

/// Gateway API hostname intersection of a route's and a listener's hostname: the more
/// specific of the two when one covers the other (`*.example.com` covers
/// `a.example.com` and `*.a.example.com`), else none.
fn intersect(route: &str, listener: &str) -> Option<String> {
    let (r, l) = (route.to_ascii_lowercase(), listener.to_ascii_lowercase());
    if covers(&l, &r) {
        Some(r)
    } else if covers(&r, &l) {
        Some(l)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::intersect;

    #[test]
    fn route_and_listener_hostnames_intersect_as_in_gateway_api() {
        let cases = [
            (
                "foo.example.com",
                "foo.example.com",
                Some("foo.example.com"),
            ),
            (
                "FOO.example.com",
                "foo.example.com",
                Some("foo.example.com"),
            ),
            ("foo.example.com", "*.example.com", Some("foo.example.com")),
            ("a.b.example.com", "*.example.com", Some("a.b.example.com")),
            ("*.a.example.com", "*.example.com", Some("*.a.example.com")),
            ("*.example.com", "foo.example.com", Some("foo.example.com")),
            ("*.example.com", "*.example.com", Some("*.example.com")),
            ("example.com", "*.example.com", None),
            ("foo.other.com", "*.example.com", None),
            ("bar.example.com", "foo.example.com", None),
            ("*.example.com", "*.other.com", None),
        ];
        for (route, listener, want) in cases {
            assert_eq!(
                intersect(route, listener).as_deref(),
                want,
                "{route} on listener {listener}"
            );
        }
    }
}
