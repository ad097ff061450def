//! `wasmgate generate --xds DIR --watch`: regenerate on every change of the inputs and
//! replace the xDS files Envoy watches. The inputs are polled (size and modification time of
//! each YAML file, every 100 ms): a handful of files, so polling costs nothing measurable and
//! needs no platform file-notification dependency.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::change;
use crate::emit::{generate, Options, Output};
use crate::load::load;
use crate::xds::{self, Timing, WriteError, XdsWriter};

pub const POLL: Duration = Duration::from_millis(100);

/// Every input YAML file with its size and modification time: a change to any of them, a new
/// file or a removed one changes the fingerprint.
pub fn fingerprint(inputs: &[PathBuf]) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut files = Vec::new();
    for input in inputs {
        match std::fs::read_dir(input) {
            Ok(entries) => files.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml")),
            ),
            Err(_) => files.push(input.clone()),
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let mtime = meta.and_then(|m| m.modified().ok());
            (p, len, mtime)
        })
        .collect()
}

/// Generates from `inputs`: the outputs and their xDS split, or every error.
pub fn build(
    inputs: &[PathBuf],
    opts: &Options,
    dir: &Path,
) -> Result<(Output, xds::XdsConfig), String> {
    let loaded = load(inputs).map_err(|e| e.to_string())?;
    let output = generate(&loaded, opts).map_err(|e| e.to_string())?;
    let config = xds::split(&output.envoy, dir);
    Ok((output, config))
}

/// Writes the outputs beside the xDS files (the filters' JSON and Istio manifests, for
/// reference), then the xDS files in their safe order.
pub fn write_all(
    dir: &Path,
    writer: &mut XdsWriter,
    output: &Output,
    config: &xds::XdsConfig,
) -> Result<Vec<String>, WriteError> {
    let files = output
        .files()
        .map_err(|e| WriteError(format!("rendering: {e}")))?;
    for (name, text) in files {
        // The static bootstrap is replaced by the dynamic one.
        if name != xds::BOOTSTRAP_FILE {
            let path = dir.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                xds::write_atomic(&path, &text)?;
            }
        }
    }
    writer.apply(config)
}

/// Runs until killed: one line on `out` per accepted change (what changed, the version), the
/// errors of a rejected change on `err` (nothing is written then; the last good config keeps
/// serving).
pub fn run(
    inputs: &[PathBuf],
    opts: &Options,
    dir: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), WriteError> {
    let mut writer = XdsWriter::new(dir, Timing::WATCH)?;
    let mut seen = fingerprint(inputs);
    let mut current: Option<(Output, String)> = None;
    match build(inputs, opts, dir) {
        Ok((output, config)) => {
            let wrote = write_all(dir, &mut writer, &output, &config)?;
            let _ = writeln!(
                out,
                "version {}: initial config ({} files written); watching {} input(s)",
                config.version,
                wrote.len(),
                inputs.len()
            );
            current = Some((output, config.version));
        }
        Err(e) => {
            let _ = writeln!(err, "rejected: nothing written\n{e}");
        }
    }
    let _ = out.flush();
    loop {
        let now = Instant::now();
        let wait = writer
            .next_tick()
            .map_or(POLL, |at| at.saturating_duration_since(now).min(POLL));
        std::thread::sleep(wait);
        if writer.tick(Instant::now())?.is_some() {
            let version = current.as_ref().map_or("-", |(_, v)| v.as_str());
            let _ = writeln!(
                out,
                "version {version}: drained clusters removed from {}",
                xds::CDS_FILE
            );
            let _ = out.flush();
        }
        let now_seen = fingerprint(inputs);
        if now_seen == seen {
            continue;
        }
        seen = now_seen;
        match build(inputs, opts, dir) {
            Ok((output, config)) => {
                if current.as_ref().is_some_and(|(_, v)| *v == config.version) {
                    continue;
                }
                let wrote = write_all(dir, &mut writer, &output, &config)?;
                let what = match &current {
                    Some((old, _)) => change::describe(&old.router, &output.router),
                    None => vec!["first valid config".to_string()],
                };
                let what = if what.is_empty() {
                    "no routing change".to_string()
                } else {
                    what.join("; ")
                };
                let _ = writeln!(
                    out,
                    "version {}: {what} (wrote {})",
                    config.version,
                    wrote.join(", ")
                );
                current = Some((output, config.version));
            }
            Err(e) => {
                let version = current.as_ref().map_or("none", |(_, v)| v.as_str());
                let _ = writeln!(
                    err,
                    "rejected: nothing written, still serving version {version}\n{e}"
                );
                let _ = err.flush();
            }
        }
        let _ = out.flush();
    }
}
