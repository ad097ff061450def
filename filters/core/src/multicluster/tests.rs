//! Behaviour of selection as a whole: distribution, affinity and disruption, canary, every
//! failover path, recovery, panic, config errors. Property-style loops use fixed seeds.

use std::collections::BTreeMap;

use super::cookie;
use super::health::{HealthState, HealthView, MemberView, PassiveEffect};
use super::store::{read_health, update_health, MemoryStore};
use super::*;
use crate::config::*;
use crate::error::ConfigErrorKind as K;
use crate::request::{Random, XorShift};

fn member(name: &str, weight: u32, region: &str, zone: &str) -> Member {
    let mut labels = BTreeMap::new();
    if !region.is_empty() {
        labels.insert("region".to_string(), region.to_string());
    }
    if !zone.is_empty() {
        labels.insert("zone".to_string(), zone.to_string());
    }
    Member {
        name: name.into(),
        cluster: format!("{name}_80"),
        failover_cluster: None,
        weight,
        labels,
    }
}

fn service(members: Vec<Member>) -> MultiClusterService {
    MultiClusterService {
        members,
        ..Default::default()
    }
}

fn compile(svc: &MultiClusterService) -> Selector {
    Selector::compile("shop", svc).unwrap()
}

/// Counts picks per member over `n` requests without a key on one worker.
fn shares(sel: &Selector, view: &HealthView, n: u32, seed: u64) -> Vec<f64> {
    let mut st = WorkerState::new();
    let mut rng = XorShift::new(seed);
    let mut counts = vec![0u32; sel.members().len()];
    for _ in 0..n {
        let p = sel
            .pick(&PickInput::default(), view, &mut st, &mut rng)
            .unwrap();
        counts[p.member] += 1;
    }
    counts
        .iter()
        .map(|&c| 100.0 * f64::from(c) / f64::from(n))
        .collect()
}

fn keyed(sel: &Selector, view: &HealthView, key: &[u8]) -> usize {
    let input = PickInput {
        affinity_key: Some(key),
        ..Default::default()
    };
    sel.pick(&input, view, &mut WorkerState::new(), &mut XorShift::new(1))
        .unwrap()
        .member
}

fn assert_shares(got: &[f64], want: &[f64], tolerance: f64, what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tolerance,
            "{what}: member {i} got {g:.3}%, want {w:.3}% (all: {got:?})"
        );
    }
}

#[test]
fn weighted_split_is_exact_after_100k_requests_on_each_worker() {
    let mut rng = XorShift::new(42);
    for round in 0..20 {
        let n = 2 + rng.below(6) as usize;
        let weights: Vec<u32> = (0..n)
            .map(|_| rng.below(100) as u32 + (round % 2))
            .collect();
        if weights.iter().all(|&w| w == 0) {
            continue;
        }
        let members = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| member(&format!("m{i}"), w, "", ""))
            .collect();
        let sel = compile(&service(members));
        let total: u32 = weights.iter().sum();
        let want: Vec<f64> = weights
            .iter()
            .map(|&w| 100.0 * f64::from(w) / f64::from(total))
            .collect();
        for worker_seed in [1, 2, 3] {
            let got = shares(&sel, &HealthView::all_healthy(n), 100_000, worker_seed);
            assert_shares(
                &got,
                &want,
                0.5,
                &format!("round {round} worker {worker_seed} weights {weights:?}"),
            );
        }
    }
}

#[test]
fn same_affinity_key_lands_on_same_cluster_from_any_worker_and_source() {
    let svc = MultiClusterService {
        affinity: Some(Affinity::Header("X-User".into())),
        ..service(vec![
            member("a", 1, "", ""),
            member("b", 2, "", ""),
            member("c", 3, "", ""),
        ])
    };
    let sel = compile(&svc);
    assert_eq!(sel.needed_headers(), ["x-user"]);
    let view = HealthView::all_healthy(3);
    for k in 0..1000u32 {
        let key = format!("user-{k}");
        let headers = [("x-user", key.as_bytes())];
        let mut picks = Vec::new();
        for seed in 1..4 {
            let mut st = WorkerState::new();
            let input = PickInput {
                headers: &headers,
                ..Default::default()
            };
            let p = sel
                .pick(&input, &view, &mut st, &mut XorShift::new(seed))
                .unwrap();
            assert_eq!(p.reason, Reason::Affinity);
            picks.push(p.member);
            // Again on the same worker, after unrelated traffic.
            sel.pick(
                &PickInput::default(),
                &view,
                &mut st,
                &mut XorShift::new(seed),
            )
            .unwrap();
            picks.push(
                sel.pick(&input, &view, &mut st, &mut XorShift::new(seed))
                    .unwrap()
                    .member,
            );
        }
        assert!(picks.iter().all(|&p| p == picks[0]), "key {key}: {picks:?}");
    }
}

#[test]
fn affinity_keys_spread_by_weight() {
    let sel = compile(&service(vec![
        member("a", 1, "", ""),
        member("b", 2, "", ""),
        member("c", 7, "", ""),
    ]));
    let view = HealthView::all_healthy(3);
    let mut counts = [0u32; 3];
    for k in 0..100_000u32 {
        counts[keyed(&sel, &view, &k.to_le_bytes())] += 1;
    }
    let got: Vec<f64> = counts.iter().map(|&c| f64::from(c) / 1000.0).collect();
    assert_shares(&got, &[10.0, 20.0, 70.0], 1.0, "keyed shares");
}

#[test]
fn removing_a_cluster_moves_at_most_its_share_plus_one_point_and_none_between_others() {
    let names = ["us-east", "us-west", "eu-west", "eu-north", "ap-south"];
    let weights = [3, 1, 2, 2, 2];
    let all: Vec<Member> = names
        .iter()
        .zip(weights)
        .map(|(n, w)| member(n, w, "", ""))
        .collect();
    let before = compile(&service(all.clone()));
    let view5 = HealthView::all_healthy(5);
    for removed in 0..names.len() {
        let rest: Vec<Member> = all
            .iter()
            .filter(|m| m.name != names[removed])
            .cloned()
            .collect();
        let after = compile(&service(rest));
        let view4 = HealthView::all_healthy(4);
        let (mut moved, mut between) = (0u32, 0u32);
        let keys = 50_000u32;
        for k in 0..keys {
            let key = format!("session-{k}");
            let b = &before.members()[keyed(&before, &view5, key.as_bytes())].name;
            let a = &after.members()[keyed(&after, &view4, key.as_bytes())].name;
            if a != b {
                moved += 1;
                if *b != names[removed] {
                    between += 1;
                }
            }
        }
        let share = 100.0 * f64::from(weights[removed]) / 10.0;
        let moved_pct = 100.0 * f64::from(moved) / f64::from(keys);
        eprintln!(
            "removing {} (share {share}%): {moved_pct:.2}% of keys moved",
            names[removed]
        );
        assert!(
            moved_pct <= share + 1.0,
            "removing {}: moved {moved_pct:.2}% > {share}% + 1",
            names[removed]
        );
        assert_eq!(
            between, 0,
            "removing {}: keys moved between remaining clusters",
            names[removed]
        );
    }
}

