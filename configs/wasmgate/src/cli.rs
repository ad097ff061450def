//! The command line as types: each subcommand takes only the options that change what it
//! does, so an option that would be ignored is refused instead.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use wasmgate::explain::Probe;
use wasmgate::Options;

const INPUTS_HELP: &str = "\
INPUT is a YAML file or a directory of them (kubectl get -o yaml output included). Kinds: Service,
EndpointSlice, Namespace, VirtualHost, MultiClusterService, MultiClusterIngress, Gateway,
HTTPRoute, ReferenceGrant, ServiceImport, DestinationRule, ClusterInventory, and List of them;
kinds that do not affect routing (Deployment, ConfigMap, ...) are skipped with a note.

A fault Gateway API scopes to a route (no listener hostname in common, a listener that does
not admit the route, a backendRef that does not resolve) or to a listener (conflicted, an
unsupported protocol, a port another Gateway holds) is reported in the object's status (stderr
and status.yaml) and the rest is generated; --strict refuses the input instead.

Exit status: 0 done (check: valid), 1 invalid input, 2 usage.";

/// wasmgate: Kubernetes-style YAML in; filter JSON, Envoy config and Istio manifests out.
#[derive(Debug, Parser)]
#[command(name = "wasmgate", after_help = INPUTS_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the outputs into --out, or a file-xDS setup into --xds (nothing is written unless
    /// all is valid).
    #[command(after_help = INPUTS_HELP)]
    Generate {
        #[command(flatten)]
        files: FileOptions,
        #[command(flatten)]
        common: Common,
    },
    /// Validate only.
    #[command(after_help = INPUTS_HELP)]
    Check {
        #[command(flatten)]
        common: Common,
    },
    /// Tell where a request goes and what the filters do to it.
    #[command(after_help = INPUTS_HELP)]
    Explain {
        /// The request, as 'METHOD HOST PATH'.
        #[arg(long, value_name = "'METHOD HOST PATH'", value_parser = parse_request)]
        request: Probe,
        /// A request header, NAME:VALUE (repeatable).
        #[arg(long = "header", value_name = "NAME:VALUE", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// The Envoy listener the request reaches, by name or declared port (default: the first).
        #[arg(long, value_name = "NAME|PORT")]
        listener: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

/// What every command reads: the inputs and the options that change the routing decisions.
#[derive(Debug, Args)]
pub struct Common {
    /// YAML files or directories of them.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// HTTP listener when no Gateway declares one.
    #[arg(long, value_name = "N", default_value_t = Options::default().http_port)]
    pub http_port: u16,
    /// Run a declared listener port (of every Gateway, or of the one named) on another port
    /// (repeatable).
    #[arg(long = "port-map", value_name = "[GATEWAY:]DECLARED=ACTUAL", value_parser = parse_port_map)]
    pub port_maps: Vec<PortMapping>,
    /// Refuse the input on any route or listener fault instead of reporting status.
    #[arg(long)]
    pub strict: bool,
    /// The proxy's own region, for the balancer's locality preference.
    #[arg(long, value_name = "R")]
    pub region: Option<String>,
    /// The proxy's own zone, for the balancer's locality preference.
    #[arg(long, value_name = "Z")]
    pub zone: Option<String>,
}

/// What only the written files carry (generate).
#[derive(Debug, Args)]
pub struct FileOptions {
    /// Where generate writes [default: out].
    #[arg(long, value_name = "DIR", conflicts_with = "xds")]
    pub out: Option<PathBuf>,
    /// Write a bootstrap whose listeners, clusters and Wasm filter configs come from files in
    /// DIR that Envoy watches (LDS, CDS, ECDS); files are replaced atomically, in an order
    /// that drops no request.
    #[arg(long, value_name = "DIR")]
    pub xds: Option<PathBuf>,
    /// With --xds: keep running and rewrite DIR on every valid change of the inputs (polled
    /// every 100 ms); an invalid change writes nothing.
    #[arg(long, requires = "xds")]
    pub watch: bool,
    /// Router module path in envoy.yaml.
    #[arg(long, value_name = "FILE", default_value_os_t = Options::default().router_wasm)]
    pub router_wasm: PathBuf,
    /// Balancer module path in envoy.yaml.
    #[arg(long, value_name = "FILE", default_value_os_t = Options::default().balancer_wasm)]
    pub balancer_wasm: PathBuf,
    /// Run the router and the balancer as one Wasm filter (the combined module) on the HTTP
    /// listeners of envoy.yaml. TCP listeners keep the two modules; not with --xds, and
    /// istio.yaml keeps the two plugins.
    #[arg(long, conflicts_with = "xds")]
    pub combined: bool,
    /// Combined module path in envoy.yaml (with --combined).
    #[arg(
        long,
        value_name = "FILE",
        requires = "combined",
        default_value = "target/wasm32-wasip1/release/wasmgate_combined.wasm"
    )]
    pub combined_wasm: PathBuf,
    /// Listener and admin address.
    #[arg(long, value_name = "ADDR", default_value_t = Options::default().listen_address)]
    pub listen_address: String,
    /// Envoy admin port.
    #[arg(long, value_name = "N", default_value_t = Options::default().admin_port)]
    pub admin_port: u16,
    /// Where Envoy writes its JSON access log.
    #[arg(long, value_name = "PATH", default_value_t = Options::default().access_log)]
    pub access_log: String,
    /// Namespace of the Istio manifests.
    #[arg(long, value_name = "NS", default_value_t = Options::default().istio.namespace)]
    pub istio_namespace: String,
    /// Base URL of the modules for WasmPlugin.
    #[arg(long, value_name = "URL", default_value_t = Options::default().istio.wasm_url_base)]
    pub istio_wasm_url: String,
}

