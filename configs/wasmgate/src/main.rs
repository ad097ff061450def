//! `wasmgate`: the generator's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use wasmgate::explain::{explain, Probe};
use wasmgate::{watch, xds};

const USAGE: &str = "usage:
  wasmgate generate [OPTIONS] INPUT...    write the outputs into --out (default: out)
  wasmgate check    [OPTIONS] INPUT...    validate only; exit 0 valid, 1 invalid, 2 usage
  wasmgate explain  [OPTIONS] --request 'METHOD HOST PATH' [--header K:V]... [--listener NAME] INPUT...

INPUT is a YAML file or a directory of them (kubectl get -o yaml output included). Kinds: Service,
EndpointSlice, Namespace, VirtualHost, MultiClusterService, MultiClusterIngress, Gateway,
HTTPRoute, ReferenceGrant, ServiceImport, DestinationRule, ClusterInventory, and List of them;
kinds that do not affect routing (Deployment, ConfigMap, ...) are skipped with a note.

A fault Gateway API scopes to a route (no listener hostname in common, a listener that does
not admit the route, a backendRef that does not resolve) or to a listener (conflicted, an
unsupported protocol, a port another Gateway holds) is reported in the object's status (stderr
and status.yaml) and the rest is generated; --strict refuses the input instead.

OPTIONS:
  --out DIR                 where generate writes (nothing is written unless all is valid)
  --xds DIR                 generate: write a bootstrap whose listeners, clusters and Wasm filter
                            configs come from files in DIR that Envoy watches (LDS, CDS, ECDS);
                            files are replaced atomically, in an order that drops no request
  --watch                   with --xds: keep running and rewrite DIR on every valid change of
                            the inputs (polled every 100 ms); an invalid change writes nothing
  --router-wasm FILE        module path in envoy.yaml (default target/wasm32-wasip1/release/wasmgate_router.wasm)
  --balancer-wasm FILE      likewise for the balancer
  --listen-address ADDR     listener and admin address (default 127.0.0.1)
  --http-port N             HTTP listener when no Gateway declares one (default 10000)
  --admin-port N            Envoy admin port (default 9901)
  --port-map [GATEWAY:]DECLARED=ACTUAL  run a declared listener port (of every Gateway, or of
                            the one named) on another port (repeatable)
  --strict                  refuse the input on any route or listener fault instead of reporting status
  --listener NAME|PORT      explain: the Envoy listener the request reaches (default: the first)
  --region R, --zone Z      the proxy's own locality, for the balancer
  --access-log PATH         where Envoy writes its JSON access log (default /dev/stdout)
  --istio-namespace NS      namespace of the Istio manifests (default istio-system)
  --istio-wasm-url URL      base URL of the modules for WasmPlugin (default file:///var/local/wasmgate)";

enum Failure {
    Usage(String),
    Invalid(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), Failure> {
    let usage = |m: String| Failure::Usage(format!("{m}\n{USAGE}"));
    let (cmd, rest) = args
        .split_first()
        .ok_or_else(|| usage("no command".into()))?;
    if !matches!(cmd.as_str(), "generate" | "check" | "explain") {
        return Err(usage(format!("unknown command {cmd:?}")));
    }
    let mut opts = wasmgate::Options::default();
    let mut out = PathBuf::from("out");
    let mut xds_dir: Option<PathBuf> = None;
    let mut watch = false;
    let mut inputs = Vec::new();
    let mut probe: Option<Probe> = None;
    let mut headers = Vec::new();
    let mut listener: Option<String> = None;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| usage(format!("{a} needs a value")))
        };
        let number = |v: String| v.parse::<u16>().map_err(|e| usage(format!("{a} {v}: {e}")));
        match a.as_str() {
            "--out" => out = PathBuf::from(value()?),
            "--xds" => xds_dir = Some(PathBuf::from(value()?)),
            "--watch" => watch = true,
            "--router-wasm" => opts.router_wasm = PathBuf::from(value()?),
            "--balancer-wasm" => opts.balancer_wasm = PathBuf::from(value()?),
            "--listen-address" => opts.listen_address = value()?,
            "--http-port" => opts.http_port = number(value()?)?,
            "--admin-port" => opts.admin_port = number(value()?)?,
            "--region" => opts.region = Some(value()?),
            "--zone" => opts.zone = Some(value()?),
            "--access-log" => opts.access_log = value()?,
            "--istio-namespace" => opts.istio.namespace = value()?,
            "--istio-wasm-url" => opts.istio.wasm_url_base = value()?,
            "--port-map" => {
                let v = value()?;
                let (from, to) = v
                    .split_once('=')
                    .ok_or_else(|| usage(format!("--port-map {v}: expected DECLARED=ACTUAL")))?;
                let to = number(to.to_string())?;
                match from.rsplit_once(':') {
                    Some((gw, port)) => {
                        let port = number(port.to_string())?;
                        opts.gateway_port_map.insert((gw.to_string(), port), to);
                    }
                    None => {
                        opts.port_map.insert(number(from.to_string())?, to);
                    }
                }
            }
            "--request" => {
                let v = value()?;
                let parts: Vec<&str> = v.split_whitespace().collect();
                let [method, host, path] = parts.as_slice() else {
                    return Err(usage(format!(
                        "--request {v:?}: expected 'METHOD HOST PATH'"
                    )));
                };
                probe = Some(Probe {
                    method: method.to_string(),
                    host: host.to_string(),
                    path: path.to_string(),
                    headers: Vec::new(),
                    port: None,
                });
            }
            "--strict" => opts.strict = true,
            "--listener" => listener = Some(value()?),
            "--header" => {
                let v = value()?;
                let (k, val) = v
                    .split_once(':')
                    .ok_or_else(|| usage(format!("--header {v:?}: expected NAME:VALUE")))?;
                headers.push((k.trim().to_string(), val.trim().to_string()));
            }
            "-h" | "--help" => return Err(Failure::Usage(USAGE.into())),
            flag if flag.starts_with("--") => return Err(usage(format!("unknown option {flag}"))),
            path => inputs.push(PathBuf::from(path)),
        }
    }
    if inputs.is_empty() {
        return Err(usage("no INPUT given".into()));
    }
    if (xds_dir.is_some() || watch) && cmd != "generate" {
        return Err(usage("--xds and --watch are options of generate".into()));
    }
    if let Some(dir) = xds_dir {
        return generate_xds(&inputs, &opts, &dir, watch);
    }
    if watch {
        return Err(usage("--watch needs --xds DIR".into()));
    }
    let loaded = wasmgate::load(&inputs).map_err(|e| Failure::Invalid(e.to_string()))?;
    let output = wasmgate::generate(&loaded, &opts).map_err(|e| Failure::Invalid(e.to_string()))?;
    for n in &output.notes {
        eprintln!("note: {n}");
    }
    for g in &output.gateways {
        for p in g.problems() {
            eprintln!("status: {p}");
        }
    }
    for r in &output.status {
        for p in r.problems() {
            eprintln!("status: {p}");
        }
    }
    match cmd.as_str() {
        "check" => {
            println!("ok: {} input path(s) valid", inputs.len());
            for g in &output.native_gaps {
                println!(
                    "note: envoy-native.yaml leaves out routes[{}].http.rules[{}]: {}",
                    g.route, g.rule, g.reason
                );
            }
            Ok(())
        }
        "explain" => {
            let mut probe = probe.ok_or_else(|| usage("explain needs --request".into()))?;
            probe.headers = headers;
            let mut output = output;
            if let Some(want) = &listener {
                let l = output
                    .listeners
                    .iter()
                    .find(|l| l.name == *want || l.declared_port.to_string() == *want)
                    .ok_or_else(|| {
                        let names: Vec<String> = output
                            .listeners
                            .iter()
                            .map(|l| format!("{} (port {})", l.name, l.declared_port))
                            .collect();
                        usage(format!(
                            "--listener {want}: no such listener; there are {}",
                            names.join(", ")
                        ))
                    })?;
                output.router = l.router.clone();
            }
            print!("{}", explain(&output, &probe).map_err(Failure::Invalid)?);
            Ok(())
        }
        _ => {
            let files = output
                .files()
                .map_err(|e| Failure::Invalid(e.to_string()))?;
            std::fs::create_dir_all(&out)
                .map_err(|e| Failure::Invalid(format!("{}: {e}", out.display())))?;
            for (name, text) in files {
                let path = out.join(&name);
                std::fs::write(&path, text)
                    .map_err(|e| Failure::Invalid(format!("{}: {e}", path.display())))?;
                println!("wrote {}", path.display());
            }
            for g in &output.native_gaps {
                eprintln!(
                    "note: envoy-native.yaml leaves out routes[{}].http.rules[{}]: {}",
                    g.route, g.rule, g.reason
                );
            }
            Ok(())
        }
    }
}