#[test]
fn an_unhealthy_cluster_loses_only_its_own_keys() {
    let sel = compile(&service(vec![
        member("a", 1, "", ""),
        member("b", 1, "", ""),
        member("c", 1, "", ""),
    ]));
    let (all, b_down) = (HealthView::all_healthy(3), HealthView::with_down(3, &[1]));
    for k in 0..10_000u32 {
        let (x, y) = (
            keyed(&sel, &all, &k.to_le_bytes()),
            keyed(&sel, &b_down, &k.to_le_bytes()),
        );
        assert_ne!(y, 1);
        if x != 1 {
            assert_eq!(x, y, "key {k} moved although its cluster is healthy");
        }
    }
}

#[test]
fn canary_header_or_cookie_forces_the_canary_and_percent_sends_its_share() {
    let svc = MultiClusterService {
        canary: Some(Canary {
            member: "canary".into(),
            header: Some(NameValue {
                name: "x-canary".into(),
                value: "always".into(),
            }),
            cookie: Some(NameValue {
                name: "beta".into(),
                value: "1".into(),
            }),
            percent: 5.0,
        }),
        ..service(vec![
            member("a", 1, "", ""),
            member("b", 1, "", ""),
            member("canary", 1, "", ""),
        ])
    };
    let sel = compile(&svc);
    assert_eq!(sel.needed_headers(), ["cookie", "x-canary"]);
    let view = HealthView::all_healthy(3);
    let mut st = WorkerState::new();
    let mut rng = XorShift::new(3);
    struct Case {
        name: &'static str,
        headers: Vec<(&'static str, &'static [u8])>,
        forced: bool,
    }
    let cases = [
        Case {
            name: "header value matches",
            headers: vec![("x-canary", b"always")],
            forced: true,
        },
        Case {
            name: "other header value",
            headers: vec![("x-canary", b"never")],
            forced: false,
        },
        Case {
            name: "cookie among others",
            headers: vec![("cookie", b"a=b; beta=1 ;c=d")],
            forced: true,
        },
        Case {
            name: "cookie in a second cookie header",
            headers: vec![("cookie", b"a=b"), ("cookie", b"beta=1")],
            forced: true,
        },
        Case {
            name: "cookie with other value",
            headers: vec![("cookie", b"beta=10")],
            forced: false,
        },
        Case {
            name: "non-utf8 bytes never match",
            headers: vec![("x-canary", b"\xff\xfe")],
            forced: false,
        },
    ];
    for c in cases {
        let input = PickInput {
            headers: &c.headers,
            ..Default::default()
        };
        let p = sel.pick(&input, &view, &mut st, &mut rng).unwrap();
        assert_eq!(p.reason == Reason::CanaryForced, c.forced, "{}", c.name);
    }
    let got = shares(&sel, &view, 100_000, 9);
    assert_shares(&got, &[47.5, 47.5, 5.0], 0.5, "canary percent");
    // The forced canary is unhealthy: requests fall back to the others.
    let down = HealthView::with_down(3, &[2]);
    let headers = [("x-canary", &b"always"[..])];
    let p = sel
        .pick(
            &PickInput {
                headers: &headers,
                ..Default::default()
            },
            &down,
            &mut st,
            &mut rng,
        )
        .unwrap();
    assert_ne!(p.member, 2);
    assert_shares(
        &shares(&sel, &down, 10_000, 9),
        &[50.0, 50.0, 0.0],
        0.5,
        "canary down",
    );
}

#[test]
fn canary_percent_with_affinity_is_sticky_per_key() {
    let svc = MultiClusterService {
        affinity: Some(Affinity::Cookie("sid".into())),
        canary: Some(Canary {
            member: "canary".into(),
            header: None,
            cookie: None,
            percent: 10.0,
        }),
        ..service(vec![member("a", 1, "", ""), member("canary", 1, "", "")])
    };
    let sel = compile(&svc);
    let view = HealthView::all_healthy(2);
    let mut on_canary = 0;
    for k in 0..20_000u32 {
        let cookie = format!("sid={k}");
        let headers = [("cookie", cookie.as_bytes())];
        let input = PickInput {
            headers: &headers,
            ..Default::default()
        };
        let p1 = sel
            .pick(
                &input,
                &view,
                &mut WorkerState::new(),
                &mut XorShift::new(1),
            )
            .unwrap();
        let p2 = sel
            .pick(
                &input,
                &view,
                &mut WorkerState::new(),
                &mut XorShift::new(2),
            )
            .unwrap();
        assert_eq!(p1.member, p2.member);
        on_canary += u32::from(p1.reason == Reason::CanaryShare);
    }
    let pct = f64::from(on_canary) / 200.0;
    assert!((pct - 10.0).abs() < 1.0, "canary share by key {pct}%");
}

/// Proxy in us/us-a. a, b: same zone; c: same region; d: another region.
fn tiered(on_all_unhealthy: AllUnhealthy) -> Selector {
    let svc = MultiClusterService {
        locality: Some(LocalityPolicy::default()),
        health: Some(HealthPolicy {
            on_all_unhealthy,
            ..Default::default()
        }),
        ..service(vec![
            member("a", 1, "us", "us-a"),
            member("b", 1, "us", "us-a"),
            member("c", 1, "us", "us-b"),
            member("d", 1, "eu", "eu-a"),
        ])
    };
    let mut sel = compile(&svc);
    sel.set_locality(&Locality::new(Some("us"), Some("us-a")));
    sel
}

#[test]
fn every_failover_path_follows_tiers_with_overprovisioning() {
    struct Case {
        name: &'static str,
        down: &'static [usize],
        want: [f64; 4],
        reason: Option<Reason>,
    }
    let cases = [
        Case {
            name: "all healthy: own zone only",
            down: &[],
            want: [50.0, 50.0, 0.0, 0.0],
            reason: Some(Reason::Weighted),
        },
        Case {
            name: "half the zone down: zone keeps 70%, region takes 30%",
            down: &[0],
            want: [0.0, 70.0, 30.0, 0.0],
            reason: None,
        },
        Case {
            name: "zone down: region",
            down: &[0, 1],
            want: [0.0, 0.0, 100.0, 0.0],
            reason: None,
        },
        Case {
            name: "zone and region down: anywhere",
            down: &[0, 1, 2],
            want: [0.0, 0.0, 0.0, 100.0],
            reason: None,
        },
        Case {
            name: "only the zone and far away: far takes the rest",
            down: &[0, 2],
            want: [0.0, 70.0, 0.0, 30.0],
            reason: None,
        },
        Case {
            name: "all down: panic spreads over all",
            down: &[0, 1, 2, 3],
            want: [25.0, 25.0, 25.0, 25.0],
            reason: Some(Reason::Panic),
        },
    ];
    let sel = tiered(AllUnhealthy::Panic);
    for c in cases {
        let view = HealthView::with_down(4, c.down);
        let got = shares(&sel, &view, 100_000, 5);
        assert_shares(&got, &c.want, 0.5, c.name);
        let p = sel
            .pick(
                &PickInput::default(),
                &view,
                &mut WorkerState::new(),
                &mut XorShift::new(1),
            )
            .unwrap();
        if let Some(r) = c.reason {
            assert_eq!(p.reason, r, "{}", c.name);
        }
        // Keyed requests follow the same tiers.
        let mut counts = [0u32; 4];
        for k in 0..20_000u32 {
            counts[keyed(&sel, &view, &k.to_le_bytes())] += 1;
        }
        let keyed_shares: Vec<f64> = counts.iter().map(|&n| f64::from(n) / 200.0).collect();
        assert_shares(&keyed_shares, &c.want, 1.5, &format!("{} (keyed)", c.name));
    }
}

