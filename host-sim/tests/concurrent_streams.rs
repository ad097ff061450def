//! Several streams open at once on the same VMs, their callbacks interleaved on one clock.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{check_callout_headers, load, sim};
use host_sim::{
    FilterChain, HostSim, HttpOutcome, HttpRequest, PluginSpec, Routes, UpstreamReply, WasmSource,
};

/// Request headers decide what the guest does:
/// * `x-trap`: traps;
/// * `x-write: V`: stores V under shared key `k`, then continues;
/// * `x-auth: C`: `http_call`s cluster C and pauses; the reply's body becomes
///   `x-wasmgate-cluster`, the shared value `k` (if any) becomes `x-seen`, and the body is
///   logged before the stream resumes.
///
/// Metrics: gauge `open` (stream contexts alive), counters `max_open` (highest `open`
/// seen) and `deleted`.
fn guest() -> String {
    let (headers, len) = check_callout_headers();
    format!(
        r#"
  (data (i32.const 1024) "x-auth")
  (data (i32.const 1040) "x-write")
  (data (i32.const 1056) "x-trap")
  (data (i32.const 1072) "x-wasmgate-cluster")
  (data (i32.const 1096) "x-seen")
  (data (i32.const 1104) "k")
  (data (i32.const 1112) "open")
  (data (i32.const 1120) "max_open")
  (data (i32.const 1136) "deleted")
  (data (i32.const 1200) "{headers}")
  (global $open (mut i32) (i32.const 0))
  (global $max (mut i32) (i32.const 0))
  (global $m_open (mut i32) (i32.const 0))
  (global $m_max (mut i32) (i32.const 0))
  (global $m_deleted (mut i32) (i32.const 0))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (drop (call $define_metric (i32.const 1) (i32.const 1112) (i32.const 4) (i32.const 300)))
    (global.set $m_open (i32.load (i32.const 300)))
    (drop (call $define_metric (i32.const 0) (i32.const 1120) (i32.const 8) (i32.const 300)))
    (global.set $m_max (i32.load (i32.const 300)))
    (drop (call $define_metric (i32.const 0) (i32.const 1136) (i32.const 7) (i32.const 300)))
    (global.set $m_deleted (i32.load (i32.const 300)))
    (i32.const 1))
  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (if (local.get $parent) (then
      (global.set $open (i32.add (global.get $open) (i32.const 1)))
      (drop (call $inc_metric (global.get $m_open) (i64.const 1)))
      (if (i32.gt_u (global.get $open) (global.get $max)) (then
        (global.set $max (global.get $open))
        (drop (call $inc_metric (global.get $m_max) (i64.const 1))))))))
  (func (export "proxy_on_delete") (param $ctx i32)
    (global.set $open (i32.sub (global.get $open) (i32.const 1)))
    (drop (call $inc_metric (global.get $m_open) (i64.const -1)))
    (drop (call $inc_metric (global.get $m_deleted) (i64.const 1))))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 1056) (i32.const 6) (i32.const 256) (i32.const 260)))
      (then unreachable))
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 1040) (i32.const 7) (i32.const 256) (i32.const 260)))
      (then (drop (call $set_shared (i32.const 1104) (i32.const 1) (call $ret_ptr) (call $ret_len) (i32.const 0)))))
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 1024) (i32.const 6) (i32.const 256) (i32.const 260)))
      (then
        (if (call $http_call (call $ret_ptr) (call $ret_len) (i32.const 1200) (i32.const {len})
              (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const 300))
          (then (return (i32.const 0))))
        ;; The callback comes to the root context: remember which stream made the call.
        (i32.store (i32.add (i32.const 3000) (i32.mul (i32.load (i32.const 300)) (i32.const 4))) (local.get $ctx))
        (return (i32.const 1))))
    (i32.const 0))
  (func (export "proxy_on_http_call_response") (param $ctx i32) (param $token i32) (param $nh i32) (param $body i32) (param $nt i32)
    (drop (call $set_effective (i32.load (i32.add (i32.const 3000) (i32.mul (local.get $token) (i32.const 4))))))
    (drop (call $get_buffer (i32.const 4) (i32.const 0) (local.get $body) (i32.const 256) (i32.const 260)))
    (call $log (call $ret_ptr) (call $ret_len))
    (drop (call $replace_header (i32.const 0) (i32.const 1072) (i32.const 18) (call $ret_ptr) (call $ret_len)))
    (if (i32.eqz (call $get_shared (i32.const 1104) (i32.const 1) (i32.const 256) (i32.const 260) (i32.const 264)))
      (then (drop (call $add_header (i32.const 0) (i32.const 1096) (i32.const 6) (call $ret_ptr) (call $ret_len)))))
    (drop (call $continue (i32.const 0))))
