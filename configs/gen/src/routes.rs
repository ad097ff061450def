//! The router's routes from every routing document: the seed's VirtualHost and
//! MultiClusterIngress, and Gateway API HTTPRoutes. Rules for one host from several documents
//! merge into one router host, in input order (the router then applies Gateway API
//! precedence across them).

use std::collections::BTreeMap;

use wasmgate_core::config::{self as fc, PathModifier, PathModifierKind};

use crate::error::{ErrorKind, Location};
use crate::gateway_filters;
use crate::model::*;
use crate::resolve::Ctx;

/// Routes under construction: HTTP rules per host (insertion-ordered), TCP routes per port.
#[derive(Default)]
pub struct RouteSet {
    hosts: Vec<(String, Vec<fc::HttpRule>)>,
    tcp: BTreeMap<u16, (Location, fc::TcpRoute)>,
}

impl RouteSet {
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

/// Adds every routing document's routes; `port_map` moves declared TCP ports.
pub fn collect(cx: &mut Ctx<'_>, port_map: &BTreeMap<u16, u16>) -> RouteSet {
    let mut set = RouteSet::default();
    let inputs = cx.inputs;
    for vh in &inputs.virtual_hosts {
        virtual_host(cx, &mut set, &vh.at, &vh.value, port_map);
    }
    for mci in &inputs.multi_cluster_ingresses {
        ingress(cx, &mut set, &mci.at, &mci.value.spec.template.spec);
    }
    for r in &inputs.http_routes {
        http_route(cx, &mut set, &r.at, &r.value.spec);
    }
    set
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
                    let backend = rule.backend.as_ref().and_then(|b| {
                        cx.backend(
                            at,
                            &format!("{field}.backend"),
                            "service",
                            &b.service,
                            Some(&b.service_port),
                            1,
                            "servicePort",
                        )
                    });
                    if rule.backend.is_some() && backend.is_none() {
                        continue;
                    }
                    rules.push(fc::HttpRule {
                        path: rule.path.clone(),
                        backend,
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
                    if let Some(backend) = cx.backend(
                        at,
                        &field,
                        "service",
                        &b.service,
                        Some(&b.service_port),
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
            _ => cx.fail(
                at,
                base,
                ErrorKind::Invalid("a route needs exactly one of `http` or `tcp`".into()),
            ),
        }
    }
}

fn ingress(cx: &mut Ctx<'_>, set: &mut RouteSet, at: &Location, spec: &IngressSpec) {
    let base = "spec.template.spec";
    for (ri, rule) in spec.rules.iter().enumerate() {
        let mut rules = Vec::new();
        for (pi, p) in rule.http.paths.iter().enumerate() {
            let field = format!("{base}.rules[{ri}].http.paths[{pi}].backend");
            let b = &p.backend;
            if let Some(backend) = cx.backend(
                at,
                &field,
                "serviceName",
                &b.service_name,
                Some(&b.service_port),
                1,
                "servicePort",
            ) {
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
        if let Some(backend) = cx.backend(
            at,
            &field,
            "serviceName",
            &b.service_name,
            Some(&b.service_port),
            1,
            "servicePort",
        ) {
            set.host("*").push(fc::HttpRule {
                path: Some("/".into()),
                backend: Some(backend),
                ..fc::HttpRule::default()
            });
        }
    }
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
            cx.fail(at, field, ErrorKind::Invalid(format!(
                "path modifier type {k:?} needs exactly its own field (replaceFullPath or replacePrefixMatch)"
            )));
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

fn http_route(cx: &mut Ctx<'_>, set: &mut RouteSet, at: &Location, spec: &HttpRouteSpec) {
    let mut rules = Vec::new();
    for (ui, rule) in spec.rules.iter().enumerate() {
        let base = format!("spec.rules[{ui}]");
        for (field, present) in [("sessionPersistence", rule.session_persistence.is_some())] {
            if present {
                cx.fail(
                    at,
                    format!("{base}.{field}"),
                    ErrorKind::Invalid(format!("{field} is not supported by wasmgate")),
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
                        Some(p) => {
                            path_modifier(cx, at, &format!("{field}.requestRedirect.path"), p)
                        }
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
                        ErrorKind::Invalid(format!("filter {k} is not supported by wasmgate")),
                    );
                }
                (k, ..) => cx.fail(
                    at,
                    format!("{field}.type"),
                    ErrorKind::Invalid(format!(
                        "filter type {k:?} needs exactly its own configuration field"
                    )),
                ),
            }
        }
        for (bi, b) in rule.backend_refs.iter().enumerate() {
            let field = format!("{base}.backendRefs[{bi}]");
            let kind = b.kind.as_deref().unwrap_or("Service");
            let known = match (b.group.as_deref().unwrap_or(""), kind) {
                ("" | "core", "Service") => {
                    cx.inputs
                        .services
                        .iter()
                        .any(|s| s.value.metadata.name == b.name)
                        || cx.mcs.contains_key(&b.name)
                }
                ("multicluster.x-k8s.io", "ServiceImport") => cx
                    .inputs
                    .service_imports
                    .iter()
                    .any(|s| s.value.metadata.name == b.name),
                (g, k) => {
                    cx.fail(
                        at,
                        format!("{field}.kind"),
                        ErrorKind::Invalid(format!(
                            "backend kind {k:?} of group {g:?} is not supported"
                        )),
                    );
                    continue;
                }
            };
            if !known {
                cx.fail(
                    at,
                    format!("{field}.name"),
                    ErrorKind::UnknownService(b.name.clone()),
                );
                continue;
            }
            let port = b.port.map(PortRef::Number);
            if let Some(mut backend) = cx.backend(
                at,
                &field,
                "name",
                &b.name,
                port.as_ref(),
                b.weight.unwrap_or(1),
                "port",
            ) {
                if gateway_filters::backend_filters(cx, at, &field, &b.filters, &mut backend) {
                    out.backends.push(backend);
                }
            }
        }
        out.policy = gateway_filters::rule_policy(cx, at, &base, rule);
        if out.redirect.is_none() && out.backends.is_empty() {
            if rule.backend_refs.is_empty() {
                // Gateway API: a rule with nowhere to send its requests answers 500.
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
            } else {
                continue;
            }
        }
        if out.redirect.is_some() && (out.policy.is_some() || out.cors.is_some()) {
            cx.fail(
                at,
                base.clone(),
                ErrorKind::Invalid(
                    "a redirect rule forwards nothing: timeouts, retry, RequestMirror and CORS need backendRefs"
                        .into(),
                ),
            );
            continue;
        }
        if out.redirect.is_some() && !out.backends.is_empty() {
            cx.fail(
                at,
                base.clone(),
                ErrorKind::Invalid("a rule cannot both redirect and forward to backendRefs".into()),
            );
            continue;
        }
        rules.push(out);
    }
    let Some(hostnames) = attached_hostnames(cx, at, spec) else {
        return;
    };
    for h in hostnames {
        set.host(&h).extend(rules.iter().cloned());
    }
}

/// The hosts a route serves: its hostnames intersected with the hostname of each HTTP
/// listener it attaches to through `parentRefs` (Gateway API). Without any Gateway in the
/// input there is nothing to attach to and the route serves its hostnames as written.
/// `None` when the attachment is in error (reported).
fn attached_hostnames(
    cx: &mut Ctx<'_>,
    at: &Location,
    spec: &HttpRouteSpec,
) -> Option<Vec<String>> {
    let own: Vec<String> = spec
        .hostnames
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let inputs = cx.inputs;
    if inputs.gateways.is_empty() {
        return Some(if own.is_empty() {
            vec!["*".into()]
        } else {
            own
        });
    }
    if spec.parent_refs.is_empty() {
        cx.fail(
            at,
            "spec.parentRefs",
            ErrorKind::Invalid(
                "the route attaches to no Gateway; name one of the input's Gateways".into(),
            ),
        );
        return None;
    }
    // Hostname of every listener attached to; `None` serves any host.
    let mut listeners: Vec<Option<String>> = Vec::new();
    let mut failed = false;
    for (pi, p) in spec.parent_refs.iter().enumerate() {
        let field = format!("spec.parentRefs[{pi}]");
        let mut fail = |field: String, msg: String| {
            cx.fail(at, field, ErrorKind::Invalid(msg));
            failed = true;
        };
        if p.kind.as_deref().is_some_and(|k| k != "Gateway")
            || p.group
                .as_deref()
                .is_some_and(|g| g != "gateway.networking.k8s.io")
        {
            fail(
                format!("{field}.kind"),
                "only Gateway parents (group gateway.networking.k8s.io) are supported".into(),
            );
            continue;
        }
        let gateway = inputs.gateways.iter().find(|g| {
            let m = &g.value.metadata;
            m.name == p.name
                && (p.namespace.is_none() || m.namespace.is_none() || p.namespace == m.namespace)
        });
        let Some(gateway) = gateway else {
            fail(
                format!("{field}.name"),
                format!("no Gateway named {:?}", p.name),
            );
            continue;
        };
        let chosen: Vec<&Listener> = gateway
            .value
            .spec
            .listeners
            .iter()
            .filter(|l| l.protocol == "HTTP")
            .filter(|l| p.section_name.as_ref().is_none_or(|s| *s == l.name))
            .filter(|l| p.port.is_none_or(|port| port == l.port))
            .collect();
        if chosen.is_empty() {
            let (which, what) = match (&p.section_name, p.port) {
                (Some(s), _) => ("sectionName", format!("named {s:?}")),
                (None, Some(port)) => ("port", format!("on port {port}")),
                (None, None) => ("name", "at all".to_string()),
            };
            fail(
                format!("{field}.{which}"),
                format!("Gateway {:?} has no HTTP listener {what}", p.name),
            );
            continue;
        }
        listeners.extend(chosen.iter().map(|l| l.hostname.clone()));
    }
    if failed {
        return None;
    }
    let mut hosts: Vec<String> = Vec::new();
    for listener in &listeners {
        let served: Vec<String> = match (listener, own.is_empty()) {
            (None, true) => vec!["*".into()],
            (None, false) => own.clone(),
            (Some(l), true) => vec![l.to_ascii_lowercase()],
            (Some(l), false) => own.iter().filter_map(|r| intersect(r, l)).collect(),
        };
        for h in served {
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
    }
    if hosts.is_empty() {
        let listener_names: Vec<&str> = listeners.iter().flatten().map(String::as_str).collect();
        cx.fail(
            at,
            "spec.hostnames",
            ErrorKind::Invalid(format!(
                "none of {own:?} is served by the attached listeners (hostnames {listener_names:?})"
            )),
        );
        return None;
    }
    Some(hosts)
}

/// Gateway API hostname intersection of a route's and a listener's hostname: the more
/// specific of the two when one covers the other (`*.example.com` covers
/// `a.example.com` and `*.a.example.com`), else none.
fn intersect(route: &str, listener: &str) -> Option<String> {
    let (r, l) = (route.to_ascii_lowercase(), listener.to_ascii_lowercase());
    let covers = |wild: &str, name: &str| {
        wild.strip_prefix('*')
            .is_some_and(|suffix| name.len() > suffix.len() && name.ends_with(suffix))
    };
    if r == l || covers(&l, &r) {
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
