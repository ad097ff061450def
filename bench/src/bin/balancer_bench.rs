//! The balancer's cost per request: selection natively (filters/core) beside the compiled
//! .wasm in host-sim, for 3, 30 and 300 member clusters, with and without an affinity key.
//! The .wasm column is the whole filter (host calls included) minus the no-Wasm baseline.
//! Run with `cargo run --release -p wasmgate-bench --bin balancer_bench`.

use std::hint::black_box;
use std::time::Instant;

use host_sim::{FilterChain, HostSim, HttpRequest, PluginSpec, Routes, WasmSource};
use serde_json::{json, Value};
use wasmgate_core::config::MultiClusterService;
use wasmgate_core::multicluster::{HealthView, Locality, PickInput, Selector, WorkerState};
use wasmgate_core::XorShift;

fn service(n: usize, affinity: bool) -> Value {
    let regions = ["us", "eu", "ap"];
    let members: Vec<Value> = (0..n)
        .map(|i| {
            let r = regions[i % 3];
            json!({"name": format!("cluster-{i}"), "cluster": format!("shop_cluster-{i}"),
                   "weight": 1 + i % 5, "labels": {"region": r, "zone": format!("{r}-{}", i % 2)}})
        })
        .collect();
    let mut svc = json!({"members": members, "locality": {}});
    if affinity {
        svc["affinity"] = json!({"header": "x-user"});
    }
    svc
}

fn native_ns(svc: &Value, affinity: bool) -> Result<f64, Box<dyn std::error::Error>> {
    let svc: MultiClusterService = serde_json::from_value(svc.clone())?;
    let mut sel = Selector::compile("shop", &svc)?;
    sel.set_locality(&Locality::new(Some("us"), Some("us-0")));
    let view = HealthView::all_healthy(sel.members().len());
    let (mut st, mut rng) = (WorkerState::new(), XorShift::new(1));
    let keys: Vec<String> = (0..1024).map(|k| format!("user-{k}")).collect();
    let iters = 200_000;
    let start = Instant::now();
    for i in 0..iters {
        let key = keys[i % keys.len()].as_bytes();
        let headers = [("x-user", key)];
        let input = if affinity {
            PickInput {
                headers: &headers,
                ..Default::default()
            }
        } else {
            PickInput::default()
        };
        let _ = black_box(sel.pick(&input, &view, &mut st, &mut rng));
    }
    Ok(start.elapsed().as_nanos() as f64 / iters as f64)
}

/// Best of three passes: microseconds per request.
fn per_request_us(mut run: impl FnMut(usize)) -> f64 {
    let n = 3000;
    (0..3)
        .map(|_| {
            let start = Instant::now();
            for i in 0..n {
                run(i);
            }
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .fold(f64::MAX, f64::min)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = HostSim::new()?;
    let wasm = wasmgate_harness::paths::wasm("wasmgate_balancer");
    let routes = Routes::cluster_header("x-wasmgate-cluster");
    let req =
        |i: usize| HttpRequest::get("shop", "/").header("x-user", format!("user-{}", i % 1024));
    let router_alone = FilterChain::new(&sim, Vec::new());
    let baseline = per_request_us(|i| {
        black_box(router_alone.run_one(&Routes::fixed("shop_cluster-0"), req(i)));
    });
    println!(
        "balancer: selection natively (filters/core) vs the .wasm in host-sim ({})",
        wasm.display()
    );
    println!("no-Wasm baseline in host-sim: {baseline:.2} us/request");
    println!(
        "{:>8} {:>9} {:>12} {:>14} {:>16} {:>11}",
        "members", "affinity", "native ns", "wasm us/req", "wasm-baseline us", "host calls"
    );
    for n in [3, 30, 300] {
        for affinity in [false, true] {
            let svc = service(n, affinity);
            let config = json!({"serviceFrom": "host", "locality": {"region": "us", "zone": "us-0"},
                                "services": {"shop": svc}});
            let plugin = sim.load(PluginSpec {
                configuration: config.to_string().into_bytes(),
                vm_id: "wasmgate".into(),
                ..PluginSpec::new(WasmSource::File(wasm.clone()), "wasmgate.balancer")
            })?;
            // The first request of a worker also sets every member's health gauges; the
            // host calls reported are a steady request's.
            let first = plugin.http(&routes, req(0));
            assert!(first.cluster.is_some(), "{:?}", first.logs);
            let probe = plugin.http(&routes, req(1));
            assert!(
                probe.cluster.is_some(),
                "the balancer must pick: {:?}",
                probe.logs
            );
            let wasm_us = per_request_us(|i| {
                black_box(plugin.http(&routes, req(i)));
            });
            let native = native_ns(&svc, affinity)?;
            println!(
                "{n:>8} {affinity:>9} {native:>12.1} {wasm_us:>14.2} {:>16.2} {:>11}",
                wasm_us - baseline,
                probe.host_calls
            );
        }
    }
    Ok(())
}
