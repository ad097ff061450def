//! Golden files: every example in configs/examples generates exactly the files checked in
//! beside it under `generated/`. `WASMGATE_BLESS=1 cargo test -p wasmgate --test golden`
//! rewrites them after an intended change (review the diff).

use std::path::{Path, PathBuf};

use wasmgate::{generate, load, Options};

/// Options that make the outputs independent of the machine.
pub fn golden_options() -> Options {
    Options {
        router_wasm: PathBuf::from("/etc/wasmgate/wasmgate_router.wasm"),
        balancer_wasm: PathBuf::from("/etc/wasmgate/wasmgate_balancer.wasm"),
        ..Options::default()
    }
}

fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("configs/examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_example_generates_its_golden_files() {
    let bless = std::env::var_os("WASMGATE_BLESS").is_some();
    let mut failures = Vec::new();
    let dirs = examples();
    assert!(dirs.len() >= 4, "examples: {dirs:?}");
    for dir in dirs {
        let inputs =
            load(std::slice::from_ref(&dir)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let output = generate(&inputs, &golden_options())
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let golden = dir.join("generated");
        if bless {
            let _ = std::fs::remove_dir_all(&golden);
            std::fs::create_dir_all(&golden).unwrap();
        }
        let files = output.files().unwrap();
        for (name, text) in &files {
            let path = golden.join(name);
            if bless {
                std::fs::write(&path, text).unwrap();
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(want) if &want == text => {}
                Ok(_) => failures.push(format!(
                    "{} differs (WASMGATE_BLESS=1 to accept)",
                    path.display()
                )),
                Err(e) => failures.push(format!("{}: {e}", path.display())),
            }
        }
        // No stale golden file for an output that is no longer produced.
        if let Ok(entries) = std::fs::read_dir(&golden) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !files.iter().any(|(n, _)| *n == name) {
                    failures.push(format!("{}: not generated any more", e.path().display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
