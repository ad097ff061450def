//! Requests per second through Envoy, the same routes routed natively or by wasmgate, measured
//! as a user would: `wrk` against front Envoys (`--concurrency 1`, pinned to one core) whose
//! configs come from one `wasmgate generate` run (`envoy.yaml`, `envoy-native.yaml`), in front
//! of an upstream Envoy that answers every request with `direct_response`. 500 request paths
//! spread over each table; the fronts of a row take turns, round after round, so machine noise
//! hits them alike, and the ratio is what counts. CPU per request is the front Envoy's
//! utime + stime (`/proc/PID/stat`) over the requests wrk completed.
//!
//! Rows: 10 routes (with a 1-route native baseline, a do-nothing Wasm filter in front of the
//! native table as the floor, router + balancer as two filters and as the combined module),
//! 1,000 and 10,000 routes in one host,
//! 10,000 routes over 1,000 hosts. Run with `make bench` (which installs wrk).
//! `WASMGATE_BENCH_SECONDS` (default 4) and `WASMGATE_BENCH_ROUNDS` (default 3) size a run;
//! `WASMGATE_BENCH_PERF=DIR` also records a perf profile of every front into DIR;
//! `WASMGATE_BENCH_ROWS=1` runs the first row only; `WASMGATE_BENCH_ROUTER_B=A.wasm,B.wasm` adds
//! to it fronts running other builds of the router, `WASMGATE_BENCH_BALANCER_B=...` fronts
//! running the router with other builds of the balancer (to compare builds in one run);
//! `WASMGATE_BENCH_VARIANTS=no-retry,no-state-log,plus-noop` adds router fronts whose generated
//! config lacks the routes' retry policy or the access log's filter-state fields (what the
//! config, not the filter, costs), or has the do-nothing filter chained with the router (the
//! floor of router + balancer).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use wasmgate_harness::paths::{wasm, workspace_root};
use wasmgate_harness::{free_port, Envoy, Scratch};

type Error = Box<dyn std::error::Error>;

/// Request paths per table, spread over its rules.
const PATHS: usize = 500;
/// wrk's connections: enough to keep one front worker busy.
const CONNECTIONS: usize = 16;
/// The core the fronts run on, in turn; wrk and the upstream get the other one.
const FRONT_CORE: &str = "0";
const CLIENT_CORE: &str = "1";

/// One table of routes: `hosts` hosts with `per_host` prefix rules each.
#[derive(Clone, Copy)]
struct Table {
    hosts: usize,
    per_host: usize,
}

impl Table {
    fn host(h: usize) -> String {
        format!("host{h}.example.com")
    }

    /// The generator's input: a VirtualHost with the table, plus the service it names.
    fn virtual_host_yaml(self) -> String {
        let mut y = String::from("kind: VirtualHost\nmetadata:\n  name: bench\nspec:\n  routes:\n");
        for h in 0..self.hosts {
            let _ = writeln!(
                y,
                "    - http:\n        host: {}\n        rules:",
                Self::host(h)
            );
            for r in 0..self.per_host {
                let _ = writeln!(
                    y,
                    "          - path: /svc{r}\n            backend: {{service: app, servicePort: 80}}"
                );
            }
        }
        y
    }

    /// `PATHS` (host, path) pairs spread evenly over the table's rules.
    fn requests(self) -> Vec<(String, String)> {
        let rules = self.hosts * self.per_host;
        (0..PATHS.min(rules))
            .map(|i| {
                let rule = i * rules / PATHS.min(rules);
                let (h, r) = (rule / self.per_host, rule % self.per_host);
                (Self::host(h), format!("/svc{r}/item"))
            })
            .collect()
    }
}

/// The same 10 paths as a MultiClusterIngress over a MultiClusterService with two members:
/// the router hands the request to the balancer, which picks the member.
fn multicluster_yaml() -> String {
    let mut y = String::from(
        "kind: MultiClusterIngress\nmetadata:\n  name: bench\nspec:\n  template:\n    spec:\n      rules:\n        - host: host0.example.com\n          http:\n            paths:\n",
    );
    for r in 0..10 {
        let _ = writeln!(
            y,
            "              - path: /svc{r}\n                backend: {{serviceName: app, servicePort: 80}}"
        );
    }
    y.push_str(
        "---\nkind: MultiClusterService\nmetadata:\n  name: app\nspec:\n  template:\n    selector: {app: app}\n    ports:\n      - {name: web, protocol: TCP, port: 80, targetPort: 80}\n    clusters:\n      - selector:\n          matchLabels: {region: local}\n",
    );
    y
}