"#
    )
}

fn routes() -> Routes {
    Routes::cluster_header("x-wasmgate-cluster")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A stream that pauses on a callout to `auth-<delay_ms>`, whose reply (after that delay)
/// names `cluster`.
fn callout(delay_ms: u64, cluster: &str, sim: &HostSim) -> HttpRequest {
    let auth = format!("auth-{delay_ms}-{cluster}");
    sim.set_upstream(&auth, UpstreamReply::ok(cluster).with_delay(ms(delay_ms)));
    HttpRequest::get("a", "/").header("x-auth", &auth)
}

/// Records when each upstream cluster received its request.
type Arrivals = Arc<Mutex<Vec<(String, Duration)>>>;

fn record_upstreams(sim: &HostSim, clusters: &[&str]) -> Arrivals {
    let arrivals = Arrivals::default();
    let t0 = sim.now();
    for c in clusters {
        let (log, clock, name) = (arrivals.clone(), sim.clone(), c.to_string());
        sim.set_upstream_fn(c, move |_| {
            let at = clock.now().duration_since(t0).unwrap_or_default();
            log.lock().unwrap().push((name.clone(), at));
            UpstreamReply::ok(name.clone())
        });
    }
    arrivals
}

/// What may legitimately differ between a stream run alone and among others: the request
/// id Envoy generates per stream.
fn without_request_id(mut out: HttpOutcome) -> HttpOutcome {
    if let Some(h) = out.upstream_request.as_mut() {
        h.retain(|(k, _)| k != "x-request-id");
    }
    out
}

fn messages(out: &HttpOutcome) -> Vec<&str> {
    out.logs.iter().map(|(_, m)| m.as_str()).collect()
}

#[test]
fn callouts_with_different_delays_complete_in_delay_order() {
    struct Case {
        name: &'static str,
        /// (callout delay in ms, cluster its reply names), in start order.
        streams: &'static [(u64, &'static str)],
        /// Clusters in the order the upstreams see the requests.
        upstream_order: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "the later, faster stream overtakes",
            streams: &[(50, "east"), (10, "west")],
            upstream_order: &["west", "east"],
        },
        Case {
            name: "three streams in delay order",
            streams: &[(30, "east"), (10, "west"), (20, "north")],
            upstream_order: &["west", "north", "east"],
        },
        Case {
            name: "equal delays keep start order",
            streams: &[(20, "east"), (20, "west")],
            upstream_order: &["east", "west"],
        },
    ];
    let clusters = ["east", "west", "north"];
    for c in cases {
        let sim = sim();
        let plugin = load(&sim, &guest());
        let arrivals = record_upstreams(&sim, &clusters);
        let reqs: Vec<HttpRequest> = c
            .streams
            .iter()
            .map(|(d, cl)| callout(*d, cl, &sim))
            .collect();
        let t0 = sim.now();
        let outs = FilterChain::new(plugin.sim(), vec![&plugin]).run(&routes(), reqs.clone());
        assert_eq!(outs.len(), c.streams.len(), "{}", c.name);

        let seen = arrivals.lock().unwrap().clone();
        let order: Vec<&str> = seen.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(order, c.upstream_order, "{}", c.name);
        for ((delay, cluster), out) in c.streams.iter().zip(&outs) {
            let at = seen.iter().find(|(c, _)| c == cluster).map(|(_, at)| *at);
            assert_eq!(
                at,
                Some(ms(*delay)),
                "{}: {cluster} resumed at its delay",
                c.name
            );
            assert_eq!(out.status, 200, "{}: {:?}", c.name, out.logs);
            assert_eq!(out.cluster.as_deref(), Some(*cluster), "{}", c.name);
            assert_eq!(out.response_body, cluster.as_bytes(), "{}", c.name);
            assert_eq!(
                out.upstream_header("x-wasmgate-cluster"),
                Some(cluster.as_bytes()),
                "{}",
                c.name
            );
            assert_eq!(
                messages(out),
                [*cluster],
                "{}: own callout reply only",
                c.name
            );
        }
        let last = c.streams.iter().map(|(d, _)| *d).max().unwrap();
        assert_eq!(
            sim.now().duration_since(t0).unwrap(),
            ms(last),
            "{}: the clock stops at the last event",
            c.name
        );

        // Each outcome is the one the stream gets alone (host calls and logs included).
        for (req, out) in reqs.into_iter().zip(outs) {
            let alone_sim = common::sim();
            let alone = load(&alone_sim, &guest());
            record_upstreams(&alone_sim, &clusters);
            for (d, cl) in c.streams {
                callout(*d, cl, &alone_sim);
            }
            let solo = alone.http(&routes(), req);
            assert!(solo.host_calls > 0);
            assert_eq!(
                without_request_id(out),
                without_request_id(solo),
                "{}",
                c.name
            );
        }
    }
}