#[test]
fn all_unhealthy_rejects_when_configured() {
    let sel = tiered(AllUnhealthy::Reject);
    let view = HealthView::with_down(4, &[0, 1, 2, 3]);
    let r = sel.pick(
        &PickInput::default(),
        &view,
        &mut WorkerState::new(),
        &mut XorShift::new(1),
    );
    assert_eq!(r, Err(NoPick::AllUnhealthy));
    let key = PickInput {
        affinity_key: Some(b"k"),
        ..Default::default()
    };
    assert_eq!(
        sel.pick(&key, &view, &mut WorkerState::new(), &mut XorShift::new(1)),
        Err(NoPick::AllUnhealthy)
    );
}

#[test]
fn without_locality_policy_or_proxy_locality_there_is_one_tier() {
    let mut sel = compile(&service(vec![
        member("a", 1, "us", "us-a"),
        member("d", 1, "eu", ""),
    ]));
    sel.set_locality(&Locality::new(Some("us"), Some("us-a")));
    assert_shares(
        &shares(&sel, &HealthView::all_healthy(2), 1000, 1),
        &[50.0, 50.0],
        0.5,
        "no policy",
    );
    let mut sel = tiered(AllUnhealthy::Panic);
    sel.set_locality(&Locality::default());
    assert_shares(
        &shares(&sel, &HealthView::all_healthy(4), 1000, 1),
        &[25.0; 4],
        0.5,
        "unknown proxy locality",
    );
}

/// A simulated deployment: two workers sharing one store, a virtual clock, passive and active
/// health feeding the selection.
#[test]
fn passive_ejection_and_active_checks_fail_over_and_recover_on_a_virtual_clock() {
    let passive = PassiveHealth {
        consecutive_errors: 3,
        base_ejection_ms: 10_000,
        max_ejection_ms: 60_000,
        ..PassiveHealth::default()
    };
    let active = ActiveHealth {
        path: "/healthz".into(),
        host: None,
        interval_ms: 1000,
        timeout_ms: 500,
        healthy_threshold: 2,
        unhealthy_threshold: 2,
    };
    let svc = MultiClusterService {
        health: Some(HealthPolicy {
            active: Some(active.clone()),
            passive: Some(passive.clone()),
            on_all_unhealthy: AllUnhealthy::Panic,
        }),
        ..service(vec![
            member("a", 1, "", ""),
            member("b", 1, "", ""),
            member("c", 2, "", ""),
        ])
    };
    let sel = compile(&svc);
    let store = MemoryStore::new();
    let key = "wasmgate.mc/shop/health";
    let view_at = |now: u64| {
        read_health(&store, key)
            .0
            .view(sel.member_names(), now, None)
    };
    let mut workers = [WorkerState::new(), WorkerState::new()];
    let mut rng = XorShift::new(7);
    let mut now = 1_000_000u64;
    // Traffic where "c" answers 5xx: each worker reports what it sees, sharing the store.
    let mut ejected_at = None;
    for i in 0..40 {
        let w = &mut workers[i % 2];
        let p = sel
            .pick(&PickInput::default(), &view_at(now), w, &mut rng)
            .unwrap();
        let failed = p.member == 2;
        let effect = update_health(&store, key, |st| {
            let e = st.record_response(
                &sel.members()[p.member].name,
                failed,
                now,
                &passive,
                sel.member_names(),
            );
            (e != PassiveEffect::Unchanged, e)
        })
        .unwrap();
        if let PassiveEffect::Ejected(ms) = effect {
            assert_eq!(ms, 10_000);
            ejected_at.get_or_insert(i);
        }
        now += 10;
    }
    assert!(ejected_at.is_some(), "c was never ejected");
    // Both workers now avoid c.
    for w in &mut workers {
        for _ in 0..100 {
            assert_ne!(
                sel.pick(&PickInput::default(), &view_at(now), w, &mut rng)
                    .unwrap()
                    .member,
                2
            );
        }
    }
    // The ejection ends on the clock alone: c is back.
    now += 10_000;
    assert_shares(
        &shares(&sel, &view_at(now), 4000, 3),
        &[25.0, 25.0, 50.0],
        0.5,
        "after ejection",
    );

    // Active checks take a and b down after two failures each; c alone takes the traffic.
    for _ in 0..2 {
        for name in ["a", "b"] {
            update_health(&store, key, |st| {
                (true, st.record_check(name, false, now, &active))
            })
            .unwrap();
        }
        now += 1000;
    }
    assert_shares(
        &shares(&sel, &view_at(now), 1000, 3),
        &[0.0, 0.0, 100.0],
        0.0,
        "a, b down",
    );
    // Everything down: panic mode spreads by weight.
    for _ in 0..2 {
        update_health(&store, key, |st| {
            (true, st.record_check("c", false, now, &active))
        })
        .unwrap();
    }
    let p = sel
        .pick(
            &PickInput::default(),
            &view_at(now),
            &mut workers[0],
            &mut rng,
        )
        .unwrap();
    assert_eq!(p.reason, Reason::Panic);
    assert_shares(
        &shares(&sel, &view_at(now), 4000, 3),
        &[25.0, 25.0, 50.0],
        0.5,
        "panic",
    );
    // Recovery needs two passing checks.
    update_health(&store, key, |st| {
        (true, st.record_check("a", true, now, &active))
    })
    .unwrap();
    assert_eq!(
        sel.pick(
            &PickInput::default(),
            &view_at(now),
            &mut workers[0],
            &mut rng
        )
        .unwrap()
        .reason,
        Reason::Panic
    );
    update_health(&store, key, |st| {
        (true, st.record_check("a", true, now, &active))
    })
    .unwrap();
    assert_shares(
        &shares(&sel, &view_at(now), 1000, 3),
        &[100.0, 0.0, 0.0],
        0.0,
        "a recovered",
    );
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m{i}")).collect()
}

fn capped(max_ejection_percent: u32, always_eject_one: bool) -> PassiveHealth {
    PassiveHealth {
        consecutive_errors: 1,
        base_ejection_ms: 1000,
        max_ejection_ms: 1000,
        max_ejection_percent,
        always_eject_one,
    }
}

