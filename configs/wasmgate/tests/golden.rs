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

/// `--combined`: envoy.yaml differs from the default only in its HTTP filters, where one
/// `wasmgate.combined` filter carries the router's and the balancer's configs as
/// `{"router", "balancer"}`; the other files are the same.
#[test]
fn combined_replaces_the_router_and_balancer_filters_by_one_carrying_both_configs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/seed-multicluster");
    let inputs = load(std::slice::from_ref(&dir)).unwrap();
    let two = generate(&inputs, &golden_options())
        .unwrap()
        .files()
        .unwrap();
    let combined_opts = Options {
        combined_wasm: Some(PathBuf::from("/etc/wasmgate/wasmgate_combined.wasm")),
        ..golden_options()
    };
    let one = generate(&inputs, &combined_opts).unwrap().files().unwrap();
    assert_eq!(two.len(), one.len());
    let yaml = |text: &str| -> serde_json::Value { serde_yaml_ng::from_str(text).unwrap() };
    for ((name, a), (name_b, b)) in two.iter().zip(&one) {
        assert_eq!(name, name_b);
        if name != "envoy.yaml" {
            assert_eq!(a, b, "{name} changed with --combined");
            continue;
        }
        let (mut a, mut b) = (yaml(a), yaml(b));
        let filters = |v: &mut serde_json::Value| -> Vec<serde_json::Value> {
            let f = &mut v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                ["typed_config"]["http_filters"];
            std::mem::take(f).as_array().cloned().unwrap()
        };
        let (fa, fb) = (filters(&mut a), filters(&mut b));
        assert_eq!(a, b, "envoy.yaml differs beyond its HTTP filters");
        let names = |f: &[serde_json::Value]| -> Vec<String> {
            f.iter()
                .map(|f| f["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            names(&fa),
            [
                "wasmgate.router",
                "wasmgate.balancer",
                "envoy.filters.http.router"
            ]
        );
        assert_eq!(
            names(&fb),
            ["wasmgate.combined", "envoy.filters.http.router"]
        );
        let config = |f: &serde_json::Value| -> serde_json::Value {
            let c = &f["typed_config"]["config"]["configuration"]["value"];
            serde_json::from_str(c.as_str().unwrap()).unwrap()
        };
        assert_eq!(
            config(&fb[0]),
            serde_json::json!({"router": config(&fa[0]), "balancer": config(&fa[1])})
        );
        let c = &fb[0]["typed_config"]["config"];
        assert_eq!(c["root_id"], "wasmgate.combined");
        assert_eq!(
            c["vm_config"]["code"]["local"]["filename"],
            "/etc/wasmgate/wasmgate_combined.wasm"
        );
    }
}
