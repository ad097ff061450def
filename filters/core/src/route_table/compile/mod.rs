//! Compiling a router configuration into a [`RouteTable`]: every check runs here, once, at
//! configure time, and a config that fails anywhere is refused whole. The lookup
//! (`super::RouteTable::route`) never meets an invalid rule.

mod backends;
mod checks;
mod matches;
mod rule;

use std::collections::{BTreeSet, HashMap};

use crate::config::{HttpRoute, RouterConfig};
use crate::error::{ConfigError, ConfigErrorKind as K};
use crate::regex_budget::RegexBudget;

use super::actions::CompiledRule;
use super::matchers::host::{HostIndex, HostPattern};
use super::matchers::path::PathIndex;
use super::outcome::RuleRef;
use super::RouteTable;
use backends::{compile_services, compile_tcp, Services};
use checks::check_header_name;

/// What the rules compiled so far add up to, beyond their own indexes.
#[derive(Default)]
struct Compiler {
    rules: Vec<CompiledRule>,
    regexes: RegexBudget,
    /// Headers some rule reads: the router reads only these.
    header_names: BTreeSet<String>,
    needs_method: bool,
    needs_listener_port: bool,
    has_policies: bool,
    /// The next match's place in the configuration: precedence's last tie-breaker.
    order: usize,
}

pub(super) fn compile(config: &RouterConfig) -> Result<RouteTable, ConfigError> {
    let mut c = Compiler::default();
    let err = |path: String, kind| ConfigError::new(path, kind);
    check_header_name(&config.cluster_header).map_err(|k| err("clusterHeader".into(), k))?;
    check_header_name(&config.service_header).map_err(|k| err("serviceHeader".into(), k))?;
    check_header_name(&config.policy_header).map_err(|k| err("policyHeader".into(), k))?;
    let services = compile_services(&config.multi_cluster_services)?;
    let mut hosts = HostIndex::default();
    let mut host_rules = Vec::new();
    let mut tcp = HashMap::new();
    for (ri, route) in config.routes.iter().enumerate() {
        let at = format!("routes[{ri}]");
        match (&route.http, &route.tcp) {
            (Some(http), None) => {
                let pattern = HostPattern::parse(&http.host)
                    .map_err(|k| err(format!("{at}.http.host"), k))?;
                let rules = c.compile_host(ri, http, &services)?;
                let index = u32::try_from(host_rules.len()).unwrap_or(u32::MAX);
                host_rules.push(rules);
                if !hosts.insert(pattern, index) {
                    return Err(err(
                        format!("{at}.http.host"),
                        K::DuplicateHost(http.host.clone()),
                    ));
                }
            }
            (None, Some(t)) => {
                let backends = compile_tcp(&format!("{at}.tcp"), t, &services)?;
                if tcp.insert(t.port, backends).is_some() {
                    return Err(err(format!("{at}.tcp.port"), K::DuplicateTcpPort(t.port)));
                }
            }
            _ => return Err(err(at, K::RouteKind)),
        }
    }
    Ok(RouteTable {
        hosts,
        host_rules,
        rules: c.rules,
        tcp,
        header_names: c.header_names.into_iter().collect(),
        needs_method: c.needs_method,
        no_match: config.no_match,
        cluster_header: config.cluster_header.to_ascii_lowercase(),
        service_header: (!config.multi_cluster_services.is_empty())
            .then(|| config.service_header.to_ascii_lowercase()),
        policy_header: config.policy_header.to_ascii_lowercase(),
        listener_ports: config
            .listener_ports
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect(),
        needs_listener_port: c.needs_listener_port,
        has_policies: c.has_policies,
        clear_route_cache: config.clear_route_cache,
    })
}

impl Compiler {
    /// One host's rules, in its own path index.
    fn compile_host(
        &mut self,
        ri: usize,
        http: &HttpRoute,
        services: &Services,
    ) -> Result<PathIndex, ConfigError> {
        let mut paths = PathIndex::default();
        for (ui, rule) in http.rules.iter().enumerate() {
            let at = format!("routes[{ri}].http.rules[{ui}]");
            let rref = RuleRef {
                route: ri,
                rule: ui,
            };
            self.compile_rule(&at, rref, rule, services, &mut paths)?;
        }
        paths.sort_by_precedence();
        Ok(paths)
    }
}