/// Each of `failing` fails once at `now`, in order: which were ejected.
fn fail_all(
    st: &mut HealthState,
    members: &[String],
    failing: &[String],
    now: u64,
    p: &PassiveHealth,
) -> Vec<bool> {
    failing
        .iter()
        .map(|m| {
            let e = st.record_response(m, true, now, p, members.iter().map(String::as_str));
            assert!(
                matches!(e, PassiveEffect::Ejected(_) | PassiveEffect::Refused),
                "{m}: {e:?}"
            );
            e != PassiveEffect::Refused
        })
        .collect()
}

#[test]
fn ejections_beyond_max_ejection_percent_are_refused() {
    // Envoy's rule: eject while 100 x (ejected + 1) / members <= maxEjectionPercent; with
    // alwaysEjectOne also when nothing is ejected. (members, percent, alwaysEjectOne, ejected)
    let table: &[(usize, u32, bool, usize)] = &[
        (3, 100, false, 3),
        (3, 67, false, 2),
        (3, 66, false, 1),
        (3, 50, false, 1),
        (3, 34, false, 1),
        (3, 33, false, 0),
        (3, 33, true, 1),
        (3, 10, false, 0),
        (3, 10, true, 1),
        (3, 0, false, 0),
        (3, 0, true, 1),
        (3, 50, true, 1),
        (4, 100, false, 4),
        (4, 75, false, 3),
        (4, 74, false, 2),
        (4, 50, false, 2),
        (4, 25, false, 1),
        (4, 24, false, 0),
        (4, 10, true, 1),
        (4, 50, true, 2),
        (10, 100, false, 10),
        (10, 95, false, 9),
        (10, 50, false, 5),
        (10, 25, false, 2),
        (10, 10, false, 1),
        (10, 10, true, 1),
        (10, 9, false, 0),
        (10, 9, true, 1),
        (10, 0, false, 0),
    ];
    for &(n, percent, one, want) in table {
        let what = format!("{n} members, {percent}%, alwaysEjectOne {one}");
        let members = names(n);
        let p = capped(percent, one);
        let mut st = HealthState::default();
        let ejected = fail_all(&mut st, &members, &members, 0, &p);
        // The first `want` to fail are ejected, every later one refused.
        let expected: Vec<bool> = (0..n).map(|i| i < want).collect();
        assert_eq!(ejected, expected, "{what}");
        assert_eq!(
            st.ejected_count(members.iter().map(String::as_str), 0),
            want,
            "{what}"
        );
        // A refused member starts counting its errors again and keeps its ejection record.
        for m in &members[want..] {
            let h = st.get(m).unwrap();
            assert_eq!((h.errors, h.ejections), (0, 0), "{what}: {m}");
            assert!(h.healthy(0), "{what}: {m}");
        }
        // Failing again is refused again while the ejections last.
        assert_eq!(
            fail_all(&mut st, &members, &members[want..], 1, &p),
            vec![false; n - want],
            "{what}"
        );
    }
}

#[test]
fn an_ending_ejection_makes_room_for_the_next() {
    let members = names(4);
    let all = || members.iter().map(String::as_str);
    let p = capped(50, false);
    let mut st = HealthState::default();
    let fail = |st: &mut HealthState, m: usize, now: u64| {
        st.record_response(
            &members[m],
            true,
            now,
            &p,
            members.iter().map(String::as_str),
        )
    };
    assert_eq!(fail(&mut st, 0, 0), PassiveEffect::Ejected(1000));
    assert_eq!(fail(&mut st, 1, 400), PassiveEffect::Ejected(1000));
    assert_eq!(
        fail(&mut st, 2, 500),
        PassiveEffect::Refused,
        "2 of 4 is the cap"
    );
    assert_eq!(fail(&mut st, 3, 999), PassiveEffect::Refused);
    // m0's ejection ends at 1000: one slot again, taken by the first to fail.
    assert_eq!(st.ejected_count(all(), 1000), 1);
    assert_eq!(fail(&mut st, 2, 1000), PassiveEffect::Ejected(1000));
    assert_eq!(fail(&mut st, 3, 1001), PassiveEffect::Refused);
    assert_eq!(
        fail(&mut st, 0, 1002),
        PassiveEffect::Refused,
        "m0 is back and full"
    );
    // m1's ends at 1400: m0 fails first this time and takes the slot.
    assert_eq!(fail(&mut st, 0, 1400), PassiveEffect::Ejected(1000));
    assert_eq!(fail(&mut st, 1, 1401), PassiveEffect::Refused);
    assert_eq!(st.ejected_count(all(), 1400), 2);
    assert_eq!(st.get("m0").unwrap().ejections, 2);
    // Everything ends: the cap counts nothing that has ended.
    assert_eq!(st.ejected_count(all(), 2400), 0);
    assert_eq!(fail(&mut st, 3, 2400), PassiveEffect::Ejected(1000));
    assert_eq!(fail(&mut st, 1, 2400), PassiveEffect::Ejected(1000));
    assert_eq!(fail(&mut st, 2, 2400), PassiveEffect::Refused);
}

#[test]
fn only_passive_ejections_of_the_current_members_count_toward_the_cap() {
    let p = capped(50, false);
    let active = ActiveHealth {
        path: "/h".into(),
        host: None,
        interval_ms: 1000,
        timeout_ms: 500,
        healthy_threshold: 1,
        unhealthy_threshold: 1,
    };
    let mut st = HealthState::default();
    // "gone" was ejected under an older config that had it; "a" failed its active check.
    st.record_response("gone", true, 0, &capped(100, false), ["gone"]);
    assert!(st.get("gone").unwrap().ejected(0));
    st.record_check("a", false, 0, &active);
    // Two members, 50%: one passive ejection fits; "gone" and down "a" take no slot.
    assert_eq!(
        st.record_response("b", true, 0, &p, ["a", "b"]),
        PassiveEffect::Ejected(1000)
    );
    assert_eq!(
        st.record_response("a", true, 0, &p, ["a", "b"]),
        PassiveEffect::Refused
    );
}

