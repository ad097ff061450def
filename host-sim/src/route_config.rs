//! Envoy's HTTP route table: virtual hosts matched on `:authority`, routes matched on the
//! path, and the action that names the upstream cluster.

use std::time::Duration;

use crate::headers::HeaderMap;
use crate::state::RouteInfo;

/// How a route matches the path.
#[derive(Clone, Debug, PartialEq)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    /// `path_separated_prefix`: `/foo` matches `/foo`, `/foo/...`, never `/foobar`.
    SeparatedPrefix(String),
}

impl PathMatch {
    fn matches(&self, path: &[u8]) -> bool {
        let path = path.split(|b| *b == b'?').next().unwrap_or(path);
        match self {
            PathMatch::Prefix(p) => path.starts_with(p.as_bytes()),
            PathMatch::Exact(p) => path == p.as_bytes(),
            PathMatch::SeparatedPrefix(p) => {
                path.starts_with(p.as_bytes()) && matches!(path.get(p.len()), None | Some(b'/'))
            }
        }
    }
}

/// What a matched route does.
#[derive(Clone, Debug, PartialEq)]
pub enum RouteAction {
    Cluster(String),
    /// The cluster named by this request header (read after the filters ran).
    ClusterHeader(String),
    DirectResponse {
        status: u16,
        body: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub name: String,
    pub path: PathMatch,
    /// Header presence/value conditions: `(name, Some(exact))` or `(name, None)` = present.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub action: RouteAction,
    /// Route timeout (Envoy's default is 15 s).
    pub timeout: Duration,
    /// Request headers removed before the request goes upstream (`request_headers_to_remove`).
    pub remove_request_headers: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VirtualHost {
    pub name: String,
    pub domains: Vec<String>,
    pub routes: Vec<Route>,
}

/// A route configuration plus the status Envoy's router answers for unknown clusters.
#[derive(Clone, Debug, PartialEq)]
pub struct Routes {
    pub virtual_hosts: Vec<VirtualHost>,
    /// Status for a missing or unknown cluster: Envoy's `cluster_not_found_response_code`,
    /// SERVICE_UNAVAILABLE (503) unless configured.
    pub cluster_not_found_status: u16,
    pub ignore_port_in_host_matching: bool,
}

/// The router's decision for one request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Decision {
    /// No route matched; the virtual host that matched, if one did.
    NoRoute { virtual_host: Option<String> },
    Cluster {
        info: RouteInfo,
        cluster: String,
        timeout: Duration,
        remove_headers: Vec<String>,
    },
    /// cluster_header with the header absent (Envoy then looks up an empty cluster name).
    NoCluster { info: RouteInfo },
    Direct {
        info: RouteInfo,
        status: u16,
        body: Vec<u8>,
    },
}

impl Decision {
    pub fn info(&self) -> Option<RouteInfo> {
        match self {
            Decision::NoRoute { .. } => None,
            Decision::Cluster { info, .. }
            | Decision::NoCluster { info }
            | Decision::Direct { info, .. } => Some(info.clone()),
        }
    }

    /// The virtual host that matched, with or without a route (Envoy's stream info keeps
    /// it either way).
    pub fn virtual_host(&self) -> Option<String> {
        match self {
            Decision::NoRoute { virtual_host } => virtual_host.clone(),
            Decision::Cluster { info, .. }
            | Decision::NoCluster { info }
            | Decision::Direct { info, .. } => Some(info.virtual_host.clone()),
        }
    }
}

impl Routes {
    fn single(action: RouteAction) -> Routes {
        Routes {
            virtual_hosts: vec![VirtualHost {
                name: "all".into(),
                domains: vec!["*".into()],
                routes: vec![Route {
                    name: String::new(),
                    path: PathMatch::Prefix("/".into()),
                    headers: Vec::new(),
                    action,
                    timeout: Duration::from_secs(15),
                    remove_request_headers: Vec::new(),
                }],
            }],
            cluster_not_found_status: 503,
            ignore_port_in_host_matching: false,
        }
    }

    /// One catch-all route whose cluster is named by request header `header`.
    pub fn cluster_header(header: &str) -> Routes {
        Self::single(RouteAction::ClusterHeader(header.to_ascii_lowercase()))
    }

    /// One catch-all route to a fixed cluster.
    pub fn fixed(cluster: &str) -> Routes {
        Self::single(RouteAction::Cluster(cluster.to_string()))
    }

    pub fn empty() -> Routes {
        Routes {
            virtual_hosts: Vec::new(),
            cluster_not_found_status: 503,
            ignore_port_in_host_matching: false,
        }
    }

