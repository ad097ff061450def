//! Selection cost per pick, natively, for 3, 30 and 300 member clusters: weighted round robin
//! (no key), affinity (rendezvous over the tier), and a health change (plan rebuild).
//! `cargo bench -p wasmgate-core --bench select`.

// A bench may unwrap: a failure should stop it loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use wasmgate_core::config::{Affinity, LocalityPolicy, Member, MultiClusterService};
use wasmgate_core::multicluster::{HealthView, Locality, PickInput, Selector, WorkerState};
use wasmgate_core::XorShift;

fn service(n: usize) -> MultiClusterService {
    let regions = ["us", "eu", "ap"];
    let members = (0..n)
        .map(|i| {
            let region = regions[i % 3];
            let labels = BTreeMap::from([
                ("region".to_string(), region.to_string()),
                ("zone".to_string(), format!("{region}-{}", i % 2)),
            ]);
            Member {
                name: format!("cluster-{i}"),
                cluster: format!("shop_cluster-{i}"),
                failover_cluster: None,
                weight: 1 + (i as u32 % 5),
                labels,
            }
        })
        .collect();
    MultiClusterService {
        members,
        affinity: Some(Affinity::Header("x-user".into())),
        locality: Some(LocalityPolicy::default()),
        ..Default::default()
    }
}

/// Runs `f` for about `budget` and returns nanoseconds per call.
fn time(budget: Duration, mut f: impl FnMut(u64)) -> f64 {
    let mut iters = 1_000u64;
    loop {
        let start = Instant::now();
        for i in 0..iters {
            f(i);
        }
        let spent = start.elapsed();
        if spent >= budget {
            return spent.as_nanos() as f64 / iters as f64;
        }
        iters *= 2;
    }
}

fn main() {
    let budget = Duration::from_millis(300);
    println!(
        "{:>8} {:>14} {:>14} {:>16}",
        "members", "weighted ns", "affinity ns", "health change ns"
    );
    for n in [3, 30, 300] {
        let mut sel = Selector::compile("shop", &service(n)).unwrap();
        sel.set_locality(&Locality::new(Some("us"), Some("us-0")));
        let view = HealthView::all_healthy(n);
        let mut st = WorkerState::new();
        let mut rng = XorShift::new(1);
        let weighted = time(budget, |_| {
            black_box(
                sel.pick(black_box(&PickInput::default()), &view, &mut st, &mut rng)
                    .unwrap(),
            );
        });
        let keys: Vec<String> = (0..1024).map(|k| format!("user-{k}")).collect();
        let affinity = time(budget, |i| {
            let key = keys[(i % 1024) as usize].as_bytes();
            let headers = [("x-user", key)];
            let input = PickInput {
                headers: &headers,
                ..Default::default()
            };
            black_box(
                sel.pick(black_box(&input), &view, &mut st, &mut rng)
                    .unwrap(),
            );
        });
        // Alternate two views so every pick rebuilds the plan (the cost of a health change).
        let views = [HealthView::all_healthy(n), HealthView::with_down(n, &[0])];
        let change = time(budget, |i| {
            let v = &views[(i % 2) as usize];
            black_box(
                sel.pick(&PickInput::default(), v, &mut st, &mut rng)
                    .unwrap(),
            );
        });
        println!("{n:>8} {weighted:>14.1} {affinity:>14.1} {change:>16.1}");
    }
}
