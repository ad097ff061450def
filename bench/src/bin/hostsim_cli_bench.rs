//! How fast the `host-sim` command runs again (`make bench`): the wall time of a whole
//! `host-sim run` process with a cold and with a warm compiled-module cache, and of one
//! `check-config` call over 1,000 router configurations.
//!
//! Targets (issue 11): a second `run` of an unchanged module in under 50 ms; 1,000 configs
//! checked in under 10 s. The cache lives in a scratch folder (`HOST_SIM_CACHE_DIR`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wasmgate_harness::{paths, Scratch};

fn host_sim() -> PathBuf {
    paths::workspace_root().join("target/release/host-sim")
}

/// Runs `host-sim ARGS` with the cache in `cache`; returns its wall time and stdout.
fn timed(cache: &Path, args: &[&str]) -> Result<(Duration, String), String> {
    let started = Instant::now();
    let out = Command::new(host_sim())
        .args(args)
        .env("HOST_SIM_CACHE_DIR", cache)
        .output()
        .map_err(|e| format!("{}: {e} (run `make build`)", host_sim().display()))?;
    let elapsed = started.elapsed();
    if !out.status.success() && out.status.code() != Some(1) {
        return Err(format!(
            "host-sim {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((elapsed, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The seed's router config with route `k` renamed, or cut, so every file differs; every
/// tenth is broken JSON, which the router must reject.
fn variant(seed: &Value, k: usize) -> String {
    if k % 10 == 9 {
        return format!("{{\"routes\": [ {k}");
    }
    let mut v = seed.clone();
    if let Some(routes) = v["routes"].as_array_mut() {
        routes.push(json!({"http": {"host": format!("h{k}.example.com"), "rules": [
            {"path": format!("/p{k}"), "statusCode": {"code": 200 + (k % 300) as u16, "body": "x"}}
        ]}}));
    }
    v.to_string()
}

fn main() -> Result<(), String> {
    let scratch = Scratch::new("hostsim-cli-bench").map_err(|e| e.to_string())?;
    let cache = scratch.path().join("cache");
    let router = paths::wasm("wasmgate_router");
    let router = router.display().to_string();
    let seed_path = paths::examples().join("seed/generated/router.json");
    let requests = scratch
        .write("one.jsonl", "{\"host\": \"foo.com\", \"path\": \"/\"}\n")
        .map_err(|e| e.to_string())?;
    let run_args = [
        "run",
        "--wasm",
        router.as_str(),
        "--config",
        seed_path.to_str().unwrap_or_default(),
        "--requests",
        requests.to_str().unwrap_or_default(),
    ];
    let (cold, _) = timed(&cache, &run_args)?;
    let mut warm = Vec::new();
    for _ in 0..5 {
        warm.push(timed(&cache, &run_args)?.0);
    }
    warm.sort();
    let (uncached, _) = timed(&cache, &[&run_args[..], &["--no-cache"]].concat())?;
    println!(
        "host-sim run, one request, whole process: cold cache {:.0} ms, warm cache {:.1} ms \
         (median of 5; target < 50 ms), --no-cache {:.0} ms",
        cold.as_secs_f64() * 1e3,
        warm[2].as_secs_f64() * 1e3,
        uncached.as_secs_f64() * 1e3
    );

    let seed: Value = serde_json::from_str(
        &std::fs::read_to_string(&seed_path)
            .map_err(|e| format!("{}: {e}", seed_path.display()))?,
    )
    .map_err(|e| e.to_string())?;
    let configs = scratch.path().join("configs");
    std::fs::create_dir_all(&configs).map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for k in 0..1000 {
        let p = configs.join(format!("router-{k:04}.json"));
        std::fs::write(&p, variant(&seed, k)).map_err(|e| e.to_string())?;
        files.push(p.display().to_string());
    }
    let mut args = vec!["check-config", "--wasm", router.as_str()];
    args.extend(files.iter().map(String::as_str));
    let (elapsed, out) = timed(&cache, &args)?;
    let configured = out
        .lines()
        .filter(|l| l.contains("\"configured\":true"))
        .count();
    let rejected = out
        .lines()
        .filter(|l| l.contains("\"configured\":false"))
        .count();
    println!(
        "host-sim check-config, router: {} configs ({configured} configured, {rejected} rejected) \
         in {:.2} s, one process (target < 10 s)",
        files.len(),
        elapsed.as_secs_f64()
    );
    Ok(())
}
