//! `wasmgate explain`: how one request would be routed, from the generated config alone.

use std::fmt::Write as _;

use wasmgate_core::multicluster::{Balancer, HealthView, PickInput, WorkerState};
use wasmgate_core::{FixedRandom, Outcome, RequestView, RouteTable};

use crate::emit::Output;

/// A request to explain: method, host, path and headers.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    pub method: String,
    pub host: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The declared port of the listener the request arrives on (redirects name it).
    pub port: Option<u16>,
}

/// The probe's headers as the router reads them: lowercase names, byte values.
fn lowercase_headers(probe: &Probe) -> Vec<(String, Vec<u8>)> {
    probe
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect()
}

fn header_view(headers: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect()
}

fn request_view<'a>(
    probe: &'a Probe,
    headers: &'a [(&'a str, &'a [u8])],
    listener_port: Option<u16>,
) -> RequestView<'a> {
    RequestView {
        authority: probe.host.as_bytes(),
        path: probe.path.as_bytes(),
        method: probe.method.as_bytes(),
        headers,
        listener_port,
    }
}

/// A human-readable account of the routing decision.
pub fn explain(output: &Output, probe: &Probe) -> Result<String, String> {
    let table = RouteTable::compile(&output.router).map_err(|e| e.to_string())?;
    let headers = lowercase_headers(probe);
    let view = header_view(&headers);
    let req = request_view(probe, &view, None);
    let mut out = format!("{} {}{}\n", probe.method, probe.host, probe.path);
    let rule_text = |route: usize, rule: usize| {
        let host = output
            .router
            .routes
            .get(route)
            .and_then(|r| r.http.as_ref())
            .map_or("?", |h| h.host.as_str());
        format!("host {host:?} rule {rule} (router.json routes[{route}].http.rules[{rule}])")
    };
    match table.route(&req, &mut FixedRandom(0.0)) {
        Outcome::Forward(f) => {
            let _ = writeln!(out, "  matched {}", rule_text(f.rule.route, f.rule.rule));
            match f.cluster {
                Some(c) => {
                    let _ = writeln!(
                        out,
                        "  forward to service {} via Envoy cluster {c}",
                        f.service
                    );
                }
                None => {
                    let _ = writeln!(out, "  forward to multi-cluster service {}", f.service);
                    if let Some(b) = &output.balancer {
                        let balancer = Balancer::compile(b).map_err(|e| e.to_string())?;
                        let svc = balancer
                            .service(f.service.as_bytes())
                            .and_then(|i| balancer.selector(i));
                        if let Some(sel) = svc {
                            let _ = writeln!(
                                out,
                                "  member clusters (all healthy), first picks of one worker:"
                            );
                            let mut ws = WorkerState::new();
                            let health = HealthView::all_healthy(sel.members().len());
                            for _ in 0..sel.members().len().clamp(1, 6) {
                                let input = PickInput {
                                    headers: &view,
                                    source_address: None,
                                    affinity_key: None,
                                };
                                match sel.pick(&input, &health, &mut ws, &mut FixedRandom(0.0)) {
                                    Ok(p) => {
                                        let _ =
                                            writeln!(out, "    -> {} ({:?})", p.cluster, p.reason);
                                    }
                                    Err(e) => {
                                        let _ = writeln!(out, "    -> none: {e:?}");
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if let Some(a) = &f.authority {
                let _ = writeln!(out, "  rewrite :authority to {a}");
            }
            if let Some(p) = &f.path {
                let _ = writeln!(out, "  rewrite :path to {p}");
            }
        }
        Outcome::Reply(r) => {
            match r.rule {
                Some(at) => {
                    let _ = writeln!(out, "  matched {}", rule_text(at.route, at.rule));
                }
                None => {
                    let _ = writeln!(out, "  no rule applies");
                }
            }
            let _ = writeln!(
                out,
                "  answer {} locally{}",
                r.status,
                if r.body.is_empty() {
                    String::new()
                } else {
                    format!(": {:?}", r.body)
                }
            );
            for (k, v) in &r.headers {
                let _ = writeln!(out, "  with {k}: {v}");
            }
        }
        Outcome::NoMatch(n) => {
            let _ = writeln!(
                out,
                "  no rule matches: {n:?} (404 unless noMatch is passThrough)"
            );
        }
    }
    Ok(out)
}

/// What the router decides for one request, as owned data (the conformance runner compares
/// it with what host-sim and Envoy do).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Forward {
        service: String,
        /// `None`: a multi-cluster service, whose member the balancer picks.
        cluster: Option<String>,
        authority: Option<String>,
        path: Option<String>,
        /// The rule's edits, then the picked backend's, applied in that order.
        request_headers: Vec<Edits>,
        response_headers: Vec<Edits>,
    },
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// No rule matches: 404 unless the config passes such requests through.
    NoMatch,
}

/// Header edits the router asks of the proxy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Edits {
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
}

fn edits(e: &wasmgate_core::route_table::HeaderEdits<'_>) -> Edits {
    let own = |l: &[(&str, std::borrow::Cow<'_, str>)]| {
        l.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    Edits {
        set: own(&e.set),
        add: own(&e.add),
        remove: e.remove.to_vec(),
    }
}

/// The router's decision for `probe` under `router` (weighted choices take the first share).
pub fn decide(
    router: &wasmgate_core::config::RouterConfig,
    probe: &Probe,
) -> Result<Decision, String> {
    decide_with(router, probe, &mut FixedRandom(0.0))
}

/// Like [`decide`], drawing weighted choices from `rng` (to see every share of a split).
pub fn decide_with(
    router: &wasmgate_core::config::RouterConfig,
    probe: &Probe,
    rng: &mut dyn wasmgate_core::Random,
) -> Result<Decision, String> {
    let table = RouteTable::compile(router).map_err(|e| e.to_string())?;
    let headers = lowercase_headers(probe);
    let view = header_view(&headers);
    let req = request_view(probe, &view, probe.port);
    Ok(match table.route(&req, rng) {
        Outcome::Forward(f) => Decision::Forward {
            service: f.service.to_string(),
            cluster: f.cluster.map(str::to_string),
            authority: f.authority.map(|a| a.to_string()),
            path: f.path.clone(),
            request_headers: std::iter::once(&f.request_headers)
                .chain(f.backend_headers.as_ref().map(|b| &b.request))
                .map(edits)
                .collect(),
            response_headers: std::iter::once(&f.response_headers)
                .chain(f.backend_headers.as_ref().map(|b| &b.response))
                .map(edits)
                .collect(),
        },
        Outcome::Reply(r) => Decision::Reply {
            status: r.status,
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: r.body.to_string(),
        },
        Outcome::NoMatch(_) => Decision::NoMatch,
    })
}