#[test]
fn shared_data_written_by_one_stream_is_seen_by_a_later_resumed_one() {
    struct Case {
        name: &'static str,
        writer_arrives_ms: u64,
        seen: Option<&'static [u8]>,
    }
    let cases = [
        Case {
            name: "written while the reader waits",
            writer_arrives_ms: 0,
            seen: Some(b"from-writer"),
        },
        Case {
            name: "written just before the reader resumes",
            writer_arrives_ms: 49,
            seen: Some(b"from-writer"),
        },
        Case {
            name: "written after the reader resumed",
            writer_arrives_ms: 80,
            seen: None,
        },
    ];
    for c in cases {
        let sim = sim();
        let plugin = load(&sim, &guest());
        let reader = callout(50, "east", &sim);
        let writer = HttpRequest::get("a", "/")
            .header("x-write", "from-writer")
            .header("x-wasmgate-cluster", "west");
        let outs = FilterChain::new(&sim, vec![&plugin]).run(
            &routes(),
            [reader, writer.arriving_after(ms(c.writer_arrives_ms))],
        );
        assert_eq!(outs[0].status, 200, "{}: {:?}", c.name, outs[0].logs);
        assert_eq!(outs[0].cluster.as_deref(), Some("east"), "{}", c.name);
        assert_eq!(outs[0].upstream_header("x-seen"), c.seen, "{}", c.name);
        assert_eq!(outs[1].cluster.as_deref(), Some("west"), "{}", c.name);
        assert_eq!(
            sim.shared_data("test", b"k").map(|(v, _)| v),
            Some(b"from-writer".to_vec()),
            "{}",
            c.name
        );
    }
}

