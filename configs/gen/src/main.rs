//! `wasmgate`: the generator's command line.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: wasmgate generate [--out DIR] [--router-wasm FILE] [--http-port N] [--admin-port N] [--port-map DECLARED=ACTUAL]... INPUT...
  INPUT is a YAML file or a directory of them (Service, VirtualHost, ClusterInventory).
  Writes router.json and envoy.yaml into DIR (default: out), or nothing if any input is invalid.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let (cmd, rest) = args.split_first().ok_or(USAGE)?;
    if cmd != "generate" {
        return Err(format!("unknown command {cmd:?}\n{USAGE}"));
    }
    let mut opts = wasmgate_gen::Options::default();
    let mut out = PathBuf::from("out");
    let mut inputs = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or(format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--out" => out = PathBuf::from(value()?),
            "--router-wasm" => opts.router_wasm = PathBuf::from(value()?),
            "--http-port" => {
                opts.http_port = value()?.parse().map_err(|e| format!("--http-port: {e}"))?
            }
            "--admin-port" => {
                opts.admin_port = value()?.parse().map_err(|e| format!("--admin-port: {e}"))?
            }
            "--port-map" => {
                let v = value()?;
                let (from, to) = v
                    .split_once('=')
                    .ok_or(format!("--port-map {v}: expected DECLARED=ACTUAL"))?;
                let parse = |p: &str| p.parse::<u16>().map_err(|e| format!("--port-map {v}: {e}"));
                opts.port_map.insert(parse(from)?, parse(to)?);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            flag if flag.starts_with("--") => {
                return Err(format!("unknown option {flag}\n{USAGE}"))
            }
            path => inputs.push(PathBuf::from(path)),
        }
    }
    if inputs.is_empty() {
        return Err(USAGE.into());
    }
    let loaded = wasmgate_gen::load(&inputs).map_err(|e| e.to_string())?;
    let output = wasmgate_gen::generate(&loaded, &opts).map_err(|e| e.to_string())?;
    let files = output.files().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