/// `generate --xds DIR [--watch]`.
fn generate_xds(
    inputs: &[PathBuf],
    opts: &wasmgate::Options,
    dir: &std::path::Path,
    watch: bool,
) -> Result<(), Failure> {
    let invalid = |e: String| Failure::Invalid(e);
    std::fs::create_dir_all(dir).map_err(|e| invalid(format!("{}: {e}", dir.display())))?;
    // Envoy resolves the paths in the bootstrap from its own working directory.
    let dir = dir
        .canonicalize()
        .map_err(|e| invalid(format!("{}: {e}", dir.display())))?;
    if watch {
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        return watch::run(inputs, opts, &dir, &mut out, &mut err)
            .map_err(|e| invalid(e.to_string()));
    }
    let (output, config) = watch::build(inputs, opts, &dir).map_err(invalid)?;
    let mut writer =
        xds::XdsWriter::new(&dir, xds::Timing::IMMEDIATE).map_err(|e| invalid(e.to_string()))?;
    let wrote = watch::write_all(&dir, &mut writer, &output, &config)
        .map_err(|e| invalid(e.to_string()))?;
    // A one-shot run has no one to wait for the drain: removed clusters go now, after the
    // filter configs that stopped choosing them.
    while let Some(at) = writer.next_tick() {
        writer.tick(at).map_err(|e| invalid(e.to_string()))?;
    }
    for name in &wrote {
        println!("wrote {}", dir.join(name).display());
    }
    println!("version {}", config.version);
    Ok(())
}
