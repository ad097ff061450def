//! The `host-sim` command line (hand-written argument parsing).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::http::FilterChain;
use crate::json::{http_outcome_to_json, logs_json};
use crate::plugin::{HostSim, HostSimConfig, PluginSpec, WasmSource};
use crate::route_config::Routes;
use crate::scenario::{run_file, LoadOptions, RequestSpec, Target};
use crate::types::Level;

const USAGE: &str = "\
usage:
  host-sim run   TARGET --requests FILE.jsonl     print one JSON result per request line
  host-sim test  SCENARIO.yaml...                 check scenarios; exit 1 on a mismatch
  host-sim bench TARGET [--requests FILE.jsonl] [--iterations N]
  host-sim check-config --wasm FILE [--name N --root-id R --vm-id V] CONFIG...
                                                 configure the module with each file in turn
                                                 (one process); one JSON line per file;
                                                 exit 1 if any is rejected

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
  --skip-filter NAME         leave out this filter of the bootstrap (by name or type)
                             instead of refusing it; repeatable; results list it
  --no-cache                 do not read or write compiled modules in the cache folder
                             ($HOST_SIM_CACHE_DIR, else $XDG_CACHE_HOME/host-sim, else
                             ~/.cache/host-sim)

A request line is a JSON object: {\"method\", \"host\", \"path\", \"headers\": {name: value},
\"body\", \"chunks\": [...], \"trailers\", \"source\": \"ip:port\", \"properties\": {\"a.b\": v},
\"advance_ms\", \"advance_only\", \"name\"}. Header values are strings or {\"hex\": \"...\"}.
A result line has \"root_logs\" (start-up, ticks, queues since the previous line), and
\"skipped_filters\" when the bootstrap had filters left out.
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
    skip_filters: Vec<String>,
    no_cache: bool,
    /// Where `--config` / `--config-string` came from, for error messages.
    config_source: String,
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
                a.config_source = p;
            }
            "--config-string" => {
                a.config = Some(value(arg)?.into_bytes());
                a.config_source = "--config-string".into();
            }
            "--skip-filter" => a.skip_filters.push(value(arg)?),
            "--no-cache" => a.no_cache = true,
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
        disk_cache: if a.no_cache {
            None
        } else {
            crate::disk_cache::default_dir()
        },
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
                skip_filters: a.skip_filters.clone(),
                ..LoadOptions::default()
            };
            let mut t = Target::from_envoy(sim, e, &opts).map_err(|e| describe(&e))?;
            if let Some(h) = &a.cluster_header {
                t.routes = Routes::cluster_header(h);
            }
            Ok(t)
        }
        (None, Some(w)) => {
            let configuration = a.config.clone().unwrap_or_default();
            let plugin = sim
                .load(wasm_spec(a, w, configuration.clone()))
                .map_err(|e| describe_config(&e, &configuration, &a.config_source))?;
            let routes = match &a.cluster {
                Some(c) => Routes::fixed(c),
                None => Routes::cluster_header(
                    a.cluster_header.as_deref().unwrap_or("x-wasmgate-cluster"),
                ),
            };
            Ok(Target {
                tcp_cluster: a.cluster.clone(),
                ..Target::new(sim, vec![plugin], routes)
            })
        }
        _ => Err("give --envoy-config FILE or --wasm FILE".into()),
    }
}

