//! A forwarding rule's weighted backends, resolved to (service, cluster) targets.

use crate::request::Random;
use crate::weighted::WeightedSet;

#[derive(Debug)]
pub(crate) struct CompiledBackends {
    /// (service, Envoy cluster); no cluster for a multi-cluster service.
    pub(crate) targets: Vec<(String, Option<String>)>,
    /// One weight per target, then the unresolved share (when there is one).
    pub(crate) weights: WeightedSet,
}

/// What a weighted pick lands on.
pub(crate) enum Picked<'t> {
    /// The index of the target, its service and cluster.
    Target(usize, &'t str, Option<&'t str>),
    /// The share of backends the configuration could not resolve.
    Unresolved,
    /// Every weight is zero.
    Nothing,
}

impl CompiledBackends {
    pub(crate) fn pick(&self, rng: &mut dyn Random) -> Picked<'_> {
        let Some(i) = self.weights.pick(rng) else {
            return Picked::Nothing;
        };
        match self.targets.get(i) {
            Some((s, c)) => Picked::Target(i, s.as_str(), c.as_deref()),
            None => Picked::Unresolved,
        }
    }
}

/// The cluster a backend without an explicit `cluster` is reached through.
pub fn default_cluster_name(service: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{service}_{p}"),
        None => service.to_string(),
    }
}
