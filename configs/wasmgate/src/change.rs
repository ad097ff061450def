//! What changed between two generated configs, in the words an operator uses: rules added,
//! removed or changed per host, member clusters added or removed per service, weights.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use wasmgate_core::config::{HttpRule, RouterConfig};

/// A rule's identity is what it matches; what it does may change.
fn rule_key(r: &HttpRule) -> String {
    serde_json::json!({"path": r.path, "matches": r.matches}).to_string()
}

fn rules_by_host(c: &RouterConfig) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for h in c.routes.iter().filter_map(|r| r.http.as_ref()) {
        let rules = out.entry(h.host.clone()).or_default();
        for r in &h.rules {
            rules.insert(rule_key(r), serde_json::to_value(r).unwrap_or(Value::Null));
        }
    }
    for t in c.routes.iter().filter_map(|r| r.tcp.as_ref()) {
        out.entry(format!("tcp:{}", t.port)).or_default().insert(
            String::new(),
            serde_json::to_value(&t.rules).unwrap_or(Value::Null),
        );
    }
    out
}

/// Member cluster name -> weight, per multi-cluster service.
fn members(c: &RouterConfig) -> BTreeMap<String, BTreeMap<String, u32>> {
    c.multi_cluster_services
        .iter()
        .map(|(s, m)| {
            (
                s.clone(),
                m.members
                    .iter()
                    .map(|m| (m.name.clone(), m.weight))
                    .collect(),
            )
        })
        .collect()
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// One phrase per host or service that changed; empty when routing is the same.
pub fn describe(old: &RouterConfig, new: &RouterConfig) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b) = (rules_by_host(old), rules_by_host(new));
    let empty = BTreeMap::new();
    let hosts: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for host in hosts {
        let (ra, rb) = (a.get(host).unwrap_or(&empty), b.get(host).unwrap_or(&empty));
        let added = rb.keys().filter(|k| !ra.contains_key(*k)).count();
        let removed = ra.keys().filter(|k| !rb.contains_key(*k)).count();
        let changed = ra
            .iter()
            .filter(|(k, v)| rb.get(*k).is_some_and(|w| w != *v))
            .count();
        let mut parts = Vec::new();
        if !a.contains_key(host) {
            parts.push("new host".to_string());
        } else if !b.contains_key(host) {
            parts.push("host removed".to_string());
        }
        if added > 0 {
            parts.push(format!("+{}", count(added, "rule")));
        }
        if removed > 0 {
            parts.push(format!("-{}", count(removed, "rule")));
        }
        if changed > 0 {
            parts.push(format!("{} changed", count(changed, "rule")));
        }
        if !parts.is_empty() {
            out.push(format!("{host}: {}", parts.join(", ")));
        }
    }
    let (ma, mb) = (members(old), members(new));
    let services: BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
    let none = BTreeMap::new();
    for s in services {
        let (xa, xb) = (ma.get(s).unwrap_or(&none), mb.get(s).unwrap_or(&none));
        let mut parts: Vec<String> = Vec::new();
        parts.extend(
            xb.keys()
                .filter(|m| !xa.contains_key(*m))
                .map(|m| format!("+{m}")),
        );
        parts.extend(
            xa.keys()
                .filter(|m| !xb.contains_key(*m))
                .map(|m| format!("-{m}")),
        );
        parts.extend(xa.iter().filter_map(|(m, w)| {
            let w2 = xb.get(m)?;
            (w2 != w).then(|| format!("{m} weight {w}->{w2}"))
        }));
        if !parts.is_empty() {
            out.push(format!("service {s}: members {}", parts.join(" ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> RouterConfig {
        serde_json::from_str(json).unwrap()
    }

    const BASE: &str = r#"{"routes": [{"http": {"host": "a.com", "rules": [
        {"path": "/", "backend": {"service": "x", "cluster": "x_80"}},
        {"path": "/b", "backend": {"service": "x", "cluster": "x_80"}}]}}],
      "multiClusterServices": {"shop": {"members": [
        {"name": "us", "cluster": "shop_80.us", "weight": 1},
        {"name": "eu", "cluster": "shop_80.eu", "weight": 1}]}}}"#;

    #[test]
    fn describes_rules_members_and_weights_that_changed() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("same", BASE, &[]),
            (
                "rule added, one changed",
                r#"{"routes": [{"http": {"host": "a.com", "rules": [
                    {"path": "/", "backend": {"service": "y", "cluster": "y_80"}},
                    {"path": "/b", "backend": {"service": "x", "cluster": "x_80"}},
                    {"path": "/c", "backend": {"service": "x", "cluster": "x_80"}}]}}],
                  "multiClusterServices": {"shop": {"members": [
                    {"name": "us", "cluster": "shop_80.us", "weight": 1},
                    {"name": "eu", "cluster": "shop_80.eu", "weight": 1}]}}}"#,
                &["a.com: +1 rule, 1 rule changed"],
            ),
            (
                "new host, member removed, weight changed",
                r#"{"routes": [{"http": {"host": "a.com", "rules": [
                    {"path": "/", "backend": {"service": "x", "cluster": "x_80"}},
                    {"path": "/b", "backend": {"service": "x", "cluster": "x_80"}}]}},
                    {"http": {"host": "b.com", "rules": [{"path": "/", "statusCode": {"code": 204}}]}}],
                  "multiClusterServices": {"shop": {"members": [
                    {"name": "us", "cluster": "shop_80.us", "weight": 3},
                    {"name": "ap", "cluster": "shop_80.ap", "weight": 1}]}}}"#,
                &[
                    "b.com: new host, +1 rule",
                    "service shop: members +ap -eu us weight 1->3",
                ],
            ),
        ];
        for (name, new, want) in cases {
            assert_eq!(describe(&config(BASE), &config(new)), *want, "{name}");
        }
    }
}