const SERVICE_YAML: &str = "kind: Service\napiVersion: v1\nmetadata:\n  name: app\nspec:\n  selector: {app: app}\n  ports:\n    - {name: www, port: 80, targetPort: 8080}\n";

fn inventory_yaml(upstream: SocketAddr, members: &[&str]) -> String {
    let mut y = String::from(
        "apiVersion: wasmgate.io/v1alpha1\nkind: ClusterInventory\nmetadata:\n  name: bench\nspec:\n  clusters:\n",
    );
    for m in members {
        let _ = writeln!(
            y,
            "    - name: {m}\n      labels: {{region: local}}\n      services:\n        app:\n          80: [\"{upstream}\"]"
        );
    }
    y
}

/// Runs `wasmgate generate` on `inputs` (written into `dir`) and returns its output directory.
fn generate(dir: &Path, inputs: &[(&str, String)]) -> Result<PathBuf, Error> {
    generate_with(dir, inputs, &[])
}

/// `generate` on a route table with the bench's service and one-cluster inventory.
fn generate_table(dir: &Path, table: &Table, upstream: SocketAddr) -> Result<PathBuf, Error> {
    generate(
        dir,
        &[
            ("routes.yaml", table.virtual_host_yaml()),
            ("service.yaml", SERVICE_YAML.into()),
            ("inventory.yaml", inventory_yaml(upstream, &["local"])),
        ],
    )
}

/// `generate` with more options (`--combined`).
fn generate_with(
    dir: &Path,
    inputs: &[(&str, String)],
    options: &[OsString],
) -> Result<PathBuf, Error> {
    let mut args = Vec::new();
    for (name, text) in inputs {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        args.push(p);
    }
    let out = dir.join("generated");
    let status = Command::new(workspace_root().join("target/release/wasmgate"))
        .arg("generate")
        .arg("--out")
        .arg(&out)
        .arg("--router-wasm")
        .arg(wasm("wasmgate_router"))
        .arg("--balancer-wasm")
        .arg(wasm("wasmgate_balancer"))
        .args(options)
        .args(&args)
        .output()?;
    if !status.status.success() {
        return Err(format!(
            "wasmgate generate failed: {}",
            String::from_utf8_lossy(&status.stderr)
        )
        .into());
    }
    Ok(out)
}

/// A generated bootstrap, moved onto free ports.
fn load_bootstrap(path: &Path) -> Result<(Value, SocketAddr, u16), Error> {
    let mut v: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path)?)?;
    let admin = free_port()?;
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    v["admin"]["address"]["socket_address"]["port_value"] = json!(admin);
    let listeners = v["static_resources"]["listeners"]
        .as_array_mut()
        .ok_or("bootstrap without listeners")?;
    // The HTTP listener only: the bench has no TCP routes.
    listeners.retain(|l| {
        l["filter_chains"][0]["filters"][0]["name"]
            == "envoy.filters.network.http_connection_manager"
    });
    let http = listeners
        .first_mut()
        .ok_or("bootstrap without an HTTP listener")?;
    http["address"]["socket_address"]["port_value"] = json!(listen.port());
    Ok((v, listen, admin))
}

fn http_filters(bootstrap: &mut Value) -> Option<&mut Vec<Value>> {
    bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array_mut()
}

/// The native bootstrap with a do-nothing Wasm filter (built like the router) before its
/// router: what any proxy-wasm filter costs in Envoy.
fn with_noop_filter(mut bootstrap: Value) -> Result<Value, Error> {
    let noop = json!({
        "name": "wasmgate.noop",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "wasmgate.noop",
                "root_id": "wasmgate.noop",
                "fail_open": false,
                "vm_config": {
                    "vm_id": "wasmgate.noop",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm("wasmgate_noop").display().to_string()}}
                }
            }
        }
    });
    http_filters(&mut bootstrap)
        .ok_or("bootstrap without http filters")?
        .insert(0, noop);
    Ok(bootstrap)
}

/// The upstream: one Envoy worker answering 200 with a short body to everything.
fn upstream_bootstrap(listen: SocketAddr, admin: u16) -> Value {
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {"listeners": [{
            "name": "upstream",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen.port()}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "upstream",
                    "route_config": {"virtual_hosts": [{
                        "name": "all", "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"},
                                    "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}}]
                    }]},
                    "http_filters": [{"name": "envoy.filters.http.router",
                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
                }
            }]}]
        }]}
    })
}

/// A front Envoy of a row, pinned to the front core.
struct Front {
    label: String,
    envoy: Envoy,
    listen: SocketAddr,
    requests: Vec<(String, String)>,
    /// Per round: (requests/s, CPU microseconds per request).
    rounds: Vec<(f64, f64)>,
}

