//! The `host-sim` command line: `clap` parses it (help, errors, shell completions).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::error::Error;
use crate::http::FilterChain;
use crate::json::{http_outcome_to_json, logs_json};
use crate::plugin::{HostSim, HostSimConfig, PluginSpec, WasmSource};
use crate::route_config::Routes;
use crate::scenario::{run_file, LoadOptions, RequestSpec, Target};
use crate::types::Level;

const REQUEST_FORMAT: &str = "\
A request line is a JSON object: {\"method\", \"host\", \"path\", \"headers\": {name: value},
\"body\", \"chunks\": [...], \"trailers\", \"source\": \"ip:port\", \"properties\": {\"a.b\": v},
\"advance_ms\", \"advance_only\", \"name\"}. Header values are strings or {\"hex\": \"...\"}.
A result line has \"root_logs\" (start-up, ticks, queues since the previous line), and
\"skipped_filters\" when the bootstrap had filters left out.

Compiled modules are cached in $HOST_SIM_CACHE_DIR, else $XDG_CACHE_HOME/host-sim, else
~/.cache/host-sim.";

/// Runs proxy-wasm modules the way Envoy does and reports where each request went.
#[derive(Parser)]
#[command(name = "host-sim", version, after_help = REQUEST_FORMAT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print one JSON result per request line.
    Run {
        #[command(flatten)]
        target: TargetArgs,
        /// The requests, one JSON object per line.
        #[arg(long, value_name = "FILE.jsonl")]
        requests: PathBuf,
        #[command(flatten)]
        vm: VmArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Check scenarios; exit 1 on a mismatch.
    Test {
        #[arg(value_name = "SCENARIO.yaml", required = true)]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Time loading, instantiation and requests with and without the filters.
    Bench {
        #[command(flatten)]
        target: TargetArgs,
        /// The requests to cycle through (default: one GET /).
        #[arg(long, value_name = "FILE.jsonl")]
        requests: Option<PathBuf>,
        #[arg(long, value_name = "N", default_value_t = 10_000)]
        iterations: usize,
        #[command(flatten)]
        vm: VmArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Configure the module with each file in turn (one process): one JSON line per file;
    /// exit 1 if any is rejected.
    CheckConfig {
        /// The proxy-wasm module.
        #[arg(long, value_name = "FILE")]
        wasm: PathBuf,
        #[command(flatten)]
        names: PluginNames,
        #[arg(value_name = "CONFIG", required = true)]
        configs: Vec<PathBuf>,
        #[command(flatten)]
        vm: VmArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Print a completion script for a shell.
    Completions { shell: clap_complete::Shell },
}

/// What to run: an Envoy bootstrap or one module.
#[derive(Args)]
struct TargetArgs {
    /// An Envoy bootstrap (YAML or JSON): its Wasm HTTP filters in order, its route_config
    /// and its static clusters.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "wasm",
        // What only a module takes (clap drops a `requires` of an argument that conflicts
        // with a present one, so these are spelt out).
        conflicts_with_all = ["wasm", "config", "config_string", "cluster", "name", "root_id", "vm_id"]
    )]
    envoy_config: Option<PathBuf>,
    /// One proxy-wasm module.
    #[arg(long, value_name = "FILE")]
    wasm: Option<PathBuf>,
    /// The module's plugin configuration, from a file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "config_string",
        requires = "wasm"
    )]
    config: Option<PathBuf>,
    /// The module's plugin configuration, given inline.
    #[arg(long, value_name = "TEXT", requires = "wasm")]
    config_string: Option<String>,
    #[command(flatten)]
    names: PluginNames,
    /// Route on this request header (default x-wasmgate-cluster).
    #[arg(long, value_name = "NAME", conflicts_with = "cluster")]
    cluster_header: Option<String>,
    /// Route everything to one cluster.
    #[arg(long, value_name = "NAME", requires = "wasm")]
    cluster: Option<String>,
    /// Leave out this filter of the bootstrap (by name or type) instead of refusing it;
    /// repeatable; results list it.
    #[arg(
        long = "skip-filter",
        value_name = "NAME",
        requires = "envoy_config",
        conflicts_with = "wasm"
    )]
    skip_filters: Vec<String>,
}

/// The names of a `--wasm` module's plugin (default: the module's file stem).
#[derive(Args)]
struct PluginNames {
    /// The plugin's name (`plugin_name`).
    #[arg(long, value_name = "NAME", requires = "wasm")]
    name: Option<String>,
    /// The root context's id (default: the name).
    #[arg(long, value_name = "ID", requires = "wasm")]
    root_id: Option<String>,
    /// The VM's id (default: the name).
    #[arg(long, value_name = "ID", requires = "wasm")]
    vm_id: Option<String>,
}

/// How the plugins of a target run (a scenario file says it itself).
#[derive(Args)]
struct VmArgs {
    /// VMs per plugin (Envoy worker threads).
    #[arg(long, value_name = "N", default_value_t = 1)]
    workers: usize,
    /// Lowest level logged: trace, debug, info, warn, error (Envoy's -l).
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = parse_level)]
    log_level: Level,
}

