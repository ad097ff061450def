//! Generated config, deployed: the generator's output running in a real Envoy on free
//! loopback ports, with an inventory that points at the test's own backends.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use wasmgate::{Options, Output};

use crate::envoy_process::Envoy;
use crate::free_port;
use crate::paths::wasm;
use crate::scratch::Scratch;

/// One member cluster of the inventory: its name, labels and the endpoints of each service
/// port in it.
#[derive(Debug, Clone, Default)]
pub struct Member {
    pub name: String,
    pub labels: Vec<(String, String)>,
    /// (service, service port, endpoint `host:port`)
    pub endpoints: Vec<(String, u16, String)>,
}

/// Renders an inventory document in the generator's `ClusterInventory` format.
pub fn inventory_yaml(members: &[Member]) -> String {
    let mut y = String::from(
        "apiVersion: wasmgate.io/v1alpha1\nkind: ClusterInventory\nmetadata:\n  name: test\nspec:\n  clusters:\n",
    );
    for m in members {
        let _ = writeln!(y, "    - name: {}", m.name);
        let _ = writeln!(
            y,
            "      labels: {{{}}}",
            m.labels
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut by_service: BTreeMap<&str, BTreeMap<u16, Vec<&str>>> = BTreeMap::new();
        for (svc, port, ep) in &m.endpoints {
            by_service
                .entry(svc)
                .or_default()
                .entry(*port)
                .or_default()
                .push(ep);
        }
        let _ = writeln!(y, "      services:");
        for (svc, ports) in by_service {
            let _ = writeln!(y, "        {svc}:");
            for (port, eps) in ports {
                let _ = writeln!(
                    y,
                    "          {port}: [{}]",
                    eps.iter()
                        .map(|e| format!("\"{e}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    y
}

pub struct Deployment {
    pub envoy: Envoy,
    /// The HTTP listener.
    pub http: SocketAddr,
    /// Declared listener port (a Gateway listener or a tcp route) -> where it really listens.
    pub ports: BTreeMap<u16, SocketAddr>,
    pub output: Output,
    pub config_path: PathBuf,
    /// Envoy's JSON access log (the generated bootstrap's, pointed into the scratch dir).
    pub access_log: PathBuf,
    // Dropped last: Envoy's log lives here.
    pub scratch: Scratch,
}

#[derive(Debug)]
pub struct DeployError(pub String);

impl std::fmt::Display for DeployError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeployError {}

/// Generates config from `inputs` plus an inventory of `members`, then starts Envoy on it.
/// `ports` lists the declared listener ports (Gateway listeners, tcp routes) to move onto
/// free ports.
pub fn deploy(
    label: &str,
    inputs: &[PathBuf],
    members: &[Member],
    ports: &[u16],
) -> Result<Deployment, DeployError> {
    deploy_with(label, inputs, members, ports, 1)
}

/// Like [`deploy`], with `concurrency` Envoy worker threads (each runs its own Wasm VMs).
pub fn deploy_with(
    label: &str,
    inputs: &[PathBuf],
    members: &[Member],
    ports: &[u16],
    concurrency: u32,
) -> Result<Deployment, DeployError> {
    let err = |m: String| DeployError(m);
    let scratch = Scratch::new(label).map_err(|e| err(e.to_string()))?;
    let inv = scratch
        .write("inventory.yaml", &inventory_yaml(members))
        .map_err(|e| err(e.to_string()))?;
    let mut files = inputs.to_vec();
    files.push(inv);
    let loaded = wasmgate::load(&files).map_err(|e| err(e.to_string()))?;
    let port = || free_port().map_err(|e| err(e.to_string()));
    let access_log = scratch.path().join("access.log");
    let mut opts = Options {
        router_wasm: wasm("wasmgate_router"),
        balancer_wasm: wasm("wasmgate_balancer"),
        http_port: port()?,
        admin_port: port()?,
        access_log: access_log.display().to_string(),
        ..Options::default()
    };
    let mut mapped = BTreeMap::new();
    for declared in ports {
        let actual = port()?;
        opts.port_map.insert(*declared, actual);
        mapped.insert(*declared, SocketAddr::from(([127, 0, 0, 1], actual)));
    }
    let output = wasmgate::generate(&loaded, &opts).map_err(|e| err(e.to_string()))?;
    let files = output.files().map_err(|e| err(e.to_string()))?;
    let mut config_path = PathBuf::new();
    for (name, text) in &files {
        let p = scratch.write(name, text).map_err(|e| err(e.to_string()))?;
        if *name == "envoy.yaml" {
            config_path = p;
        }
    }
    let envoy =
        Envoy::start(&config_path, opts.admin_port, concurrency).map_err(|e| err(e.to_string()))?;
    Ok(Deployment {
        envoy,
        http: SocketAddr::from(([127, 0, 0, 1], opts.http_port)),
        ports: mapped,
        output,
        config_path,
        access_log,
        scratch,
    })
}

impl Deployment {
    /// The access log's entries so far, one JSON object per request.
    pub fn access_log_entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Stops the wasm Envoy and starts `envoy-native.yaml` from the same generator run in its
    /// place: the same listeners and clusters on the same ports, Envoy's own routes. The
    /// returned pair keeps the scratch folder (Envoy's log lives there) as long as Envoy.
    pub fn restart_native(self) -> Result<(Envoy, Scratch), DeployError> {
        let Deployment {
            envoy,
            output,
            scratch,
            ..
        } = self;
        drop(envoy);
        let yaml = serde_yaml_ng::to_string(&output.envoy_native)
            .map_err(|e| DeployError(format!("envoy-native.yaml: {e}")))?;
        let admin = output.envoy_native["admin"]["address"]["socket_address"]["port_value"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| DeployError("envoy-native.yaml has no admin port".into()))?;
        let path = scratch
            .write("envoy-native.yaml", &yaml)
            .map_err(|e| DeployError(format!("writing envoy-native.yaml: {e}")))?;
        let native =
            Envoy::start(&path, admin, 1).map_err(|e| DeployError(format!("native Envoy: {e}")))?;
        Ok((native, scratch))
    }
}