impl Front {
    fn start(
        scratch: &Scratch,
        label: &str,
        bootstrap: Value,
        listen: SocketAddr,
        admin: u16,
        requests: Vec<(String, String)>,
    ) -> Result<Self, Error> {
        let path = scratch.write(&format!("{label}.json"), &bootstrap.to_string())?;
        let envoy = Envoy::start(&path, admin, 1)?;
        pin(envoy.pid(), FRONT_CORE)?;
        Ok(Front {
            label: label.to_string(),
            envoy,
            listen,
            requests,
            rounds: Vec::new(),
        })
    }

    fn median(&self, f: impl Fn(&(f64, f64)) -> f64) -> f64 {
        let mut v: Vec<f64> = self.rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }

    fn rps(&self) -> f64 {
        self.median(|r| r.0)
    }

    fn cpu_us(&self) -> f64 {
        self.median(|r| r.1)
    }
}

/// Pins every thread of `pid` to `core`.
fn pin(pid: u32, core: &str) -> Result<(), Error> {
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", core, &pid.to_string()])
        .output()?
        .status
        .success();
    if ok {
        Ok(())
    } else {
        Err(format!("taskset could not pin {pid}").into())
    }
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3, "state".
    let rest = stat.rsplit_once(')').ok_or("odd /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> Result<u64, Error> {
        Ok(f.get(i).ok_or("short /proc stat")?.parse::<u64>()?)
    };
    // utime is field 14, stime 15; `rest` starts at field 3.
    Ok(num(11)? + num(12)?)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The wrk script: cycles through the row's request paths, each with its host.
fn wrk_script(requests: &[(String, String)]) -> String {
    let mut s = String::from("local reqs = {}\nlocal i = 0\nfunction init(args)\n");
    for (host, path) in requests {
        let _ = writeln!(
            s,
            "  reqs[#reqs + 1] = wrk.format(\"GET\", \"{path}\", {{[\"Host\"] = \"{host}\"}})"
        );
    }
    s.push_str("end\nfunction request()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n");
    s
}

/// One wrk run against a front: requests/s and the front's CPU microseconds per request.
fn round(front: &mut Front, scratch: &Scratch, seconds: u64, tick: f64) -> Result<(), Error> {
    let script = scratch.write(
        &format!("{}.lua", front.label),
        &wrk_script(&front.requests),
    )?;
    let pid = front.envoy.pid();
    // WASMGATE_BENCH_PERF=DIR records a profile of each front's rounds there (perf record -g).
    let perf = match std::env::var_os("WASMGATE_BENCH_PERF") {
        Some(dir) => Some(
            Command::new("perf")
                .args([
                    "record",
                    "-q",
                    "-g",
                    "-F",
                    "2000",
                    "-p",
                    &pid.to_string(),
                    "-o",
                ])
                .arg(Path::new(&dir).join(format!("{}-{}.data", front.label, front.listen.port())))
                .args(["--", "sleep", &seconds.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()?,
        ),
        None => None,
    };
    let before = cpu_ticks(pid)?;
    let out = Command::new("taskset")
        .args(["-c", CLIENT_CORE, "wrk", "-t1"])
        .arg(format!("-c{CONNECTIONS}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(format!("http://{}/", front.listen))
        .output()
        .map_err(|e| format!("wrk: {e} (run `make bench-setup`)"))?;
    let ticks = cpu_ticks(pid)? - before;
    if let Some(mut p) = perf {
        p.wait()?;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("wrk failed on {}: {text}", front.label).into());
    }
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    if let Some(bad) = field("Non-2xx or 3xx responses:") {
        return Err(format!(
            "{}: {bad} requests were not answered 200:\n{text}",
            front.label
        )
        .into());
    }
    let total: f64 = text
        .lines()
        .find_map(|l| l.trim().split(" requests in ").next()?.trim().parse().ok())
        .ok_or_else(|| format!("no request count in wrk output:\n{text}"))?;
    let rps: f64 = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    let cpu_us = ticks as f64 / tick * 1e6 / total.max(1.0);
    front.rounds.push((rps, cpu_us));
    Ok(())
}

/// Runs the fronts of a row in turn, `rounds` times.
fn run_rounds(
    fronts: &mut [Front],
    scratch: &Scratch,
    seconds: u64,
    rounds: usize,
    tick: f64,
) -> Result<(), Error> {
    for f in fronts.iter_mut() {
        // Warm-up: connections, the Wasm VM's first calls, Envoy's lazily built state.
        round(f, scratch, 1, tick)?;
        f.rounds.clear();
    }
    for _ in 0..rounds {
        for f in fronts.iter_mut() {
            round(f, scratch, seconds, tick)?;
        }
    }
    Ok(())
}

fn line(name: &str, native: &Front, other: &Front) {
    println!(
        "{name:<28} {:>11.0} {:>11.0} {:>8.2}   {:>6.0} / {:<6.0}",
        native.rps(),
        other.rps(),
        other.rps() / native.rps(),
        native.cpu_us(),
        other.cpu_us()
    );
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> Result<(), Error> {
    let seconds = env_number("WASMGATE_BENCH_SECONDS", 4);
    let rounds = env_number("WASMGATE_BENCH_ROUNDS", 3) as usize;
    let tick = clock_ticks_per_second();
    let scratch = Scratch::new("throughput-bench")?;

    let upstream_listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let upstream_admin = free_port()?;
    let upstream_path = scratch.write(
        "upstream.json",
        &upstream_bootstrap(upstream_listen, upstream_admin).to_string(),
    )?;
    let upstream = Envoy::start(&upstream_path, upstream_admin, 1)?;
    pin(upstream.pid(), CLIENT_CORE)?;

    println!(
        "Envoy 1.40, front --concurrency 1 pinned to core {FRONT_CORE}; wrk -t1 -c{CONNECTIONS} and the upstream on core {CLIENT_CORE}; \
         {PATHS} paths per table; {rounds} alternated rounds of {seconds} s; medians; load average at start {}",
        load_average()
    );
    println!(
        "{:<28} {:>11} {:>11} {:>8}   front CPU us/request native / wasm",
        "routes", "native rq/s", "wasm rq/s", "w/n"
    );

    // Row 1: 10 routes, with the baseline, the floor and router + balancer in the same rounds.
    {
        let dir = Scratch::new("throughput-10")?;
        let ten = Table {
            hosts: 1,
            per_host: 10,
        };
        let gen = generate_table(dir.path(), &ten, upstream_listen)?;
        let one = Table {
            hosts: 1,
            per_host: 1,
        };
        let dir1 = Scratch::new("throughput-1")?;
        let gen1 = generate_table(dir1.path(), &one, upstream_listen)?;
        // The multi-cluster inputs, as two filters and with `--combined` as one Wasm filter.
        let mc_inputs = [
            ("mci.yaml", multicluster_yaml()),
            (
                "inventory.yaml",
                inventory_yaml(upstream_listen, &["east", "west"]),
            ),
        ];
        let dirmc = Scratch::new("throughput-mc")?;
        let genmc = generate(dirmc.path(), &mc_inputs)?;
        let dircomb = Scratch::new("throughput-combined")?;
        let gencomb = generate_with(
            dircomb.path(),
            &mc_inputs,
            &[
                "--combined".into(),
                "--combined-wasm".into(),
                wasm("wasmgate_combined").into_os_string(),
            ],
        )?;
        let reqs = ten.requests();
        let mut fronts = Vec::new();
        for (label, file, gen_dir, noop) in [
            ("native", "envoy-native.yaml", &gen, false),
            ("wasm", "envoy.yaml", &gen, false),
            ("native-1-route", "envoy-native.yaml", &gen1, false),
            ("native+noop-wasm", "envoy-native.yaml", &gen, true),
            ("router+balancer", "envoy.yaml", &genmc, false),
            ("combined", "envoy.yaml", &gencomb, false),
        ] {
            let (mut boot, listen, admin) = load_bootstrap(&gen_dir.join(file))?;
            if noop {
                boot = with_noop_filter(boot)?;
            }
            let requests = if label == "native-1-route" {
                one.requests()
            } else {
                reqs.clone()
            };
            fronts.push(Front::start(
                &scratch, label, boot, listen, admin, requests,
            )?);
        }
        // Other builds of a module, each in a front of its own: the router's on the 10-route
        // table, the balancer's behind the router on the multi-cluster table.
        let mut extra = Vec::new();
        for (var, gen_dir, filter_name, requests) in [
            ("WASMGATE_BENCH_ROUTER_B", &gen, "wasmgate.router", &reqs),
            (
                "WASMGATE_BENCH_BALANCER_B",
                &genmc,
                "wasmgate.balancer",
                &reqs,
            ),
        ] {
            let builds = std::env::var(var).unwrap_or_default();
            for module in builds.split(',').filter(|m| !m.is_empty()) {
                let label = format!("  {filter_name} build B{}", extra.len());
                let (mut boot, listen, admin) = load_bootstrap(&gen_dir.join("envoy.yaml"))?;
                let filter = http_filters(&mut boot)
                    .and_then(|f| f.iter_mut().find(|f| f["name"] == filter_name))
                    .ok_or("no such filter")?;
                filter["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] =
                    json!(module);
                filter["typed_config"]["config"]["vm_config"]["vm_id"] =
                    json!(format!("build-b{}", extra.len()));
                println!("{label}: {module}");
                fronts.push(Front::start(
                    &scratch,
                    &label,
                    boot,
                    listen,
                    admin,
                    requests.clone(),
                )?);
                extra.push(label);
            }
        }
        // WASMGATE_BENCH_VARIANTS=no-retry,no-state-log: the router's front with part of the
        // generated config taken away, to tell what the filter costs from what the config does.
        for variant in std::env::var("WASMGATE_BENCH_VARIANTS")
            .unwrap_or_default()
            .split(',')
            .filter(|v| !v.is_empty())
        {
            let label = format!("  wasm, {variant}");
            let (mut boot, listen, admin) = load_bootstrap(&gen.join("envoy.yaml"))?;
            if variant == "plus-noop" {
                // A second Wasm filter that does nothing: what chaining any filter after the
                // router costs, the floor of router + balancer.
                boot = with_noop_filter(boot)?;
            }
            let hcm = &mut boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
                [0]["typed_config"];
            match variant {
                "plus-noop" => {}
                "no-retry" => {
                    for vh in hcm["route_config"]["virtual_hosts"]
                        .as_array_mut()
                        .ok_or("no virtual hosts")?
                    {
                        for r in vh["routes"].as_array_mut().ok_or("no routes")? {
                            if let Some(route) = r["route"].as_object_mut() {
                                route.remove("retry_policy");
                            }
                        }
                    }
                }
                "no-state-log" => {
                    let fields = hcm["access_log"][0]["typed_config"]["log_format"]["json_format"]
                        .as_object_mut()
                        .ok_or("no json access log")?;
                    fields.remove("route");
                    fields.remove("member");
                }
                other => return Err(format!("unknown variant {other}").into()),
            }
            fronts.push(Front::start(
                &scratch,
                &label,
                boot,
                listen,
                admin,
                reqs.clone(),
            )?);
            extra.push(label);
        }
        run_rounds(&mut fronts, &scratch, seconds, rounds, tick)?;
        for (label, b) in extra.iter().zip(fronts.iter().skip(6)) {
            line(label, &fronts[0], b);
        }
        let [native, wasm, one, noop, mc, combined, ..] = &fronts[..] else {
            return Err("six fronts expected".into());
        };
        line("10", native, wasm);
        line("  1 route native (baseline)", native, one);
        line("  native + do-nothing wasm", native, noop);
        line("  router + balancer", native, mc);
        line("  combined (one module)", native, combined);
        let extra = |f: &Front| f.cpu_us() - native.cpu_us();
        println!(
            "  over native, CPU us/request: router {:.0}, do-nothing filter {:.0} (router/floor {:.2}), router+balancer {:.0} (r+b/router CPU {:.2}), combined {:.0} (combined/router CPU {:.2})",
            extra(wasm),
            extra(noop),
            extra(wasm) / extra(noop),
            extra(mc),
            mc.cpu_us() / wasm.cpu_us(),
            extra(combined),
            combined.cpu_us() / wasm.cpu_us()
        );
    }

    let rows = env_number("WASMGATE_BENCH_ROWS", 4) as usize;
    for (name, table) in [
        (
            "1,000 in 1 host",
            Table {
                hosts: 1,
                per_host: 1_000,
            },
        ),
        (
            "10,000 in 1 host",
            Table {
                hosts: 1,
                per_host: 10_000,
            },
        ),
        (
            "10,000 over 1,000 hosts",
            Table {
                hosts: 1_000,
                per_host: 10,
            },
        ),
    ]
    .into_iter()
    .take(rows.saturating_sub(1))
    {
        let dir = Scratch::new("throughput-row")?;
        let gen = generate_table(dir.path(), &table, upstream_listen)?;
        let mut fronts = Vec::new();
        for (label, file) in [("native", "envoy-native.yaml"), ("wasm", "envoy.yaml")] {
            let (boot, listen, admin) = load_bootstrap(&gen.join(file))?;
            fronts.push(Front::start(
                &scratch,
                label,
                boot,
                listen,
                admin,
                table.requests(),
            )?);
        }
        run_rounds(&mut fronts, &scratch, seconds, rounds, tick)?;
        line(name, &fronts[0], &fronts[1]);
    }
    println!("load average at end {}", load_average());
    drop(upstream);
    Ok(())
}