    /// Resolves the route for `headers`, as Envoy's `RouteMatcher` does.
    pub(crate) fn resolve(&self, headers: &HeaderMap) -> Decision {
        let authority = headers.get(":authority").unwrap_or_default();
        let host = String::from_utf8_lossy(authority).to_ascii_lowercase();
        let Some(vh) = self.pick_vhost(&host) else {
            return Decision::NoRoute { virtual_host: None };
        };
        let path = headers.get(":path").unwrap_or_default();
        let Some(route) = vh.routes.iter().find(|r| {
            r.path.matches(path)
                && r.headers
                    .iter()
                    .all(|(k, want)| match (headers.get(k), want) {
                        (Some(got), Some(want)) => got == want.as_slice(),
                        (got, None) => got.is_some(),
                        (None, Some(_)) => false,
                    })
        }) else {
            return Decision::NoRoute {
                virtual_host: Some(vh.name.clone()),
            };
        };
        let mut info = RouteInfo {
            route_name: route.name.clone(),
            virtual_host: vh.name.clone(),
            cluster: None,
        };
        match &route.action {
            RouteAction::Cluster(c) => {
                info.cluster = Some(c.clone());
                Decision::Cluster {
                    info,
                    cluster: c.clone(),
                    timeout: route.timeout,
                    remove_headers: route.remove_request_headers.clone(),
                }
            }
            RouteAction::ClusterHeader(h) => match headers.get(h) {
                Some(v) if !v.is_empty() => {
                    let c = String::from_utf8_lossy(v).into_owned();
                    info.cluster = Some(c.clone());
                    Decision::Cluster {
                        info,
                        cluster: c,
                        timeout: route.timeout,
                        remove_headers: route.remove_request_headers.clone(),
                    }
                }
                _ => Decision::NoCluster { info },
            },
            RouteAction::DirectResponse { status, body } => Decision::Direct {
                info,
                status: *status,
                body: body.clone(),
            },
        }
    }

    /// Envoy's domain precedence: exact, then longest suffix wildcard (`*.x`), then longest
    /// prefix wildcard (`x.*`), then `*`. Like Envoy by default, the port stays part of the
    /// host unless `ignore_port_in_host_matching` is set.
    fn pick_vhost(&self, host: &str) -> Option<&VirtualHost> {
        let host = match host.rsplit_once(':') {
            Some((h, p))
                if self.ignore_port_in_host_matching && p.bytes().all(|b| b.is_ascii_digit()) =>
            {
                h
            }
            _ => host,
        };
        let mut best: Option<((u8, usize), &VirtualHost)> = None;
        for vh in &self.virtual_hosts {
            for d in &vh.domains {
                let d = d.to_ascii_lowercase();
                let score = if d == host {
                    Some((3, d.len()))
                } else if d == "*" {
                    Some((0, 0))
                } else if let Some(suffix) = d.strip_prefix('*') {
                    (suffix.len() < host.len() && host.ends_with(suffix)).then_some((2, d.len()))
                } else if let Some(prefix) = d.strip_suffix('*') {
                    (prefix.len() < host.len() && host.starts_with(prefix)).then_some((1, d.len()))
                } else {
                    None
                };
                if let Some(score) = score {
                    if best.is_none_or(|(b, _)| score > b) {
                        best = Some((score, vh));
                    }
                }
            }
        }
        best.map(|(_, vh)| vh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vh(name: &str, domains: &[&str]) -> VirtualHost {
        VirtualHost {
            name: name.into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            routes: vec![Route {
                name: name.into(),
                path: PathMatch::Prefix("/".into()),
                headers: vec![],
                action: RouteAction::Cluster(name.into()),
                timeout: Duration::from_secs(15),
                remove_request_headers: Vec::new(),
            }],
        }
    }

    #[test]
    fn domain_precedence_follows_envoy() {
        let routes = Routes {
            virtual_hosts: vec![
                vh("any", &["*"]),
                vh("suffix", &["*.example.com"]),
                vh("longer", &["*.a.example.com"]),
                vh("exact", &["a.example.com"]),
                vh("prefix", &["api.*"]),
            ],
            cluster_not_found_status: 503,
            ignore_port_in_host_matching: false,
        };
        let cases = [
            ("a.example.com", "exact"),
            ("A.Example.com", "exact"),
            ("a.example.com:8080", "any"),
            ("b.a.example.com", "longer"),
            ("b.example.com", "suffix"),
            ("api.other.org", "prefix"),
            ("other.org", "any"),
        ];
        for (host, want) in cases {
            let h = HeaderMap::from_pairs([(":authority", host), (":path", "/")]);
            match routes.resolve(&h) {
                Decision::Cluster { cluster, .. } => assert_eq!(cluster, want, "{host}"),
                d => panic!("{host}: {d:?}"),
            }
        }
    }

    #[test]
    fn path_matchers() {
        let cases = [
            (PathMatch::Prefix("/foo".into()), "/foobar", true),
            (PathMatch::SeparatedPrefix("/foo".into()), "/foobar", false),
            (PathMatch::SeparatedPrefix("/foo".into()), "/foo/bar", true),
            (PathMatch::SeparatedPrefix("/foo".into()), "/foo?x=1", true),
            (PathMatch::Exact("/foo".into()), "/foo?x", true),
            (PathMatch::Exact("/foo".into()), "/foo/", false),
        ];
        for (m, path, want) in cases {
            assert_eq!(m.matches(path.as_bytes()), want, "{m:?} {path}");
        }
    }

    #[test]
    fn cluster_header_reads_the_header() {
        let r = Routes::cluster_header("X-Cluster");
        let h = HeaderMap::from_pairs([(":authority", "a"), (":path", "/"), ("x-cluster", "east")]);
        assert!(matches!(r.resolve(&h), Decision::Cluster { cluster, .. } if cluster == "east"));
        let h = HeaderMap::from_pairs([(":authority", "a"), (":path", "/")]);
        assert!(matches!(r.resolve(&h), Decision::NoCluster { .. }));
    }
}