/// One `--port-map`: a declared listener port, of one Gateway or of all, bound elsewhere.
#[derive(Debug, Clone)]
pub struct PortMapping {
    pub gateway: Option<String>,
    pub declared: u16,
    pub actual: u16,
}

impl Common {
    /// The generator's options with these set (and the file options at their defaults).
    pub fn options(&self) -> Options {
        let mut opts = Options {
            http_port: self.http_port,
            strict: self.strict,
            region: self.region.clone(),
            zone: self.zone.clone(),
            ..Options::default()
        };
        for m in &self.port_maps {
            match &m.gateway {
                Some(gw) => {
                    opts.gateway_port_map
                        .insert((gw.clone(), m.declared), m.actual);
                }
                None => {
                    opts.port_map.insert(m.declared, m.actual);
                }
            }
        }
        opts
    }
}

impl FileOptions {
    pub fn apply(&self, opts: &mut Options) {
        opts.router_wasm = self.router_wasm.clone();
        opts.balancer_wasm = self.balancer_wasm.clone();
        opts.combined_wasm = self.combined.then(|| self.combined_wasm.clone());
        opts.listen_address = self.listen_address.clone();
        opts.admin_port = self.admin_port;
        opts.access_log = self.access_log.clone();
        opts.istio.namespace = self.istio_namespace.clone();
        opts.istio.wasm_url_base = self.istio_wasm_url.clone();
    }
}

fn parse_request(v: &str) -> Result<Probe, String> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [method, host, path] = parts.as_slice() else {
        return Err("expected 'METHOD HOST PATH'".into());
    };
    Ok(Probe {
        method: method.to_string(),
        host: host.to_string(),
        path: path.to_string(),
        headers: Vec::new(),
        port: None,
    })
}

fn parse_header(v: &str) -> Result<(String, String), String> {
    let (k, val) = v.split_once(':').ok_or("expected NAME:VALUE")?;
    Ok((k.trim().to_string(), val.trim().to_string()))
}

fn parse_port_map(v: &str) -> Result<PortMapping, String> {
    let (from, to) = v
        .split_once('=')
        .ok_or("expected [GATEWAY:]DECLARED=ACTUAL")?;
    let port = |s: &str| s.parse::<u16>().map_err(|e| format!("{s}: {e}"));
    let (gateway, declared) = match from.rsplit_once(':') {
        Some((gw, p)) => (Some(gw.to_string()), port(p)?),
        None => (None, port(from)?),
    };
    Ok(PortMapping {
        gateway,
        declared,
        actual: port(to)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("wasmgate").chain(args.iter().copied()))
    }

    #[test]
    fn options_a_command_would_ignore_are_refused() {
        let refused: [(&str, &[&str]); 9] = [
            (
                "--request outside explain",
                &["generate", "--request", "GET a /", "in"],
            ),
            (
                "--header outside explain",
                &["check", "--header", "a:b", "in"],
            ),
            ("--out with check", &["check", "--out", "o", "in"]),
            ("--watch without --xds", &["generate", "--watch", "in"]),
            (
                "--out with --xds",
                &["generate", "--out", "o", "--xds", "x", "in"],
            ),
            (
                "--combined with --xds (ECDS names the two filters)",
                &["generate", "--combined", "--xds", "x", "in"],
            ),
            (
                "--combined-wasm without --combined",
                &["generate", "--combined-wasm", "c.wasm", "in"],
            ),
            ("explain without --request", &["explain", "in"]),
            ("no input", &["check"]),
        ];
        for (what, args) in refused {
            assert!(parse(args).is_err(), "{what} was accepted");
        }
    }

    #[test]
    fn values_are_parsed_or_refused_with_the_expected_form() {
        let cli = parse(&[
            "generate",
            "--port-map",
            "gw:80=8080",
            "--port-map",
            "443=8443",
            "--http-port",
            "1",
            "in",
        ])
        .unwrap();
        let Command::Generate { common, .. } = cli.command else {
            panic!("not generate");
        };
        let opts = common.options();
        assert_eq!(opts.gateway_port_map.get(&("gw".into(), 80)), Some(&8080));
        assert_eq!(opts.port_map.get(&443), Some(&8443));
        assert_eq!(opts.http_port, 1);
        for bad in [
            &["check", "--port-map", "80", "in"][..],
            &["check", "--http-port", "x", "in"],
            &["explain", "--request", "GET /", "in"],
            &[
                "explain",
                "--request",
                "GET a /",
                "--header",
                "nocolon",
                "in",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
