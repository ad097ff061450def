//! Live reconfiguration at length: 100 route changes through `wasmgate generate --xds DIR
//! --watch` into a real Envoy (2 workers) under 200 requests/s of keyed traffic. Prints the
//! time from input write to new routing, failed requests, Envoy's resident memory before and
//! after, and whether the ECDS updates created Wasm VMs.

use std::time::{Duration, Instant};

use wasmgate_harness::live_reconfig::{Live, Route, State, Traffic};

const CHANGES: usize = 100;

fn state(backend: &str) -> State {
    State {
        routes: vec![
            Route::new("shop.test", "/", &[("shop", 1)]),
            Route::new("a.test", "/", &[(backend, 1)]),
        ],
        shop_members: vec!["c2".into(), "c3".into(), "c4".into()],
        invalid: false,
    }
}

fn wasm_stats(live: &Live) -> String {
    live.envoy
        .stats_with_prefix("wasm.envoy.wasm.runtime.v8.")
        .iter()
        .map(|(n, v)| {
            format!(
                "{}={v}",
                n.trim_start_matches("wasm.envoy.wasm.runtime.v8.")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    if let Err(e) = run() {
        eprintln!("xds_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let live = Live::start("xds-bench", &state("app-a"), 2)?;
    let keys: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    let traffic = Traffic::start(live.http, "shop.test", &keys, 2, 200);
    std::thread::sleep(Duration::from_secs(1));
    let wasm_before = wasm_stats(&live);
    let mut rss_warm = 0;
    let rss_start = live.envoy_rss_kb().unwrap_or(0);
    let mut took = Vec::new();
    for i in 0..CHANGES {
        let backend = if i % 2 == 0 { "app-b" } else { "app-a" };
        let wrote = live.write(&state(backend))?;
        let seen = live.time_until(wrote, Duration::from_secs(5), "a.test", "/", "k", |s, b| {
            s == 200 && b == Some(backend)
        });
        took.push(seen.ok_or(format!("change {i} not visible within 5 s"))?);
        let _ = live
            .watcher
            .lines_until(Duration::from_secs(2), |l| l.starts_with("version"));
        if i == 9 {
            rss_warm = live.envoy_rss_kb().unwrap_or(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let rss_end = live.envoy_rss_kb().unwrap_or(0);
    let wasm_after = wasm_stats(&live);
    let outcomes = traffic.finish();
    let failed = outcomes
        .iter()
        .filter(|o| o.status != 200 || o.backend.is_none())
        .count();
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "live reconfiguration: {CHANGES} route changes via --watch, 2 Envoy workers, ~200 requests/s"
    );
    println!(
        "  write -> routing: median {:.0} ms, p90 {:.0} ms, worst {:.0} ms",
        ms(took[took.len() / 2]),
        ms(took[took.len() * 9 / 10]),
        ms(took[took.len() - 1])
    );
    println!("  requests: {} sent, {failed} failed", outcomes.len());
    println!(
        "  Envoy RSS: {} MB at start, {} MB after 10 changes, {} MB after {CHANGES} ({:+.1}% from 10)",
        rss_start / 1024,
        rss_warm / 1024,
        rss_end / 1024,
        (rss_end as f64 - rss_warm as f64) * 100.0 / rss_warm.max(1) as f64
    );
    println!("  Wasm VMs before: {wasm_before}");
    println!("  Wasm VMs after:  {wasm_after}");
    Ok(())
}