/// Two workers share one store; each decides on the state it read with its cas token, so a
/// worker whose write raced another's re-reads, sees the other's ejection and is refused.
#[test]
fn workers_racing_to_eject_agree_through_shared_data() {
    use std::cell::RefCell;
    /// The other worker's update, run between our read and our write.
    type Other<'a> = Box<dyn FnOnce(&MemoryStore) + 'a>;
    struct Racing<'a> {
        inner: MemoryStore,
        other: RefCell<Option<Other<'a>>>,
    }
    impl SharedStore for Racing<'_> {
        fn get(&self, key: &str) -> (Option<Vec<u8>>, u32) {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            if let Some(f) = self.other.borrow_mut().take() {
                f(&self.inner);
            }
            self.inner.set(key, value, cas)
        }
    }
    let members = names(3);
    let all = || members.iter().map(String::as_str);
    let key = "wasmgate.mc/shop/health";
    // 3 members, 34%: one ejection at a time.
    let p = capped(34, false);
    let store = Racing {
        inner: MemoryStore::new(),
        other: RefCell::new(None),
    };
    store
        .inner
        .set(key, &HealthState::default().encode(), 0)
        .unwrap();
    *store.other.borrow_mut() = Some(Box::new(|s: &MemoryStore| {
        let e = update_health(s, key, |st| {
            let e = st.record_response("m1", true, 0, &p, all());
            (true, e)
        });
        assert_eq!(e, Ok(PassiveEffect::Ejected(1000)), "the other worker wins");
    }));
    let mut attempts = Vec::new();
    let effect = update_health(&store, key, |st| {
        let e = st.record_response("m0", true, 0, &p, all());
        attempts.push(e);
        (e != PassiveEffect::Unchanged, e)
    })
    .unwrap();
    assert_eq!(
        attempts,
        [PassiveEffect::Ejected(1000), PassiveEffect::Refused],
        "decided again on the state the other worker wrote"
    );
    assert_eq!(effect, PassiveEffect::Refused);
    let (st, _) = read_health(&store.inner, key);
    assert_eq!(st.ejected_count(all(), 0), 1);
    assert!(st.get("m1").unwrap().ejected(0) && !st.get("m0").unwrap().ejected(0));
}

#[test]
fn slow_start_ramps_a_new_member_and_then_gives_it_its_full_weight() {
    let svc = MultiClusterService {
        slow_start_ms: Some(10_000),
        ..service(vec![member("a", 1, "", ""), member("b", 1, "", "")])
    };
    let sel = compile(&svc);
    let mut state = HealthState::default();
    state.reconcile(["a"], 0);
    // "b" arrives with a config change at t=100s.
    state.reconcile(["b"], 100_000);
    let at = |now| state.view(sel.member_names(), now, sel.slow_start_ms());
    assert_eq!(
        at(100_000).members[1],
        MemberView {
            healthy: true,
            weight_permille: 100
        }
    );
    let mid = shares(&sel, &at(105_000), 10_000, 1);
    assert_shares(&mid, &[100.0 / 1.55, 55.0 / 1.55], 0.5, "half way");
    assert_shares(
        &shares(&sel, &at(110_000), 10_000, 1),
        &[50.0, 50.0],
        0.5,
        "ramped",
    );
}

#[test]
fn label_selectors_choose_members_from_the_inventory() {
    let svc = MultiClusterService {
        clusters: vec![ClusterSelector {
            selector: LabelSelector {
                match_labels: [("region".to_string(), "us".to_string())].into(),
            },
        }],
        ..service(vec![
            member("us-1", 1, "us", ""),
            member("eu-1", 1, "eu", ""),
            member("us-2", 1, "us", ""),
        ])
    };
    let sel = compile(&svc);
    let names: Vec<&str> = sel.member_names().collect();
    assert_eq!(names, ["us-1", "us-2"]);
}

#[test]
fn source_address_affinity_ignores_the_port() {
    let svc = MultiClusterService {
        affinity: Some(Affinity::SourceAddress),
        ..service(
            (0..8)
                .map(|i| member(&format!("m{i}"), 1, "", ""))
                .collect(),
        )
    };
    let sel = compile(&svc);
    assert!(sel.needs_source_address());
    let view = HealthView::all_healthy(8);
    let pick = |addr: &[u8]| {
        let input = PickInput {
            source_address: Some(addr),
            ..Default::default()
        };
        sel.pick(
            &input,
            &view,
            &mut WorkerState::new(),
            &mut XorShift::new(1),
        )
        .unwrap()
        .member
    };
    assert_eq!(pick(b"10.0.0.1:1111"), pick(b"10.0.0.1:2222"));
    assert_eq!(pick(b"[::1]:1111"), pick(b"[::1]:2222"));
    let distinct: std::collections::BTreeSet<usize> = (0..64)
        .map(|i| pick(format!("10.0.0.{i}:80").as_bytes()))
        .collect();
    assert!(distinct.len() > 4);
}

#[test]
fn invalid_services_are_rejected_with_field_paths() {
    let ok = || service(vec![member("a", 1, "us", ""), member("b", 1, "eu", "")]);
    struct Case {
        name: &'static str,
        svc: MultiClusterService,
        path: &'static str,
        kind: K,
    }
    let cases = [
        Case {
            name: "no members",
            svc: service(vec![]),
            path: "multiClusterServices.shop.members",
            kind: K::NoMembers,
        },
        Case {
            name: "duplicate member",
            svc: service(vec![member("a", 1, "", ""), member("a", 1, "", "")]),
            path: "multiClusterServices.shop.members[1].name",
            kind: K::DuplicateMember("a".into()),
        },
        Case {
            name: "empty cluster",
            svc: service(vec![Member {
                cluster: String::new(),
                ..member("a", 1, "", "")
            }]),
            path: "multiClusterServices.shop.members[0].cluster",
            kind: K::EmptyName,
        },
        Case {
            name: "empty failover cluster",
            svc: service(vec![Member {
                failover_cluster: Some(String::new()),
                ..member("a", 1, "", "")
            }]),
            path: "multiClusterServices.shop.members[0].failoverCluster",
            kind: K::EmptyName,
        },
        Case {
            name: "all weights zero",
            svc: service(vec![member("a", 0, "", "")]),
            path: "multiClusterServices.shop.members",
            kind: K::ZeroWeights,
        },
        Case {
            name: "selector matches nothing",
            svc: MultiClusterService {
                clusters: vec![ClusterSelector {
                    selector: LabelSelector {
                        match_labels: [("region".to_string(), "ap".to_string())].into(),
                    },
                }],
                ..ok()
            },
            path: "multiClusterServices.shop.clusters",
            kind: K::NoSelectedMembers,
        },
        Case {
            name: "canary names an unknown member",
            svc: MultiClusterService {
                canary: Some(Canary {
                    member: "z".into(),
                    header: None,
                    cookie: None,
                    percent: 1.0,
                }),
                ..ok()
            },
            path: "multiClusterServices.shop.canary.member",
            kind: K::UnknownMember("z".into()),
        },
        Case {
            name: "canary percent above 100",
            svc: MultiClusterService {
                canary: Some(Canary {
                    member: "b".into(),
                    header: None,
                    cookie: None,
                    percent: 101.0,
                }),
                ..ok()
            },
            path: "multiClusterServices.shop.canary.percent",
            kind: K::OutOfRange("0..=100"),
        },
        Case {
            name: "affinity header with a space",
            svc: MultiClusterService {
                affinity: Some(Affinity::Header("x user".into())),
                ..ok()
            },
            path: "multiClusterServices.shop.affinity.header",
            kind: K::InvalidHeaderName("x user".into()),
        },
        Case {
            name: "health path without slash",
            svc: MultiClusterService {
                health: Some(HealthPolicy {
                    active: Some(ActiveHealth {
                        path: "healthz".into(),
                        host: None,
                        interval_ms: 1000,
                        timeout_ms: 100,
                        healthy_threshold: 1,
                        unhealthy_threshold: 1,
                    }),
                    ..Default::default()
                }),
                ..ok()
            },
            path: "multiClusterServices.shop.health.active.path",
            kind: K::InvalidPath("\"healthz\" must start with /".into()),
        },
        Case {
            name: "zero consecutive errors",
            svc: MultiClusterService {
                health: Some(HealthPolicy {
                    passive: Some(PassiveHealth {
                        consecutive_errors: 0,
                        base_ejection_ms: 1,
                        max_ejection_ms: 1,
                        ..PassiveHealth::default()
                    }),
                    ..Default::default()
                }),
                ..ok()
            },
            path: "multiClusterServices.shop.health.passive.consecutiveErrors",
            kind: K::OutOfRange(">= 1"),
        },
        Case {
            name: "max ejection percent above 100",
            svc: MultiClusterService {
                health: Some(HealthPolicy {
                    passive: Some(PassiveHealth {
                        max_ejection_percent: 101,
                        ..PassiveHealth::default()
                    }),
                    ..Default::default()
                }),
                ..ok()
            },
            path: "multiClusterServices.shop.health.passive.maxEjectionPercent",
            kind: K::OutOfRange("0..=100"),
        },
    ];
    for c in cases {
        let e = Selector::compile("shop", &c.svc).unwrap_err();
        assert_eq!((e.path.as_str(), &e.kind), (c.path, &c.kind), "{}", c.name);
    }
}

