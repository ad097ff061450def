//! Backends resolved to (service, cluster) targets, for HTTP rules and TCP routes.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Backend, MultiClusterService, TcpRoute};
use crate::error::{ConfigError, ConfigErrorKind as K};
use crate::route_table::actions::backends::{default_cluster_name, CompiledBackends};
use crate::weighted::WeightedSet;

/// Names of the multi-cluster services; their members are the balancer's business.
pub(super) type Services = BTreeSet<String>;

pub(super) fn compile_services(
    services: &BTreeMap<String, MultiClusterService>,
) -> Result<Services, ConfigError> {
    for (name, svc) in services {
        if svc.members.is_empty() {
            return Err(ConfigError::new(
                format!("multiClusterServices.{name}.members"),
                K::NoMembers,
            ));
        }
    }
    Ok(services.keys().cloned().collect())
}

/// Resolves backends to (service, cluster) targets. A multi-cluster service without an
/// explicit cluster is left for the balancer to resolve.
pub(super) fn compile_backends(
    at: &str,
    single: Option<&Backend>,
    many: &[Backend],
    unresolved_weight: u32,
    services: &Services,
) -> Result<CompiledBackends, ConfigError> {
    if single.is_some() && !many.is_empty() {
        return Err(ConfigError::new(at, K::Exclusive("backend", "backends")));
    }
    let list: Vec<&Backend> = single.into_iter().chain(many).collect();
    if list.is_empty() {
        return Err(ConfigError::new(at, K::EmptyBackends));
    }
    let mut targets = Vec::new();
    for (i, b) in list.iter().enumerate() {
        if b.service.is_empty() {
            let bat = if single.is_some() {
                format!("{at}.backend")
            } else {
                format!("{at}.backends[{i}]")
            };
            return Err(ConfigError::new(format!("{bat}.service"), K::EmptyName));
        }
        let cluster = match &b.cluster {
            Some(c) => Some(c.clone()),
            None if services.contains(&b.service) => None,
            None => Some(default_cluster_name(&b.service, b.port)),
        };
        targets.push((b.service.clone(), cluster));
    }
    let unresolved = (unresolved_weight > 0).then_some(unresolved_weight);
    Ok(CompiledBackends {
        targets,
        weights: WeightedSet::new(list.iter().map(|b| b.weight).chain(unresolved)),
    })
}

/// A TCP route: exactly one rule of backends, without header edits.
pub(super) fn compile_tcp(
    at: &str,
    t: &TcpRoute,
    services: &Services,
) -> Result<CompiledBackends, ConfigError> {
    match t.rules.as_slice() {
        [rule] => {
            let list = rule.backend.iter().chain(&rule.backends);
            if let Some(i) = list
                .into_iter()
                .position(|b| b.request_headers.is_some() || b.response_headers.is_some())
            {
                let field = match rule.backend {
                    Some(_) => "backend".to_string(),
                    None => format!("backends[{i}]"),
                };
                return Err(ConfigError::new(
                    format!("{at}.rules[0].{field}"),
                    K::Schema("header edits apply only to HTTP backends".into()),
                ));
            }
            compile_backends(
                &format!("{at}.rules[0]"),
                rule.backend.as_ref(),
                &rule.backends,
                0,
                services,
            )
        }
        _ => Err(ConfigError::new(
            format!("{at}.rules"),
            K::Schema("a tcp route takes exactly one rule".into()),
        )),
    }
}
