//! High-availability defaults: what every generated multi-cluster service gets unless a
//! policy says otherwise, in the balancer's config and in Envoy's.
//!
//! The layers, and why each is there:
//! - the balancer's passive ejection (consecutive 5xx, resets, and first attempts Envoy had
//!   to retry), shared by every worker: a dead member stops being picked after a handful of
//!   requests;
//! - the balancer's active checks where a health path is known: a recovered member is back
//!   at its first passing check, which also ends a passive ejection;
//! - Envoy's retry of a failed connect, a refused stream or (for idempotent methods) a reset,
//!   through a per-member aggregate cluster whose next priority is another member: a retry
//!   in a plain member cluster would stay in the dead member, so the request the balancer
//!   steered there would be lost;
//! - Envoy's own health checks and outlier detection inside each member cluster, for members
//!   with several endpoints; outlier detection never ejects more than half of a member's
//!   endpoints, so a member that is wholly down stays the balancer's to see.

use std::collections::BTreeMap;

use wasmgate_core::config::{ActiveHealth, HealthPolicy, Member, PassiveHealth};

/// Active checks: fast enough that a recovered member is back within a second.
pub const CHECK_INTERVAL_MS: u64 = 500;
pub const CHECK_TIMEOUT_MS: u64 = 400;
pub const CHECK_UNHEALTHY_THRESHOLD: u32 = 2;
pub const CHECK_HEALTHY_THRESHOLD: u32 = 1;
/// Passive ejection: three consecutive failures; retries make the re-probe after an ejection
/// cheap, so the first ejection is shorter than Envoy's 30 s.
pub const EJECT_CONSECUTIVE_ERRORS: u32 = 3;
pub const EJECT_BASE_MS: u64 = 10_000;
pub const EJECT_MAX_MS: u64 = 120_000;
/// Retries after the first attempt: each goes to another member, at most this many.
pub const MAX_RETRIES: usize = 3;
/// Methods whose requests may be retried after a reset (RFC 9110 idempotent methods).
pub const IDEMPOTENT_METHODS: [&str; 6] = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"];

/// The health policy a generated service gets: passive ejection always, active checks when
/// a health path is known.
pub fn default_health(health_path: Option<&str>) -> HealthPolicy {
    HealthPolicy {
        active: health_path.map(|path| ActiveHealth {
            path: path.to_string(),
            host: None,
            interval_ms: CHECK_INTERVAL_MS,
            timeout_ms: CHECK_TIMEOUT_MS,
            healthy_threshold: CHECK_HEALTHY_THRESHOLD,
            unhealthy_threshold: CHECK_UNHEALTHY_THRESHOLD,
        }),
        passive: Some(PassiveHealth {
            consecutive_errors: EJECT_CONSECUTIVE_ERRORS,
            base_ejection_ms: EJECT_BASE_MS,
            max_ejection_ms: EJECT_MAX_MS,
            ..PassiveHealth::default()
        }),
        ..HealthPolicy::default()
    }
}

/// The aggregate cluster that fronts `member`: `<member cluster>.failover`.
pub fn failover_cluster_name(member_cluster: &str) -> String {
    format!("{member_cluster}.failover")
}

fn label<'a>(labels: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    labels
        .get(key)
        .or_else(|| labels.get(&format!("topology.kubernetes.io/{key}")))
        .map(String::as_str)
}

/// The order a request steered to `members[primary]` falls over in: the primary, then the
/// others nearest first (same zone, same region, anywhere), as seen from the proxy's own
/// locality when known, else from the primary's; ties by name.
pub fn failover_order<'m>(
    members: &'m [Member],
    primary: usize,
    proxy: Option<(&str, Option<&str>)>,
) -> Vec<&'m Member> {
    let Some(first) = members.get(primary) else {
        return Vec::new();
    };
    let (region, zone) = match proxy {
        Some((r, z)) => (Some(r), z),
        None => (label(&first.labels, "region"), label(&first.labels, "zone")),
    };
    let tier = |m: &Member| {
        let same = |key: &str, want: Option<&str>| want.is_some() && label(&m.labels, key) == want;
        if same("zone", zone) {
            0
        } else if same("region", region) {
            1
        } else {
            2
        }
    };
    let mut rest: Vec<&Member> = members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != primary)
        .map(|(_, m)| m)
        .collect();
    rest.sort_by(|a, b| (tier(a), &a.name).cmp(&(tier(b), &b.name)));
    std::iter::once(first).chain(rest).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, region: &str, zone: &str) -> Member {
        Member {
            name: name.into(),
            cluster: format!("shop_80.{name}"),
            failover_cluster: None,
            weight: 1,
            labels: BTreeMap::from([
                ("region".to_string(), region.to_string()),
                ("zone".to_string(), zone.to_string()),
            ]),
        }
    }

    #[test]
    fn a_member_falls_over_to_the_nearest_members_first() {
        let members = [
            member("eu", "eu", "eu-1"),
            member("us-a", "us", "us-1"),
            member("us-b", "us", "us-2"),
            member("ap", "ap", "ap-1"),
        ];
        let names = |order: Vec<&Member>| order.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        // (primary, the proxy's region and zone, the order)
        type Case<'a> = (usize, Option<(&'a str, Option<&'a str>)>, [&'a str; 4]);
        let cases: [Case; 3] = [
            // From the primary's own locality: its region first.
            (1, None, ["us-a", "us-b", "ap", "eu"]),
            // From the proxy's: its region first, whatever the primary.
            (0, Some(("us", Some("us-2"))), ["eu", "us-b", "us-a", "ap"]),
            (3, Some(("eu", None)), ["ap", "eu", "us-a", "us-b"]),
        ];
        for (primary, proxy, want) in cases {
            assert_eq!(names(failover_order(&members, primary, proxy)), want);
        }
    }
}
