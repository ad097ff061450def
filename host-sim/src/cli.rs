//! The `host-sim` command line (hand-written argument parsing).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::json::http_outcome_to_json;
use crate::plugin::{HostSim, HostSimConfig, PluginSpec, WasmSource};
use crate::routes::Routes;
use crate::scenario::{run_file, LoadOptions, RequestSpec, Target};
use crate::types::Level;

const USAGE: &str = "\
usage:
  host-sim run   TARGET --requests FILE.jsonl     print one JSON result per request line
  host-sim test  SCENARIO.yaml...                 check scenarios; exit 1 on a mismatch
  host-sim bench TARGET [--requests FILE.jsonl] [--iterations N]

TARGET is either
  --envoy-config FILE        an Envoy bootstrap (YAML or JSON): its Wasm HTTP filters in
                             order, its route_config and its static clusters
or
  --wasm FILE                one proxy-wasm module, with
  --config FILE | --config-string TEXT   its plugin configuration
  --name NAME --root-id ID --vm-id ID    (default: the module's file stem)
  --cluster-header NAME      route on this request header (default x-wasmgate-cluster)
  --cluster NAME             or route everything to one cluster
and, for both:
  --workers N                VMs per plugin (default 1)
  --log-level LEVEL          lowest level logged: trace, debug, info (default), warn, error
  --fuel N                   instructions per callback before the VM fails (default 10^9;
                             0 = unlimited, the default of bench)
  --memory-mib N             linear-memory limit per VM (default 256)

A request line is a JSON object: {\"method\", \"host\", \"path\", \"headers\": {name: value},
\"body\", \"chunks\": [...], \"trailers\", \"source\": \"ip:port\", \"properties\": {\"a.b\": v},
\"advance_ms\", \"name\"}. Header values are strings or {\"hex\": \"...\"}.
";

#[derive(Default)]
struct Args {
    envoy_config: Option<PathBuf>,
    wasm: Option<PathBuf>,
    config: Option<Vec<u8>>,
    name: Option<String>,
    root_id: Option<String>,
    vm_id: Option<String>,
    cluster_header: Option<String>,
    cluster: Option<String>,
    workers: usize,
    requests: Option<PathBuf>,
    iterations: usize,
    log_level: Level,
    /// Instructions per callback; `Some(0)` lifts the limit.
    fuel: Option<u64>,
    memory_mib: Option<usize>,
    files: Vec<PathBuf>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        workers: 1,
        iterations: 10_000,
        log_level: Level::Info,
        ..Args::default()
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--envoy-config" => a.envoy_config = Some(value(arg)?.into()),
            "--wasm" => a.wasm = Some(value(arg)?.into()),
            "--config" => {
                let p = value(arg)?;
                a.config = Some(std::fs::read(&p).map_err(|e| format!("cannot read {p}: {e}"))?);
            }
            "--config-string" => a.config = Some(value(arg)?.into_bytes()),
            "--name" => a.name = Some(value(arg)?),
            "--root-id" => a.root_id = Some(value(arg)?),
            "--vm-id" => a.vm_id = Some(value(arg)?),
            "--cluster-header" => a.cluster_header = Some(value(arg)?),
            "--cluster" => a.cluster = Some(value(arg)?),
            "--workers" => {
                a.workers = value(arg)?
                    .parse()
                    .map_err(|_| "--workers needs a number")?
            }
            "--requests" => a.requests = Some(value(arg)?.into()),
            "--iterations" => {
                a.iterations = value(arg)?
                    .parse()
                    .map_err(|_| "--iterations needs a number")?
            }
            "--log-level" => {
                let v = value(arg)?;
                a.log_level =
                    Level::parse(&v).ok_or(format!("--log-level: unknown level {v:?}"))?;
            }
            "--fuel" => {
                a.fuel = Some(value(arg)?.parse().map_err(|_| "--fuel needs a number")?);
            }
            "--memory-mib" => {
                a.memory_mib = Some(
                    value(arg)?
                        .parse()
                        .map_err(|_| "--memory-mib needs a number")?,
                );
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => a.files.push(s.into()),
        }
    }
    Ok(a)
}

/// The engine settings the options ask for; `bench` lifts the fuel limit unless given.
fn sim_with(a: &Args, default_fuel: Option<u64>) -> Result<HostSim, String> {
    let defaults = HostSimConfig::default();
    let fuel = match a.fuel {
        Some(0) => None,
        Some(n) => Some(n),
        None => default_fuel,
    };
    HostSim::with_config(HostSimConfig {
        fuel_per_callback: fuel,
        memory_limit: a.memory_mib.map_or(defaults.memory_limit, |m| m << 20),
        ..defaults
    })
    .map_err(|e| e.to_string())
}

fn target(sim: &HostSim, a: &Args) -> Result<Target, String> {
    match (&a.envoy_config, &a.wasm) {
        (Some(e), None) => {
            let opts = LoadOptions {
                workers: a.workers,
                log_level: a.log_level,
                ..LoadOptions::default()
            };
            let mut t = Target::from_envoy(sim, e, &opts).map_err(|e| e.to_string())?;
            if let Some(h) = &a.cluster_header {
                t.routes = Routes::cluster_header(h);
            }
            Ok(t)
        }
        (None, Some(w)) => {
            let stem = w
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = a.name.clone().unwrap_or(stem);
            let spec = PluginSpec {
                root_id: a.root_id.clone().unwrap_or(name.clone()),
                vm_id: a.vm_id.clone().unwrap_or(name.clone()),
                configuration: a.config.clone().unwrap_or_default(),
                workers: a.workers,
                log_level: a.log_level,
                ..PluginSpec::new(WasmSource::File(w.clone()), &name)
            };
            let plugin = sim.load(spec).map_err(|e| describe(&e))?;
            let routes = match &a.cluster {
                Some(c) => Routes::fixed(c),
                None => Routes::cluster_header(
                    a.cluster_header.as_deref().unwrap_or("x-wasmgate-cluster"),
                ),
            };
            Ok(Target {
                sim: sim.clone(),
                plugins: vec![plugin],
                routes,
                network: None,
                tcp_cluster: a.cluster.clone(),
            })
        }
        _ => Err("give --envoy-config FILE or --wasm FILE".into()),
    }
}

/// An error with the guest's warnings, so a rejected configuration says why.
fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    for (level, msg) in e.logs() {
        s.push_str(&format!("\n  log[{level}] {msg}"));
    }
    s
}

