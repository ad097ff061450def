//! Namespaces as Gateway API uses them: which namespaces' routes a listener admits
//! (`allowedRoutes.namespaces`: `Same`, `All`, or `Selector` over Namespace labels), and
//! which references across namespaces a ReferenceGrant permits.

use crate::listeners::namespace_of;
use crate::load::Inputs;
use crate::model::{Gateway, LabelSelector, Listener};

/// Whether `listener` of `gateway` admits HTTPRoutes from namespace `route_ns`.
pub fn allows(inputs: &Inputs, listener: &Listener, gateway: &Gateway, route_ns: &str) -> bool {
    let allowed = listener.allowed_routes.as_ref();
    let kinds_ok = allowed.is_none_or(|a| {
        a.kinds.is_empty()
            || a.kinds.iter().any(|k| {
                k.kind == "HTTPRoute"
                    && k.group
                        .as_deref()
                        .is_none_or(|g| g == "gateway.networking.k8s.io")
            })
    });
    if !kinds_ok {
        return false;
    }
    let from = allowed.and_then(|a| a.namespaces.as_ref());
    match from.and_then(|n| n.from.as_deref()).unwrap_or("Same") {
        "All" => true,
        "Selector" => {
            let selector = from.and_then(|n| n.selector.clone()).unwrap_or_default();
            let mut labels = inputs
                .namespaces
                .iter()
                .find(|n| n.value.metadata.name == route_ns)
                .map(|n| n.value.metadata.labels.clone())
                .unwrap_or_default();
            // Kubernetes labels every namespace with its own name.
            labels.insert("kubernetes.io/metadata.name".into(), route_ns.into());
            selects(&selector, &labels)
        }
        _ => namespace_of(gateway.metadata.namespace.as_deref()) == route_ns,
    }
}

/// Kubernetes label selector semantics: every matchLabels pair and every expression holds.
pub fn selects(
    selector: &LabelSelector,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    selector
        .match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
        && selector
            .match_expressions
            .iter()
            .all(|e| match e.operator.as_str() {
                "In" => labels.get(&e.key).is_some_and(|v| e.values.contains(v)),
                "NotIn" => labels.get(&e.key).is_none_or(|v| !e.values.contains(v)),
                "Exists" => labels.contains_key(&e.key),
                "DoesNotExist" => !labels.contains_key(&e.key),
                _ => false,
            })
}

/// Whether a ReferenceGrant in `to_ns` lets a `from_kind` in `from_ns` refer to the object
/// `(to_group, to_kind, name)`.
pub fn granted(
    inputs: &Inputs,
    from_ns: &str,
    from_kind: &str,
    to_ns: &str,
    to_group: &str,
    to_kind: &str,
    name: &str,
) -> bool {
    fn core(g: &str) -> &str {
        if g == "core" {
            ""
        } else {
            g
        }
    }
    inputs.reference_grants.iter().any(|g| {
        let spec = &g.value.spec;
        namespace_of(g.value.metadata.namespace.as_deref()) == to_ns
            && spec.from.iter().any(|f| {
                f.group == "gateway.networking.k8s.io"
                    && f.kind == from_kind
                    && f.namespace == from_ns
            })
            && spec.to.iter().any(|t| {
                core(&t.group) == core(to_group)
                    && t.kind == to_kind
                    && t.name.as_deref().is_none_or(|n| n == name)
            })
    })
}