/// The engine's limits and module cache.
#[derive(Args)]
struct EngineArgs {
    /// Instructions per callback before the VM fails (default 10^9; 0 = unlimited, the
    /// default of bench).
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// Linear-memory limit per VM, in MiB (default 256).
    #[arg(long, value_name = "N")]
    memory_mib: Option<usize>,
    /// Do not read or write compiled modules in the cache folder.
    #[arg(long)]
    no_cache: bool,
}

fn parse_level(s: &str) -> Result<Level, String> {
    Level::parse(s).ok_or_else(|| format!("unknown level {s:?}"))
}

/// The engine settings the options ask for; `bench` lifts the fuel limit unless given.
fn sim_with(a: &EngineArgs, default_fuel: Option<u64>) -> Result<HostSim, String> {
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

fn target(sim: &HostSim, a: &TargetArgs, vm: &VmArgs) -> Result<Target, String> {
    match (&a.envoy_config, &a.wasm) {
        (Some(e), None) => {
            let opts = LoadOptions {
                workers: vm.workers,
                log_level: vm.log_level,
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
            let (configuration, source) = match (&a.config, &a.config_string) {
                (Some(p), _) => (
                    std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
                    p.display().to_string(),
                ),
                (None, Some(text)) => (text.clone().into_bytes(), "--config-string".into()),
                (None, None) => (Vec::new(), String::new()),
            };
            let spec = wasm_spec(&a.names, vm, w, configuration.clone());
            let plugin = sim
                .load(spec)
                .map_err(|e| describe_config(&e, &configuration, &source))?;
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
fn wasm_spec(a: &PluginNames, vm: &VmArgs, w: &Path, configuration: Vec<u8>) -> PluginSpec {
    let stem = w
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = a.name.clone().unwrap_or(stem);
    PluginSpec {
        root_id: a.root_id.clone().unwrap_or(name.clone()),
        vm_id: a.vm_id.clone().unwrap_or(name.clone()),
        configuration,
        workers: vm.workers,
        log_level: vm.log_level,
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

/// Entry point (`args` without the program name); returns the process exit code: 2 on bad
/// usage or input.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(std::iter::once("host-sim".to_string()).chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; errors to stderr with 2.
            let _ = e.print();
            return e.exit_code();
        }
    };
    let result = match &cli.command {
        Command::Run {
            target,
            requests,
            vm,
            engine,
        } => run(target, requests, vm, engine),
        Command::Test { scenarios, engine } => test(scenarios, engine),
        Command::Bench {
            target,
            requests,
            iterations,
            vm,
            engine,
        } => bench(target, requests.as_deref(), *iterations, vm, engine),
        Command::CheckConfig {
            wasm,
            names,
            configs,
            vm,
            engine,
        } => check_config(wasm, names, configs, vm, engine),
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "host-sim",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("host-sim: {msg}");
            2
        }
    }
}

fn run(a: &TargetArgs, requests: &Path, vm: &VmArgs, engine: &EngineArgs) -> Result<i32, String> {
    let sim = sim_with(engine, HostSimConfig::default().fuel_per_callback)?;
    let t = target(&sim, a, vm)?;
    let requests = read_requests(requests)?;
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
fn check_config(
    w: &Path,
    names: &PluginNames,
    configs: &[PathBuf],
    vm: &VmArgs,
    engine: &EngineArgs,
) -> Result<i32, String> {
    let sim = sim_with(engine, HostSimConfig::default().fuel_per_callback)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut rejected = 0;
    for f in configs {
        let configuration =
            std::fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        // Each configuration on a fresh host: no shared data or metrics carry over.
        let result = sim
            .fresh()
            .load(wasm_spec(names, vm, w, configuration.clone()));
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

fn test(scenarios: &[PathBuf], engine: &EngineArgs) -> Result<i32, String> {
    let sim = sim_with(engine, HostSimConfig::default().fuel_per_callback)?;
    let (mut passed, mut failed) = (0, 0);
    for f in scenarios {
        let (p, n, report) = run_file(&sim.fresh(), f).map_err(|e| describe(&e))?;
        println!("{}", f.display());
        print!("{report}");
        passed += p;
        failed += n;
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}

fn bench(
    a: &TargetArgs,
    requests: Option<&Path>,
    iterations: usize,
    vm: &VmArgs,
    engine: &EngineArgs,
) -> Result<i32, String> {
    let sim = sim_with(engine, None)?;
    // First load compiles the module; a fresh host sharing the module cache loads it again
    // without compiling (both include VM start and configure).
    let started = Instant::now();
    let t = target(&sim, a, vm)?;
    let first = started.elapsed();
    let started = Instant::now();
    target(&sim.fresh(), a, vm)?;
    let cached = started.elapsed();
    println!(
        "load: first (compile, start, configure) {:.1} ms; cached module {:.2} ms",
        first.as_secs_f64() * 1e3,
        cached.as_secs_f64() * 1e3
    );
    let requests = match requests {
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
    let baseline = measure(iterations, |i| {
        router_alone
            .run_one(&t.routes, requests[i % requests.len()].clone())
            .host_calls
    });
    let wasm = measure(iterations, |i| {
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