fn read_requests(path: &Path) -> Result<Vec<RequestSpec>, String> {
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let spec: RequestSpec = serde_json::from_str(&line)
            .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        out.push(spec);
    }
    Ok(out)
}

/// Entry point; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return 2;
    };
    let result = match cmd.as_str() {
        "run" => run(rest),
        "test" => test(rest),
        "bench" => bench(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => Err(format!("unknown command {other}\n{USAGE}")),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("host-sim: {msg}");
            2
        }
    }
}

fn run(args: &[String]) -> Result<i32, String> {
    let a = parse(args)?;
    let sim = sim_with(&a, HostSimConfig::default().fuel_per_callback)?;
    let t = target(&sim, &a)?;
    let requests = read_requests(a.requests.as_deref().ok_or("run needs --requests FILE")?)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for spec in requests {
        if spec.advance_ms > 0 {
            t.advance(Duration::from_millis(spec.advance_ms));
        }
        let mut json = http_outcome_to_json(&t.run(spec.to_request()?));
        if let (Some(name), Some(obj)) = (&spec.name, json.as_object_mut()) {
            obj.insert("name".into(), name.clone().into());
        }
        writeln!(out, "{json}").map_err(|e| e.to_string())?;
    }
    Ok(0)
}

fn test(args: &[String]) -> Result<i32, String> {
    let a = parse(args)?;
    if a.files.is_empty() {
        return Err("test needs at least one scenario file".into());
    }
    let sim = sim_with(&a, HostSimConfig::default().fuel_per_callback)?;
    let (mut passed, mut failed) = (0, 0);
    for f in &a.files {
        let (p, n, report) = run_file(&sim.fresh(), f).map_err(|e| describe(&e))?;
        println!("{}", f.display());
        print!("{report}");
        passed += p;
        failed += n;
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}

fn bench(args: &[String]) -> Result<i32, String> {
    let a = parse(args)?;
    let sim = sim_with(&a, None)?;
    // First load compiles the module; a fresh host sharing the module cache loads it again
    // without compiling (both include VM start and configure).
    let started = Instant::now();
    let t = target(&sim, &a)?;
    let first = started.elapsed();
    let started = Instant::now();
    target(&sim.fresh(), &a)?;
    let cached = started.elapsed();
    println!(
        "load: first (compile, start, configure) {:.1} ms; cached module {:.2} ms",
        first.as_secs_f64() * 1e3,
        cached.as_secs_f64() * 1e3
    );
    let requests = match &a.requests {
        Some(p) => read_requests(p)?,
        None => vec![RequestSpec::default()],
    };
    let requests: Vec<_> = requests
        .iter()
        .map(RequestSpec::to_request)
        .collect::<Result<_, _>>()?;
    for p in &t.plugins {
        // Capped by count and by time: a 10,000-rule config takes milliseconds per configure.
        let (inst, start) = sim
            .measure_instantiation(p, 200, Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        println!(
            "{}: instantiate {:.1} us ({} runs); instantiate + start (vm_start, configure) {:.1} us ({} runs), so start {:.1} us",
            p.name(),
            inst.mean.as_secs_f64() * 1e6,
            inst.rounds,
            start.mean.as_secs_f64() * 1e6,
            start.rounds,
            (start.mean.as_secs_f64() - inst.mean.as_secs_f64()) * 1e6
        );
    }
    let baseline = measure(a.iterations, |i| {
        sim.http_baseline(&t.routes, requests[i % requests.len()].clone())
            .host_calls
    });
    let wasm = measure(a.iterations, |i| {
        t.run(requests[i % requests.len()].clone()).host_calls
    });
    println!("without filters: {}", baseline.line());
    println!("with filters:    {}", wasm.line());
    println!(
        "filter cost:     {:.2} us/request",
        // Signed: with a trivial guest and few iterations, noise can put it below zero.
        (wasm.per_request.as_secs_f64() - baseline.per_request.as_secs_f64()) * 1e6
    );
    Ok(0)
}

struct Measured {
    n: usize,
    elapsed: Duration,
    per_request: Duration,
    host_calls: u64,
}

impl Measured {
    fn line(&self) -> String {
        format!(
            "{} requests in {:.3} s: {:.0} requests/s, {:.2} us/request, {:.1} host calls/request",
            self.n,
            self.elapsed.as_secs_f64(),
            self.n as f64 / self.elapsed.as_secs_f64(),
            self.per_request.as_secs_f64() * 1e6,
            self.host_calls as f64 / self.n as f64
        )
    }
}

/// Runs `f` for warm-up, then `n` timed times; `f` returns the host calls it made.
fn measure(n: usize, mut f: impl FnMut(usize) -> u64) -> Measured {
    let n = n.max(1);
    for i in 0..n.min(100) {
        f(i);
    }
    let started = Instant::now();
    let host_calls = (0..n).map(&mut f).sum();
    let elapsed = started.elapsed();
    Measured {
        n,
        elapsed,
        per_request: elapsed / n as u32,
        host_calls,
    }
}