#[test]
fn balancer_config_parses_and_names_bad_fields() {
    let json = br#"{
        "serviceFrom": {"header": "x-wasmgate-service"},
        "locality": {"region": "us", "zone": "us-a"},
        "tcpPorts": {"9000": "shop"},
        "services": {"shop": {
            "members": [
                {"name": "us-a", "cluster": "shop_us-a", "weight": 2, "labels": {"region": "us", "zone": "us-a"}},
                {"name": "eu", "cluster": "shop_eu", "labels": {"region": "eu"}}
            ],
            "clusters": [{"selector": {"matchLabels": {}}}],
            "affinity": {"cookie": "sid"},
            "canary": {"member": "eu", "header": {"name": "x-canary", "value": "1"}, "percent": 1.5},
            "locality": {},
            "health": {"active": {"path": "/healthz"}, "passive": {}, "onAllUnhealthy": "reject"},
            "slowStartMs": 5000
        }}
    }"#;
    let b = Balancer::from_json(json).unwrap();
    assert_eq!(b.service(b"shop"), Some(0));
    assert_eq!(b.tcp_service(9000), Some(0));
    assert_eq!(b.needed_headers(), ["cookie", "x-canary"]);
    assert_eq!(b.selectors()[0].members()[1].tier, 2);
    assert_eq!(b.health_key(0), "wasmgate.mc/shop/health");
    assert_eq!(
        b.selectors()[0].health_policy().passive,
        Some(PassiveHealth::default()),
        "an empty passive block takes the defaults"
    );
    assert_eq!(PassiveHealth::default().max_ejection_percent, 100);
    assert!(!PassiveHealth::default().always_eject_one);
    for percent in [0, 100] {
        let json = format!(
            r#"{{"serviceFrom": "host", "services": {{"s": {{"members": [{{"name": "a", "cluster": "c"}}],
                "health": {{"passive": {{"maxEjectionPercent": {percent}, "alwaysEjectOne": true}}}}}}}}}}"#
        );
        let b = Balancer::from_json(json.as_bytes()).unwrap();
        let p = b.selectors()[0].health_policy().passive.clone().unwrap();
        assert_eq!(
            (p.max_ejection_percent, p.always_eject_one),
            (percent, true)
        );
    }

    let bad: [(&[u8], &str); 5] = [
        (br#"{"serviceFrom": "host", "services": {"s": {"members": [], "wat": 1}}}"#, "services.s"),
        (br#"{"serviceFrom": "host", "services": {}, "tcpPorts": {"1": "nope"}}"#, "tcpPorts.1"),
        (br#"{"serviceFrom": "host", "services": {"s": {"members": [{"name": "a", "cluster": "c"}], "health": {"active": {"path": "/", "intervalMs": 1}}}}}"#, "services.s.health.active.intervalMs"),
        (br#"{"serviceFrom": "host", "services": {"s": {"members": [{"name": "a", "cluster": "c"}], "health": {"passive": {"maxEjectionPercent": 101}}}}}"#, "services.s.health.passive.maxEjectionPercent"),
        (br#"{"serviceFrom": "host", "services": {"s": {"members": [{"name": "a", "cluster": "c"}], "health": {"passive": {"maxEjectionPercent": -1}}}}}"#, "services.s.health.passive.maxEjectionPercent"),
    ];
    for (json, path) in bad {
        let e = Balancer::from_json(json).unwrap_err();
        assert!(e.path.starts_with(path), "{path}: got {e}");
    }
    let host = Balancer::from_json(br#"{"serviceFrom": "host", "services": {"Shop.example": {"members": [{"name": "a", "cluster": "c"}]}}}"#).unwrap();
    assert_eq!(host.service(b"SHOP.example:8080"), Some(0));
    assert_eq!(host.service(b"shop.example."), Some(0));
    assert_eq!(host.service(b"\xff"), None);
}

#[test]
fn one_worker_keeps_spreading_as_health_changes_under_it() {
    let sel = compile(&service(vec![
        member("a", 1, "", ""),
        member("b", 1, "", ""),
        member("c", 2, "", ""),
    ]));
    let mut st = WorkerState::new();
    let mut rng = XorShift::new(11);
    let views = [
        (HealthView::all_healthy(3), [25.0, 25.0, 50.0]),
        (HealthView::with_down(3, &[2]), [50.0, 50.0, 0.0]),
        (HealthView::with_down(3, &[0, 1, 2]), [25.0, 25.0, 50.0]),
        (
            HealthView::with_down(3, &[0]),
            [0.0, 100.0 / 3.0, 200.0 / 3.0],
        ),
        (HealthView::all_healthy(3), [25.0, 25.0, 50.0]),
    ];
    for (view, want) in views {
        let mut counts = [0u32; 3];
        for _ in 0..1200 {
            counts[sel
                .pick(&PickInput::default(), &view, &mut st, &mut rng)
                .unwrap()
                .member] += 1;
        }
        let got: Vec<f64> = counts.iter().map(|&c| f64::from(c) / 12.0).collect();
        assert_shares(
            &got,
            &want,
            0.5,
            &format!("after switching to {:?}", view.members),
        );
    }
}

/// `{"cookie": {"name": "sid", "ttlSeconds": 3600}}` with a canary forced by cookie `beta=1`.
fn issuing(path: Option<&str>) -> Selector {
    compile(&MultiClusterService {
        affinity: Some(Affinity::Cookie(CookieAffinity {
            name: "sid".into(),
            ttl_seconds: Some(3600),
            path: path.map(str::to_string),
        })),
        canary: Some(Canary {
            member: "canary".into(),
            header: None,
            cookie: Some(NameValue {
                name: "beta".into(),
                value: "1".into(),
            }),
            percent: 0.0,
        }),
        ..service(vec![
            member("a", 3, "", ""),
            member("b", 1, "", ""),
            member("c", 2, "", ""),
            member("canary", 1, "", ""),
        ])
    })
}

#[test]
fn cookie_affinity_reads_the_plain_name_or_the_generating_object_and_writes_them_back() {
    let cases: [(&str, CookieAffinity); 4] = [
        (r#""sid""#, CookieAffinity::named("sid")),
        (r#"{"name": "sid"}"#, CookieAffinity::named("sid")),
        (
            r#"{"name": "sid", "ttlSeconds": 3600}"#,
            CookieAffinity {
                name: "sid".into(),
                ttl_seconds: Some(3600),
                path: None,
            },
        ),
        (
            r#"{"name": "sid", "ttlSeconds": 0, "path": "/app"}"#,
            CookieAffinity {
                name: "sid".into(),
                ttl_seconds: Some(0),
                path: Some("/app".into()),
            },
        ),
    ];
    for (json, want) in cases {
        let got: Affinity = serde_json::from_str(&format!(r#"{{"cookie": {json}}}"#)).unwrap();
        assert_eq!(got, Affinity::Cookie(want.clone()), "{json}");
        let back = serde_json::to_value(&got).unwrap();
        let again: Affinity = serde_json::from_value(back.clone()).unwrap();
        assert_eq!(again, got, "{json} round trip");
        if want.ttl_seconds.is_none() && want.path.is_none() {
            assert_eq!(
                back,
                serde_json::json!({"cookie": "sid"}),
                "plain stays a string"
            );
        }
    }
}

#[test]
fn generating_cookie_configs_are_rejected_with_their_field_path() {
    let svc = |cookie: &str| {
        format!(
            r#"{{"serviceFrom": "host", "services": {{"s": {{"members": [{{"name": "a", "cluster": "c"}}],
                "affinity": {{"cookie": {cookie}}}}}}}}}"#
        )
    };
    struct Case {
        name: &'static str,
        cookie: &'static str,
        path: &'static str,
        kind: Option<K>,
    }
    let cases = [
        Case {
            name: "empty plain name",
            cookie: r#""""#,
            path: "services.s.affinity.cookie",
            kind: Some(K::EmptyName),
        },
        Case {
            name: "empty name in the object",
            cookie: r#"{"name": "", "ttlSeconds": 60}"#,
            path: "services.s.affinity.cookie.name",
            kind: Some(K::EmptyName),
        },
        Case {
            name: "name that is not a token",
            cookie: r#"{"name": "s id", "ttlSeconds": 60}"#,
            path: "services.s.affinity.cookie.name",
            kind: Some(K::InvalidName("s id".into())),
        },
        Case {
            name: "name that would split the header",
            cookie: r#"{"name": "sid=x;", "ttlSeconds": 60}"#,
            path: "services.s.affinity.cookie.name",
            kind: Some(K::InvalidName("sid=x;".into())),
        },
        Case {
            name: "ttl beyond 400 days",
            cookie: r#"{"name": "sid", "ttlSeconds": 34560001}"#,
            path: "services.s.affinity.cookie.ttlSeconds",
            kind: Some(K::OutOfRange("0..=34560000 (400 days)")),
        },
        Case {
            name: "negative ttl",
            cookie: r#"{"name": "sid", "ttlSeconds": -1}"#,
            path: "services.s.affinity.cookie.ttlSeconds",
            kind: None,
        },
        Case {
            name: "ttl as a duration string",
            cookie: r#"{"name": "sid", "ttlSeconds": "1h"}"#,
            path: "services.s.affinity.cookie.ttlSeconds",
            kind: None,
        },
        Case {
            name: "path without slash",
            cookie: r#"{"name": "sid", "ttlSeconds": 60, "path": "app"}"#,
            path: "services.s.affinity.cookie.path",
            kind: Some(K::InvalidPath(
                "\"app\" must start with / and hold printable ASCII but `;`".into(),
            )),
        },
        Case {
            name: "path that would add an attribute",
            cookie: r#"{"name": "sid", "ttlSeconds": 60, "path": "/; Domain=evil"}"#,
            path: "services.s.affinity.cookie.path",
            kind: None,
        },
        Case {
            name: "path with a line break",
            cookie: r#"{"name": "sid", "ttlSeconds": 60, "path": "/\r\nx: y"}"#,
            path: "services.s.affinity.cookie.path",
            kind: None,
        },
        Case {
            name: "path without ttlSeconds",
            cookie: r#"{"name": "sid", "path": "/"}"#,
            path: "services.s.affinity.cookie.path",
            kind: Some(K::NeedsField("ttlSeconds")),
        },
        Case {
            name: "unknown field",
            cookie: r#"{"name": "sid", "ttl": 60}"#,
            path: "services.s.affinity.cookie",
            kind: None,
        },
        Case {
            name: "missing name",
            cookie: r#"{"ttlSeconds": 60}"#,
            path: "services.s.affinity.cookie",
            kind: None,
        },
        Case {
            name: "a number",
            cookie: "7",
            path: "services.s.affinity.cookie",
            kind: None,
        },
    ];
    for c in cases {
        let e = Balancer::from_json(svc(c.cookie).as_bytes()).unwrap_err();
        assert!(e.path.starts_with(c.path), "{}: got {e}", c.name);
        if let Some(kind) = c.kind {
            assert_eq!((e.path.as_str(), &e.kind), (c.path, &kind), "{}", c.name);
        }
    }
    for ok in [
        r#""sid""#,
        r#"{"name": "sid"}"#,
        r#"{"name": "__Host-sid", "ttlSeconds": 0}"#,
        r#"{"name": "sid", "ttlSeconds": 34560000, "path": "/shop/cart"}"#,
    ] {
        Balancer::from_json(svc(ok).as_bytes()).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn cookie_values_are_read_as_bytes_and_odd_headers_only_fail_to_match() {
    type Headers = Vec<(&'static str, &'static [u8])>;
    let cases: [(&str, Headers, Option<&[u8]>); 12] = [
        ("alone", vec![("cookie", b"sid=k1")], Some(b"k1")),
        (
            "among others, spaced",
            vec![("cookie", b"a=1;  sid = k1 ; b=2")],
            Some(b"k1"),
        ),
        (
            "in a second cookie header",
            vec![("cookie", b"a=1"), ("cookie", b"sid=k2")],
            Some(b"k2"),
        ),
        (
            "first of two wins",
            vec![("cookie", b"sid=k1; sid=k2")],
            Some(b"k1"),
        ),
        ("empty value", vec![("cookie", b"sid=")], Some(b"")),
        (
            "quotes kept",
            vec![("cookie", b"sid=\"k1\"")],
            Some(b"\"k1\""),
        ),
        ("value with =", vec![("cookie", b"sid=a=b")], Some(b"a=b")),
        (
            "non-UTF-8 value",
            vec![("cookie", b"sid=\xff\xfe")],
            Some(b"\xff\xfe"),
        ),
        ("no =", vec![("cookie", b"sid; a=1")], None),
        ("longer name", vec![("cookie", b"sidx=1; xsid=2")], None),
        (
            "non-UTF-8 garbage",
            vec![("cookie", b"\xff=\xff;;;=;")],
            None,
        ),
        ("another header", vec![("x-cookie", b"sid=k1")], None),
    ];
    for (name, headers, want) in cases {
        assert_eq!(cookie::cookie(&headers, "sid"), want, "{name}");
    }
}

#[test]
fn the_set_cookie_header_carries_key_max_age_path_and_httponly() {
    let cases = [
        (Some(3600), None, "sid=k; Max-Age=3600; Path=/; HttpOnly"),
        (
            Some(60),
            Some("/shop"),
            "sid=k; Max-Age=60; Path=/shop; HttpOnly",
        ),
        (Some(0), None, "sid=k; Path=/; HttpOnly"),
    ];
    for (ttl, path, want) in cases {
        let sel = compile(&MultiClusterService {
            affinity: Some(Affinity::Cookie(CookieAffinity {
                name: "sid".into(),
                ttl_seconds: ttl,
                path: path.map(str::to_string),
            })),
            ..service(vec![member("a", 1, "", "")])
        });
        let issuer = sel.cookie_issuer().unwrap();
        assert_eq!(issuer.name(), "sid");
        assert_eq!(issuer.set_cookie("k"), want);
    }
}

#[test]
fn new_cookie_keys_are_32_hex_digits_and_distinct_across_seeds() {
    let mut seen = std::collections::HashSet::new();
    for seed in 1..=4u64 {
        let mut rng = XorShift::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for _ in 0..5_000 {
            let k = cookie::new_key(&mut rng);
            assert_eq!(k.len(), 32, "{k}");
            assert!(k
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert!(seen.insert(k.clone()), "duplicate key {k}");
        }
    }
}

#[test]
fn a_cookie_is_issued_only_when_the_request_lacks_it_or_it_is_empty() {
    type Headers = Vec<(&'static str, &'static [u8])>;
    let sel = issuing(None);
    let cases: [(&str, Headers, bool); 9] = [
        ("no cookie header", vec![], true),
        ("other cookies only", vec![("cookie", b"a=1; beta=1")], true),
        ("empty value", vec![("cookie", b"sid=")], true),
        ("name without =", vec![("cookie", b"sid")], true),
        ("present", vec![("cookie", b"sid=k1")], false),
        (
            "present in a second header",
            vec![("cookie", b"a=1"), ("cookie", b"sid=k1")],
            false,
        ),
        ("quoted", vec![("cookie", b"sid=\"k1\"")], false),
        ("non-UTF-8 value", vec![("cookie", b"sid=\xff")], false),
        ("empty then set", vec![("cookie", b"sid=; sid=k1")], true),
    ];
    for (name, headers, want) in cases {
        assert_eq!(sel.cookie_to_issue(&headers).is_some(), want, "{name}");
    }
    let plain = compile(&MultiClusterService {
        affinity: Some(Affinity::Cookie("sid".into())),
        ..service(vec![member("a", 1, "", ""), member("b", 1, "", "")])
    });
    assert!(plain.cookie_issuer().is_none());
    assert!(
        plain.cookie_to_issue(&[]).is_none(),
        "a plain cookie is never issued"
    );
}

#[test]
fn a_generated_key_places_the_first_request_where_its_cookie_lands_later() {
    let sel = issuing(Some("/"));
    let view = HealthView::all_healthy(4);
    let mut rng = XorShift::new(7);
    let mut first_on = [0u32; 4];
    for i in 0..3_000u64 {
        // First request: no cookie; the balancer's key places it.
        let issuer = sel.cookie_to_issue(&[]).unwrap();
        let key = cookie::new_key(&mut rng);
        let first = sel
            .pick(
                &PickInput {
                    affinity_key: Some(key.as_bytes()),
                    ..Default::default()
                },
                &view,
                &mut WorkerState::new(),
                &mut XorShift::new(i + 1),
            )
            .unwrap();
        assert_eq!(first.reason, Reason::Affinity);
        first_on[first.member] += 1;
        let set = issuer.set_cookie(&key);
        // The client sends back what `set-cookie` gave it, on any worker.
        let value = set.split(';').next().unwrap();
        let headers = [("cookie", value.as_bytes())];
        assert!(sel.cookie_to_issue(&headers).is_none(), "no second cookie");
        for seed in [i + 100, i + 200] {
            let later = sel
                .pick(
                    &PickInput {
                        headers: &headers,
                        ..Default::default()
                    },
                    &view,
                    &mut WorkerState::new(),
                    &mut XorShift::new(seed),
                )
                .unwrap();
            assert_eq!(later.member, first.member, "key {key} moved");
        }
        // The canary cookie still forces the canary, cookie or not.
        let beta = format!("{value}; beta=1");
        let forced = sel
            .pick(
                &PickInput {
                    headers: &[("cookie", beta.as_bytes())],
                    ..Default::default()
                },
                &view,
                &mut WorkerState::new(),
                &mut XorShift::new(i),
            )
            .unwrap();
        assert_eq!((forced.member, forced.reason), (3, Reason::CanaryForced));
    }
    // Fresh keys spread by weight (3:1:2; the canary has no share).
    let pct: Vec<f64> = first_on.iter().map(|&c| f64::from(c) / 30.0).collect();
    assert_shares(
        &pct,
        &[50.0, 100.0 / 6.0, 100.0 / 3.0, 0.0],
        3.0,
        "fresh keys",
    );
}

#[test]
fn requests_go_to_a_members_failover_cluster_and_checks_to_its_own() {
    let sel = compile(&service(vec![
        Member {
            failover_cluster: Some("a_80.failover".into()),
            ..member("a", 1, "", "")
        },
        member("b", 1, "", ""),
    ]));
    let view = HealthView::all_healthy(2);
    let (mut st, mut rng) = (WorkerState::new(), XorShift::new(3));
    let mut steered = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let p = sel
            .pick(&PickInput::default(), &view, &mut st, &mut rng)
            .unwrap();
        steered.insert(p.cluster.to_string());
    }
    assert_eq!(
        steered.into_iter().collect::<Vec<_>>(),
        ["a_80.failover", "b_80"]
    );
    // Active checks use the member's own cluster.
    assert_eq!(sel.members()[0].cluster, "a_80");
    assert_eq!(sel.members()[0].route_cluster, "a_80.failover");
}
