//! Routes and member clusters change while traffic flows through a real Envoy fed by
//! `wasmgate generate --xds DIR --watch`: no restart, no failed request, each change visible
//! within a second, an invalid change never reaching Envoy, affinity kept.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use wasmgate_harness::live_reconfig::{Live, Outcome, Route, State, Traffic, MEMBERS};

const STEADY_HOST: &str = "shop.test";
const VISIBLE_WITHIN: Duration = Duration::from_secs(1);

/// What a probe request must see once a change is in effect.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Backend(&'static str),
    /// Any member cluster of `shop`.
    Member,
    Status(u16),
    /// Some affinity key lands on this new member.
    MemberAppears(&'static str),
    /// A key that was on this member lands elsewhere.
    MemberGone(&'static str),
}

enum Change {
    Add(Route),
    Remove(&'static str, &'static str),
    Set(Route),
    AddMember(&'static str),
    RemoveMember(&'static str),
    Invalid,
}

fn apply(state: &mut State, change: &Change) {
    state.invalid = false;
    match change {
        Change::Add(r) => state.routes.push(r.clone()),
        Change::Remove(host, path) => state
            .routes
            .retain(|r| !(r.host == *host && r.path == *path)),
        Change::Set(r) => {
            for x in &mut state.routes {
                if x.host == r.host && x.path == r.path {
                    *x = r.clone();
                }
            }
        }
        Change::AddMember(m) => state.shop_members.push(m.to_string()),
        Change::RemoveMember(m) => state.shop_members.retain(|x| x != m),
        Change::Invalid => state.invalid = true,
    }
}

fn keys() -> Vec<String> {
    (0..40).map(|i| format!("user-{i}")).collect()
}

/// The 20 changes: routes added, removed and changed, weights, a member cluster added and
/// one removed, and an invalid change in the middle; with the probe that shows each.
fn scenario() -> Vec<(Change, &'static str, &'static str, Expect)> {
    use Change::*;
    use Expect::*;
    let r = Route::new;
    vec![
        (
            Add(r("a.test", "/v2", &[("app-b", 1)])),
            "a.test",
            "/v2",
            Backend("app-b"),
        ),
        (
            Add(r("b.test", "/", &[("app-b", 1)])),
            "b.test",
            "/",
            Backend("app-b"),
        ),
        (
            Set(r("a.test", "/v2", &[("app-a", 1)])),
            "a.test",
            "/v2",
            Backend("app-a"),
        ),
        (
            Set(r("w.test", "/", &[("app-a", 0), ("app-b", 1)])),
            "w.test",
            "/",
            Backend("app-b"),
        ),
        (AddMember("c5"), STEADY_HOST, "/", MemberAppears("c5")),
        (
            Add(r("a.test", "/v3", &[("shop", 1)])),
            "a.test",
            "/v3",
            Member,
        ),
        (Invalid, "a.test", "/v3", Member),
        (Remove("b.test", "/"), "b.test", "/", Status(404)),
        (RemoveMember("c3"), STEADY_HOST, "/", MemberGone("c3")),
        (
            Set(r("w.test", "/", &[("app-a", 1), ("app-b", 0)])),
            "w.test",
            "/",
            Backend("app-a"),
        ),
        (
            Add(r("c.test", "/", &[("app-a", 1)])),
            "c.test",
            "/",
            Backend("app-a"),
        ),
        (
            Set(r("c.test", "/", &[("app-b", 1)])),
            "c.test",
            "/",
            Backend("app-b"),
        ),
        (
            Add(r("a.test", "/v4", &[("app-b", 1)])),
            "a.test",
            "/v4",
            Backend("app-b"),
        ),
        (Remove("a.test", "/v3"), "a.test", "/v3", Backend("app-a")),
        (
            Set(r("a.test", "/v4", &[("app-a", 1)])),
            "a.test",
            "/v4",
            Backend("app-a"),
        ),
        (Add(r("d.test", "/", &[("shop", 1)])), "d.test", "/", Member),
        (Remove("c.test", "/"), "c.test", "/", Status(404)),
        (
            Set(r("w.test", "/", &[("app-a", 0), ("app-b", 5)])),
            "w.test",
            "/",
            Backend("app-b"),
        ),
        (Remove("d.test", "/"), "d.test", "/", Status(404)),
        (
            Set(r("a.test", "/", &[("app-b", 1)])),
            "a.test",
            "/",
            Backend("app-b"),
        ),
    ]
}

fn first_state() -> State {
    State {
        routes: vec![
            Route::new(STEADY_HOST, "/", &[("shop", 1)]),
            Route::new("a.test", "/", &[("app-a", 1)]),
            Route::new("w.test", "/", &[("app-a", 1), ("app-b", 0)]),
        ],
        shop_members: vec!["c2".into(), "c3".into(), "c4".into()],
        invalid: false,
    }
}

fn is_member(b: Option<&str>) -> bool {
    b.is_some_and(|b| MEMBERS.contains(&b))
}

/// Where each key of the steady traffic went last, before `until`.
fn placement(outcomes: &[Outcome], until: Instant) -> BTreeMap<String, String> {
    outcomes
        .iter()
        .filter(|o| o.at < until)
        .filter_map(|o| Some((o.key.clone(), o.backend.clone()?)))
        .collect()
}

fn ecds_reloads(live: &Live) -> u64 {
    live.envoy
        .stats_with_prefix("extension_config_discovery.")
        .iter()
        .filter(|(n, _)| n.ends_with(".config_reload"))
        .map(|(_, v)| v)
        .sum()
}

fn xds_files(live: &Live) -> BTreeMap<String, String> {
    std::fs::read_dir(&live.xds_dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(e.path()).unwrap_or_default())
        })
        .collect()
}

#[test]
fn routes_and_members_change_under_load_with_no_failed_request() {
    let mut state = first_state();
    let live = Live::start("xds-live", &state, 2).unwrap();
    let keys = keys();
    let traffic = Traffic::start(live.http, STEADY_HOST, &keys, 2, 200);
    std::thread::sleep(Duration::from_millis(500));
    let reloads_at_start = ecds_reloads(&live);

    let mut visible = Vec::new();
    let mut accepted_lines = Vec::new();
    let mut added_at = None;
    let mut removed_at = None;
    let mut partial = Vec::new();
    for (i, (change, host, path, expect)) in scenario().into_iter().enumerate() {
        apply(&mut state, &change);
        if let Change::Invalid = change {
            let before_files = xds_files(&live);
            let before_reloads = ecds_reloads(&live);
            live.write(&state).unwrap();
            let lines = live.watcher.lines_until(Duration::from_secs(5), |l| {
                l.contains("backendRefs[0].port")
            });
            let report = lines.join("\n");
            assert!(
                report.contains("! rejected: nothing written")
                    && report.contains("routes.yaml: document")
                    && report.contains("spec.rules[0].backendRefs[0]"),
                "the invalid change is reported with file, document and field:\n{report}"
            );
            std::thread::sleep(Duration::from_millis(500));
            assert_eq!(xds_files(&live), before_files, "nothing written");
            assert_eq!(ecds_reloads(&live), before_reloads, "Envoy saw no update");
            let r = wasmgate_harness::get(live.http, "broken.test", "/").unwrap();
            assert_eq!(r.status, 404, "the invalid route never served");
            continue;
        }
        let wrote = live.write(&state).unwrap();
        let outcomes_so_far = traffic.snapshot();
        let gone_key = match expect {
            Expect::MemberGone(m) => placement(&outcomes_so_far, wrote)
                .into_iter()
                .find(|(_, b)| b == m)
                .map(|(k, _)| k),
            _ => None,
        };
        let line = live
            .watcher
            .lines_until(Duration::from_secs(3), |l| l.starts_with("version"));
        let mut key_i = 0usize;
        let took = loop {
            let key = match expect {
                Expect::MemberGone(_) => gone_key.clone().expect("some key was on the member"),
                _ => keys[key_i % keys.len()].clone(),
            };
            key_i += 1;
            let limit = Duration::from_millis(20);
            let since = Instant::now();
            let seen = live.time_until(since, limit, host, path, &key, |status, b| match expect {
                Expect::Backend(want) => status == 200 && b == Some(want),
                Expect::Member => status == 200 && is_member(b),
                Expect::Status(s) => status == s,
                Expect::MemberAppears(m) => status == 200 && b == Some(m),
                Expect::MemberGone(m) => status == 200 && is_member(b) && b != Some(m),
            });
            if seen.is_some() {
                break wrote.elapsed();
            }
            assert!(
                wrote.elapsed() < Duration::from_secs(5),
                "change {i} never became visible ({host}{path} {expect:?})\n{}",
                live.envoy.log_text()
            );
        };
        match change {
            Change::AddMember(_) => added_at = Some(wrote),
            Change::RemoveMember(_) => removed_at = Some(wrote),
            _ => {}
        }
        visible.push(took);
        accepted_lines.push(line.last().cloned().unwrap_or_default());
        partial.push(format!(
            "change {i}: {took:?} {}",
            accepted_lines.last().cloned().unwrap_or_default()
        ));
        std::thread::sleep(Duration::from_millis(250));
    }
    // The counter the invalid change was checked against does count updates.
    assert!(
        ecds_reloads(&live) >= reloads_at_start + 19,
        "Envoy reloaded the filter configs"
    );
    let outcomes = traffic.finish();
    let drained = live
        .watcher
        .lines_until(Duration::from_secs(6), |l| l.contains("drained"));

    // 0 failed: every request of the steady traffic answered 200 by a member.
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status != 200 || !is_member(o.backend.as_deref()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, first: {:?}",
        failed.len(),
        outcomes.len(),
        failed.first()
    );
    assert!(outcomes.len() > 1000, "traffic flowed: {}", outcomes.len());

    // Each change visible within 1 s of the write.
    let worst = visible.iter().max().copied().unwrap_or_default();
    assert!(worst < VISIBLE_WITHIN, "{}", partial.join("\n"));
    let mut sorted = visible.clone();
    sorted.sort();
    println!(
        "{} changes under {} requests: median {:?}, worst {:?} from write to routing; 0 failed",
        visible.len() + 1,
        outcomes.len(),
        sorted[sorted.len() / 2],
        worst
    );

    // One line per accepted change, naming what changed and the version.
    assert_eq!(accepted_lines.len(), 19);
    for l in &accepted_lines {
        assert!(l.starts_with("version ") && l.contains(": "), "{l}");
    }
    assert!(
        accepted_lines[4].contains("service shop: members +c5"),
        "{}",
        accepted_lines[4]
    );
    assert!(
        accepted_lines[7].contains("service shop: members -c3"),
        "{}",
        accepted_lines[7]
    );
    assert!(
        accepted_lines[0].contains("a.test: +1 rule"),
        "{}",
        accepted_lines[0]
    );
    assert!(
        drained.iter().any(|l| l.contains("drained")),
        "the removed member's clusters leave CDS after the drain period: {drained:?}"
    );

    // Affinity: a key moves only to the member added, or away from the member removed.
    let (added_at, removed_at) = (added_at.unwrap(), removed_at.unwrap());
    let mut last: BTreeMap<&str, (&str, Instant)> = BTreeMap::new();
    let mut moves = 0;
    for o in &outcomes {
        let b = o.backend.as_deref().unwrap_or_default();
        if let Some((prev, _)) = last.get(o.key.as_str()) {
            if *prev != b {
                moves += 1;
                let to_new = b == "c5" && o.at >= added_at;
                let from_removed = *prev == "c3" && o.at >= removed_at;
                assert!(
                    to_new || from_removed,
                    "key {} moved from {prev} to {b} without its member changing",
                    o.key
                );
            }
        }
        last.insert(&o.key, (b, o.at));
    }
    assert!(moves > 0, "some keys moved to c5 or off c3");
}

/// The balancer's health lives in shared data keyed by service and member: a member ejected
/// before a reconfiguration is still ejected after it, in the new plugin contexts.
#[test]
fn a_member_ejected_before_a_change_stays_ejected_after_it() {
    let mut state = State {
        routes: vec![
            Route::new(STEADY_HOST, "/", &[("shop", 1)]),
            Route::new("a.test", "/", &[("app-a", 1)]),
        ],
        shop_members: vec!["c2".into(), "c3".into(), "c4".into()],
        invalid: false,
    };
    let mut live = Live::start("xds-eject", &state, 2).unwrap();
    live.stop_backend("c3");
    let keys = keys();
    // Keyed requests until the balancer ejects c3 (Envoy retries each into another member).
    let start = Instant::now();
    while live.stat_containing("shop.c3.ejections") == 0 {
        for k in &keys {
            let r = wasmgate_harness::live_reconfig::probe(live.http, STEADY_HOST, "/", k).unwrap();
            assert_eq!(r.0, 200, "retried into another member");
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "c3 never ejected"
        );
    }
    let picked_before = live.stat_containing("shop.c3.requests");
    assert!(picked_before > 0, "the counter counts picks of c3");

    state
        .routes
        .push(Route::new("a.test", "/v2", &[("app-b", 1)]));
    let wrote = live.write(&state).unwrap();
    let seen = live.time_until(
        wrote,
        Duration::from_secs(5),
        "a.test",
        "/v2",
        "k",
        |s, b| s == 200 && b == Some("app-b"),
    );
    assert!(seen.is_some(), "the change applied");
    for k in &keys {
        let r = wasmgate_harness::live_reconfig::probe(live.http, STEADY_HOST, "/", k).unwrap();
        assert_eq!(r.0, 200);
    }
    assert_eq!(
        live.stat_containing("shop.c3.requests"),
        picked_before,
        "the new config's balancer never picked the ejected member"
    );
}

/// A member removed while one of its requests is still waiting for its upstream is drained,
/// not cut: the slow request completes from that member, new requests with its key go to
/// another member, and the member's clusters leave CDS only after the drain period.
#[test]
fn a_request_in_flight_on_a_removed_member_completes() {
    let mut state = State {
        routes: vec![Route::new(STEADY_HOST, "/", &[("shop", 1)])],
        shop_members: vec!["c2".into(), "c3".into(), "c4".into()],
        invalid: false,
    };
    let live = Live::start("xds-drain", &state, 2).unwrap();
    let key = keys()
        .into_iter()
        .find(|k| {
            wasmgate_harness::live_reconfig::probe(live.http, STEADY_HOST, "/", k)
                .is_ok_and(|(s, b)| s == 200 && b.as_deref() == Some("c3"))
        })
        .expect("some key lands on c3");
    let http = live.http;
    let slow_key = key.clone();
    let slow = std::thread::spawn(move || {
        let headers: [(&str, &[u8]); 2] = [
            (
                wasmgate_harness::live_reconfig::AFFINITY_HEADER,
                slow_key.as_bytes(),
            ),
            ("x-echo-delay-ms", b"2000"),
        ];
        wasmgate_harness::request(http, "GET", STEADY_HOST, "/", &headers)
    });
    // The slow request is on its way to c3 before the change is written.
    std::thread::sleep(Duration::from_millis(300));
    state.shop_members.retain(|m| m != "c3");
    let wrote = live.write(&state).unwrap();
    let moved = live.time_until(
        wrote,
        Duration::from_secs(3),
        STEADY_HOST,
        "/",
        &key,
        |s, b| s == 200 && is_member(b) && b != Some("c3"),
    );
    assert!(moved.is_some(), "new requests with the key leave c3");
    let r = slow.join().unwrap().expect("the slow request was answered");
    assert_eq!(
        (r.status, r.backend().as_deref()),
        (200, Some("c3")),
        "the request in flight on the removed member completed there"
    );
    assert!(
        wrote.elapsed() >= Duration::from_millis(1500),
        "the slow request outlived the change"
    );
}
