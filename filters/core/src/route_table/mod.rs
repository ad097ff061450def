//! The compiled route table: built once at configure time (`compile`), consulted once per
//! request ([`RouteTable::route`]).
//!
//! A lookup finds the host ([`matchers::host`]: exact, then the longest wildcard, then the
//! catch-all), then the rule through that host's path index (`matchers::path`), whose
//! candidates are kept in Gateway API precedence (`precedence`), and runs the rule's one
//! action (`actions`) into an [`Outcome`].

mod actions;
pub use actions::{bucket, cors};
mod compile;
pub mod matchers;
mod outcome;
mod precedence;

use std::collections::HashMap;

use crate::config::{NoMatch, RouterConfig};
use crate::error::ConfigError;
use crate::request::{split_query, Random, RequestView};

use actions::backends::{CompiledBackends, Picked};
use actions::{CompiledRule, Matched};
use matchers::host::{parse_authority, HostIndex};
use matchers::path::PathIndex;

pub use actions::backends::default_cluster_name;
pub use outcome::{
    BackendEdits, Forward, HeaderEdits, Outcome, Reply, RuleRef, TcpOutcome, INVALID_AUTHORITY,
};

#[derive(Debug)]
pub struct RouteTable {
    /// Host pattern -> index into `host_rules`: a small map probes faster than one holding
    /// the rules inline.
    hosts: HostIndex<u32>,
    host_rules: Vec<PathIndex>,
    rules: Vec<CompiledRule>,
    tcp: HashMap<u16, CompiledBackends>,
    header_names: Vec<String>,
    needs_method: bool,
    no_match: NoMatch,
    cluster_header: String,
    service_header: Option<String>,
    policy_header: String,
    listener_ports: HashMap<u16, u16>,
    needs_listener_port: bool,
    has_policies: bool,
    clear_route_cache: bool,
}

impl RouteTable {
    /// Parses and compiles a router configuration; the whole config or nothing.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let config: RouterConfig = crate::error::from_json(bytes)?;
        Self::compile(&config)
    }

    pub fn compile(config: &RouterConfig) -> Result<Self, ConfigError> {
        compile::compile(config)
    }
    /// Headers (lower-case) that some rule reads, beyond `:authority`, `:path`, `:method`.
    pub fn header_names(&self) -> &[String] {
        &self.header_names
    }

    /// Whether any rule matches on the method.
    pub fn needs_method(&self) -> bool {
        self.needs_method
    }

    pub fn cluster_header(&self) -> &str {
        &self.cluster_header
    }

    /// The header that carries a rule's `policy` to the proxy's route table.
    pub fn policy_header(&self) -> &str {
        &self.policy_header
    }

    /// Whether some rule has a `policy` (only then the router writes or strips the header).
    pub fn has_policies(&self) -> bool {
        self.has_policies
    }

    /// Whether some rule (a redirect) needs [`RequestView::listener_port`].
    pub fn needs_listener_port(&self) -> bool {
        self.needs_listener_port
    }

    pub fn clear_route_cache(&self) -> bool {
        self.clear_route_cache
    }

    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// The cluster for a new TCP connection on `port`; `None` when no route takes the port
    /// or every backend weight is zero.
    pub fn route_tcp(&self, port: u16, rng: &mut dyn Random) -> TcpOutcome<'_> {
        match self.tcp.get(&port).map(|b| b.pick(rng)) {
            None | Some(Picked::Nothing | Picked::Unresolved) => TcpOutcome::NoRoute,
            Some(Picked::Target(_, _, Some(cluster))) => TcpOutcome::Cluster(cluster),
            Some(Picked::Target(_, service, None)) => TcpOutcome::Delegate(service),
        }
    }

    /// The header naming the chosen service for the balancer, when any backend is a
    /// multi-cluster service (otherwise the router never writes it).
    pub fn service_header(&self) -> Option<&str> {
        self.service_header.as_deref()
    }

    /// Routes one request.
    pub fn route<'t>(&'t self, req: &RequestView<'_>, rng: &mut dyn Random) -> Outcome<'t> {
        let host = match parse_authority(req.authority) {
            Ok(host) => host,
            // Never a different host: `foo.com:80:80` is refused, not looked up as `foo.com:80`.
            Err(_) => return Outcome::Reply(INVALID_AUTHORITY),
        };
        let (path, query) = split_query(req.path);
        let found = self.hosts.find_map(&host, |&i| {
            self.host_rules.get(i as usize)?.find(path, query, req)
        });
        let Some((candidate, captures)) = found else {
            return Outcome::NoMatch(self.no_match);
        };
        let Some(rule) = self.rules.get(candidate.rule) else {
            return Outcome::NoMatch(self.no_match);
        };
        let matched = Matched {
            req,
            host: &host,
            path,
            query,
            prefix_len: candidate.prefix_len,
            captures: &captures,
        };
        rule.act(&matched, &self.listener_ports, rng)
    }
}