/// The plugin of `--wasm FILE` with `configuration`.
fn wasm_spec(a: &Args, w: &Path, configuration: Vec<u8>) -> PluginSpec {
    let stem = w
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = a.name.clone().unwrap_or(stem);
    PluginSpec {
        root_id: a.root_id.clone().unwrap_or(name.clone()),
        vm_id: a.vm_id.clone().unwrap_or(name.clone()),
        configuration,
        workers: a.workers,
        log_level: a.log_level,
        ..PluginSpec::new(WasmSource::File(w.to_path_buf()), &name)
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

/// [`describe`], plus where a configuration that looks like JSON stops being JSON: a module
/// rejecting it often reports that without a position a person can use.
fn describe_config(e: &Error, configuration: &[u8], source: &str) -> String {
    let mut s = describe(e);
    if let Some(hint) = json_syntax_hint(e, configuration, source) {
        s.push_str(&format!("\n  {hint}"));
    }
    s
}

fn json_syntax_hint(e: &Error, configuration: &[u8], source: &str) -> Option<String> {
    let rejected = matches!(
        e,
        Error::ConfigureRejected { .. } | Error::StartTrapped { .. }
    );
    let text = std::str::from_utf8(configuration).ok()?.trim_start();
    if !rejected || !(text.starts_with('{') || text.starts_with('[')) {
        return None;
    }
    let err = serde_json::from_str::<serde_json::Value>(text).err()?;
    Some(format!(
        "note: the configuration ({source}) is not valid JSON: {err}"
    ))
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
        "check-config" => check_config(rest),
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
        let mut root_logs = t.take_root_logs();
        let mut root_callouts = t.take_root_callouts();
        let mut json = if spec.advance_only {
            serde_json::json!({})
        } else {
            let outcome = t.run(spec.to_request()?);
            root_logs.extend(t.take_root_logs());
            root_callouts.extend(t.take_root_callouts());
            http_outcome_to_json(&outcome)
        };
        if let Some(obj) = json.as_object_mut() {
            if let Some(name) = &spec.name {
                obj.insert("name".into(), name.clone().into());
            }
            obj.insert("root_logs".into(), logs_json(&root_logs));
            if !root_callouts.is_empty() {
                let calls = root_callouts.iter().map(crate::json::callout_to_json);
                obj.insert("root_callouts".into(), calls.collect());
            }
            if !t.skipped_filters.is_empty() {
                obj.insert("skipped_filters".into(), t.skipped_filters.clone().into());
            }
        }
        writeln!(out, "{json}").map_err(|e| e.to_string())?;
    }
    Ok(0)
}

/// Configures one module with many configurations in one process (the module compiles
/// once, or comes from the disk cache): per file, configured, or the error and the
/// module's own logs.
fn check_config(args: &[String]) -> Result<i32, String> {
    let a = parse(args)?;
    let w = a.wasm.as_ref().ok_or("check-config needs --wasm FILE")?;
    if a.files.is_empty() {
        return Err("check-config needs at least one configuration file".into());
    }
    let sim = sim_with(&a, HostSimConfig::default().fuel_per_callback)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut rejected = 0;
    for f in &a.files {
        let configuration =
            std::fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        // Each configuration on a fresh host: no shared data or metrics carry over.
        let result = sim.fresh().load(wasm_spec(&a, w, configuration.clone()));
        let json = match result {
            Ok(plugin) => serde_json::json!({
                "config": f.display().to_string(),
                "configured": true,
                "logs": logs_json(&plugin.take_logs()),
            }),
            Err(
                e @ (Error::Io { .. }
                | Error::Compile(_)
                | Error::Engine(_)
                | Error::MissingImport { .. }
                | Error::UnknownAbi),
            ) => return Err(describe(&e)),
            Err(e) => {
                rejected += 1;
                let mut j = serde_json::json!({
                    "config": f.display().to_string(),
                    "configured": false,
                    "error": e.to_string(),
                    "logs": logs_json(e.logs()),
                });
                let source = f.display().to_string();
                if let (Some(h), Some(o)) = (
                    json_syntax_hint(&e, &configuration, &source),
                    j.as_object_mut(),
                ) {
                    o.insert("hint".into(), h.into());
                }
                j
            }
        };
        writeln!(out, "{json}").map_err(|e| e.to_string())?;
    }
    Ok(if rejected == 0 { 0 } else { 1 })
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
    let router_alone = FilterChain::new(&sim, Vec::new());
    let baseline = measure(a.iterations, |i| {
        router_alone
            .run_one(&t.routes, requests[i % requests.len()].clone())
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
