//! `wasmgate`: the generator's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use wasmgate::explain::explain;
use wasmgate::{watch, xds};

use cli::{Cli, Command};

mod cli;

enum Failure {
    Usage(String),
    Invalid(String),
}

fn main() -> ExitCode {
    // clap prints help (exit 0) and usage errors (exit 2) itself.
    let cli = Cli::parse();
    match run(cli.command) {
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

fn run(command: Command) -> Result<(), Failure> {
    let (common, opts) = match &command {
        Command::Generate { common, files } => {
            let mut opts = common.options();
            files.apply(&mut opts);
            if let Some(dir) = &files.xds {
                return generate_xds(&common.inputs, &opts, dir, files.watch);
            }
            (common, opts)
        }
        Command::Check { common } | Command::Explain { common, .. } => (common, common.options()),
    };
    let inputs = &common.inputs;
    let loaded = wasmgate::load(inputs).map_err(|e| Failure::Invalid(e.to_string()))?;
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
    match command {
        Command::Check { .. } => {
            println!("ok: {} input path(s) valid", inputs.len());
            for g in &output.native_gaps {
                println!("{}", native_gap_note(g));
            }
            Ok(())
        }
        Command::Explain {
            request,
            headers,
            listener,
            ..
        } => {
            let mut probe = request;
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
                        Failure::Usage(format!(
                            "--listener {want}: no such listener; there are {}",
                            names.join(", ")
                        ))
                    })?;
                output.router = l.router.clone();
            }
            print!("{}", explain(&output, &probe).map_err(Failure::Invalid)?);
            Ok(())
        }
        Command::Generate { files, .. } => {
            let out = files.out.unwrap_or_else(|| PathBuf::from("out"));
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
                eprintln!("{}", native_gap_note(g));
            }
            Ok(())
        }
    }
}

fn native_gap_note(g: &wasmgate::envoy_bootstrap::NativeGap) -> String {
    format!(
        "note: envoy-native.yaml leaves out routes[{}].http.rules[{}]: {}",
        g.route, g.rule, g.reason
    )
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
