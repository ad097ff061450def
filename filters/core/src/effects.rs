//! Turning an outcome into header edits, shared by the filter and the native tests so both
//! apply routing decisions the same way. Host access sits behind [`HeaderMap`].

use crate::config::NoMatch;
use crate::route_table::{HeaderEdits, Outcome, Reply, RouteTable};

/// A mutable header map: the proxy's (through host calls) or a test's.
pub trait HeaderMap {
    /// Replaces every value of `name` with `value`.
    fn set(&mut self, name: &str, value: &str);
    fn add(&mut self, name: &str, value: &str);
    fn remove(&mut self, name: &str);
}

/// What the filter does after editing the request headers.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<'t> {
    /// Let the request continue (to the chosen cluster, or to the proxy's own routing).
    Continue,
    /// Answer locally and stop the request.
    Reply(Reply<'t>),
}

/// Applies header edits in the order Gateway API defines: set, add, remove.
pub fn apply_edits(map: &mut dyn HeaderMap, edits: &HeaderEdits<'_>) {
    for (n, v) in &edits.set {
        map.set(n, v);
    }
    for (n, v) in &edits.add {
        map.add(n, v);
    }
    for n in edits.remove {
        map.remove(n);
    }
}

/// Edits the request headers for `outcome`. The routing headers are always written or
/// removed, so a value the client sent never reaches Envoy's `cluster_header` route or the
/// balancer.
pub fn apply_request<'t>(
    outcome: Outcome<'t>,
    table: &RouteTable,
    request: &mut dyn HeaderMap,
) -> Step<'t> {
    let cluster_header = table.cluster_header();
    match outcome {
        Outcome::Forward(f) => {
            match f.cluster {
                Some(cluster) => request.set(cluster_header, cluster),
                // The balancer after the router writes it.
                None => request.remove(cluster_header),
            }
            if let Some(h) = table.service_header() {
                request.set(h, f.service);
            }
            if let Some(a) = &f.authority {
                request.set(":authority", a);
            }
            if let Some(p) = &f.path {
                request.set(":path", p);
            }
            apply_edits(request, &f.request_headers);
            if let Some(b) = &f.backend_headers {
                apply_edits(request, &b.request);
            }
            // Written after the rule's edits, so no edit can choose another policy.
            match f.policy {
                Some(p) => request.set(table.policy_header(), p),
                // Without any policy the proxy has no route that reads the header.
                None if table.has_policies() => request.remove(table.policy_header()),
                None => {}
            }
            Step::Continue
        }
        Outcome::Reply(r) => Step::Reply(r),
        Outcome::NoMatch(NoMatch::NotFound) => Step::Reply(Reply {
            rule: None,
            status: 404,
            redirect: false,
            headers: Vec::new(),
            body: "no route matches\n",
        }),
        Outcome::NoMatch(NoMatch::PassThrough) => {
            request.remove(cluster_header);
            if table.has_policies() {
                request.remove(table.policy_header());
            }
            if let Some(h) = table.service_header() {
                request.remove(h);
            }
            Step::Continue
        }
    }
}

/// A header map in memory, for tests and tools: ordered, duplicate names allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VecHeaders(pub Vec<(String, Vec<u8>)>);

impl VecHeaders {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

impl HeaderMap for VecHeaders {
    fn set(&mut self, name: &str, value: &str) {
        self.remove(name);
        self.add(name, value);
    }

    fn add(&mut self, name: &str, value: &str) {
        self.0.push((name.to_string(), value.as_bytes().to_vec()));
    }

    fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| n != name);
    }
}