#[test]
fn a_trap_fails_the_vm_for_every_open_and_later_stream() {
    struct Case {
        name: &'static str,
        fail_open: bool,
        /// (request, status, details) in start order.
        streams: Vec<(HttpRequest, u16, &'static str)>,
    }
    let trap = || {
        HttpRequest::get("a", "/")
            .header("x-trap", "1")
            .header("x-wasmgate-cluster", "svc")
    };
    let plain = || HttpRequest::get("a", "/").header("x-wasmgate-cluster", "svc");
    let cases = |sim: &HostSim| {
        sim.set_upstream("slow", UpstreamReply::ok("slow").with_delay(ms(100)));
        [
            Case {
                name: "fail closed",
                fail_open: false,
                streams: vec![
                    (callout(50, "east", sim), 503, "wasm_fail_stream"),
                    (
                        HttpRequest::get("a", "/").header("x-wasmgate-cluster", "slow"),
                        503,
                        "wasm_fail_stream",
                    ),
                    (trap(), 503, "wasm_fail_stream"),
                    (plain(), 503, "wasm_fail_stream"),
                ],
            },
            Case {
                name: "fail open",
                fail_open: true,
                streams: vec![
                    (
                        HttpRequest::get("a", "/").header("x-wasmgate-cluster", "slow"),
                        200,
                        "via_upstream",
                    ),
                    (trap(), 200, "via_upstream"),
                    (plain(), 200, "via_upstream"),
                ],
            },
        ]
    };
    for mode in [false, true] {
        let sim = sim();
        let case = cases(&sim)
            .into_iter()
            .find(|c| c.fail_open == mode)
            .unwrap();
        let plugin = sim
            .load(PluginSpec {
                fail_open: case.fail_open,
                ..common::spec(&guest())
            })
            .unwrap();
        let (reqs, want): (Vec<_>, Vec<_>) = case
            .streams
            .into_iter()
            .map(|(r, s, d)| (r, (s, d)))
            .unzip();
        let outs = FilterChain::new(plugin.sim(), vec![&plugin]).run(&routes(), reqs);
        let trap_msg = plugin.failed().expect("the VM failed");
        for (k, (out, (status, details))) in outs.iter().zip(want).enumerate() {
            assert_eq!(
                (out.status, out.details.as_str()),
                (status, details),
                "{}: stream {k}: {:?}",
                case.name,
                out.logs
            );
            assert!(
                out.vm_failures.contains(&trap_msg),
                "{}: stream {k} reports the failure: {:?}",
                case.name,
                out.vm_failures
            );
        }
        assert!(
            outs.iter().filter(|o| o.logged("wasm trap")).count() == 1,
            "{}: only the trapping stream logs the trap",
            case.name
        );
    }
}

/// The guest above, with a 10 ms tick on the root context that logs `tick`.
fn ticking_guest() -> String {
    guest()
        .replacen(
            "(global.set $m_deleted (i32.load (i32.const 300)))",
            "(global.set $m_deleted (i32.load (i32.const 300)))
    (drop (call $set_tick (i32.const 10)))",
            1,
        )
        .replacen(
            "(data (i32.const 1024)",
            "(data (i32.const 1160) \"tick\")
  (func (export \"proxy_on_tick\") (param i32) (call $log (i32.const 1160) (i32.const 4)))
  (data (i32.const 1024)",
            1,
        )
}

#[test]
fn root_context_ticks_count_for_every_stream_open_at_the_time() {
    let sim = sim();
    let plugin = load(&sim, &ticking_guest());
    let outs = FilterChain::new(plugin.sim(), vec![&plugin]).run(
        &routes(),
        vec![callout(25, "east", &sim), callout(15, "west", &sim)],
    );
    assert_eq!(messages(&outs[0]), ["tick", "tick", "east"]);
    assert_eq!(messages(&outs[1]), ["tick", "west"]);
    // As each stream alone would see it.
    let alone = sim.fresh();
    let p = load(&alone, &ticking_guest());
    let solo = p.http(&routes(), callout(25, "east", &alone));
    assert_eq!(messages(&solo), messages(&outs[0]));
    assert_eq!(solo.host_calls, outs[0].host_calls);

    // Before a late arrival, the VM ticks on its own, as with `advance`.
    let sim = common::sim();
    let plugin = load(&sim, &ticking_guest());
    let outs = FilterChain::new(&sim, vec![&plugin]).run(
        &routes(),
        [callout(15, "east", &sim).arriving_after(ms(35))],
    );
    assert_eq!(messages(&outs[0]), ["tick", "tick", "east"]);
    let idle: Vec<String> = plugin.take_logs().into_iter().map(|(_, m)| m).collect();
    assert_eq!(idle, ["tick", "tick", "tick"]);
}

#[test]
fn hundred_concurrent_streams_share_one_vm_and_release_every_context() {
    let sim = sim();
    let plugin = load(&sim, &guest());
    let clusters = ["east", "west"];
    let reqs: Vec<HttpRequest> = (0..100u64)
        .map(|k| callout(1 + (k * 37) % 100, clusters[(k % 2) as usize], &sim))
        .collect();
    let outs = FilterChain::new(plugin.sim(), vec![&plugin]).run(&routes(), reqs);
    assert_eq!(outs.len(), 100);
    for (k, out) in outs.iter().enumerate() {
        let cluster = clusters[k % 2];
        assert_eq!(
            (out.status, out.cluster.as_deref()),
            (200, Some(cluster)),
            "stream {k}: {:?}",
            out.logs
        );
        assert_eq!(messages(out), [cluster], "stream {k}");
        assert!(out.vm_failures.is_empty());
    }
    assert_eq!(plugin.failed(), None);
    assert_eq!(
        sim.metric("max_open").unwrap().value,
        100,
        "all open at once"
    );
    assert_eq!(sim.metric("deleted").unwrap().value, 100);
    assert_eq!(sim.metric("open").unwrap().value, 0, "no context leaked");
    // Nothing is left pending on the VM.
    plugin.advance(Duration::from_secs(10));
    assert!(plugin.take_logs().is_empty());
}

#[test]
fn filter_chains_run_concurrently_too() {
    let sim = sim();
    let first = load(&sim, &guest());
    let second = load(&sim, &guest());
    let chain = FilterChain::new(&sim, vec![&first, &second]);
    // Both filters call out; the second filter's reply picks the cluster.
    let outs = chain.run(
        &routes(),
        vec![callout(40, "east", &sim), callout(15, "west", &sim)],
    );
    let got: Vec<_> = outs
        .iter()
        .map(|o| (o.status, o.cluster.as_deref(), messages(o)))
        .collect();
    assert_eq!(
        got,
        [
            (200, Some("east"), vec!["east", "east"]),
            (200, Some("west"), vec!["west", "west"]),
        ]
    );
    assert_eq!(sim.metric("open").unwrap().value, 0);
}

#[test]
fn one_concurrent_stream_is_a_plain_stream() {
    let sim = sim();
    let plugin = load(&sim, &guest());
    let req = callout(25, "east", &sim);
    let mut outs = FilterChain::new(plugin.sim(), vec![&plugin]).run(&routes(), vec![req.clone()]);
    let alone = sim.fresh();
    let p = load(&alone, &guest());
    callout(25, "east", &alone);
    let solo = p.http(&routes(), req);
    assert_eq!(without_request_id(outs.remove(0)), without_request_id(solo));
    assert!(FilterChain::new(plugin.sim(), vec![&plugin])
        .run(&routes(), Vec::new())
        .is_empty());
}

fn sdk_plugin(sim: &HostSim) -> host_sim::Plugin {
    sim.load(PluginSpec {
        configuration: b"{}".to_vec(),
        ..PluginSpec::new(WasmSource::File(common::sdk_guest_wasm()), "wasmgate.sdk")
    })
    .unwrap()
}

#[test]
fn sdk_guest_callbacks_reach_the_stream_that_called_out() {
    let sim = sim();
    let plugin = sdk_plugin(&sim);
    // The first callout is answered late with "east", the second early with "west".
    let n = Arc::new(AtomicUsize::new(0));
    sim.set_upstream_fn("auth", move |_| match n.fetch_add(1, Ordering::SeqCst) {
        0 => UpstreamReply::ok("east").with_delay(ms(50)),
        _ => UpstreamReply::ok("west").with_delay(ms(10)),
    });
    let arrivals = record_upstreams(&sim, &["east", "west"]);
    let outs = FilterChain::new(plugin.sim(), vec![&plugin]).run(
        &routes(),
        vec![
            HttpRequest::get("a", "/callout"),
            HttpRequest::get("a", "/callout"),
            HttpRequest::get("a", "/shared"),
        ],
    );
    let got: Vec<_> = outs
        .iter()
        .map(|o| (o.status, o.cluster.as_deref()))
        .collect();
    assert_eq!(
        got,
        [(200, Some("east")), (200, Some("west")), (503, None)],
        "{:?}",
        outs.iter().map(|o| &o.logs).collect::<Vec<_>>()
    );
    assert!(outs[2].logged("hits=1"));
    let order: Vec<String> = arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.0.clone())
        .collect();
    assert_eq!(order, ["west", "east"]);
}

#[test]
fn sdk_guest_panic_fails_the_stream_paused_on_a_callout() {
    let sim = sim();
    let plugin = sdk_plugin(&sim);
    sim.set_upstream("auth", UpstreamReply::ok("east").with_delay(ms(20)));
    let outs = FilterChain::new(plugin.sim(), vec![&plugin]).run(
        &routes(),
        vec![
            HttpRequest::get("a", "/callout"),
            HttpRequest::get("a", "/panic"),
        ],
    );
    for out in &outs {
        assert_eq!(
            (out.status, out.details.as_str()),
            (503, "wasm_fail_stream"),
            "{:?}",
            out.logs
        );
        assert!(!out.vm_failures.is_empty());
    }
    assert!(outs[1].logged("boom at /panic"));
    assert!(!outs[0].logged("boom at /panic"), "logs stay per stream");
}
