//! A whole balancer config, compiled: the services' selectors, how a request names its
//! service, the TCP port map and the proxy's locality.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::locality::Locality;
use super::select::Selector;
use crate::config::{BalancerConfig, ServiceKey};
use crate::error::{from_json, ConfigError, ConfigErrorKind as K};
use crate::route_table::matchers::host::parse_authority;

/// How a request names its service, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceFrom {
    /// The wasmgate router's service header (lower-case name); the router owns the cluster
    /// header.
    Router(String),
    /// A request header (lower-case name).
    Header(String),
    /// `:authority`, lower-cased, without port or trailing dot.
    Host,
}

#[derive(Debug, Clone)]
pub struct Balancer {
    cluster_header: String,
    service_from: ServiceFrom,
    selectors: Vec<Selector>,
    by_name: HashMap<String, usize>,
    tcp_ports: BTreeMap<u16, usize>,
    locality: Option<Locality>,
    shared_prefix: String,
    /// Service `i`'s health key, formatted once at configure (read on every request).
    health_keys: Vec<String>,
    needed_headers: Vec<String>,
}

/// The shared-data key holding a service's health state: the one place it is formatted.
fn format_health_key(shared_prefix: &str, service: &str) -> String {
    format!("{shared_prefix}/{service}/health")
}

fn valid_header(at: &str, name: &str) -> Result<String, ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::new(at, K::EmptyName));
    }
    if !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(ConfigError::new(at, K::InvalidHeaderName(name.to_string())));
    }
    Ok(name.to_ascii_lowercase())
}

impl Balancer {
    /// Parses and compiles the filter's JSON configuration; any error rejects it whole.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::compile(&from_json::<BalancerConfig>(bytes)?)
    }

    pub fn compile(config: &BalancerConfig) -> Result<Self, ConfigError> {
        let cluster_header = valid_header("clusterHeader", &config.cluster_header)?;
        let service_from = match &config.service_from {
            ServiceKey::Router(h) => ServiceFrom::Router(valid_header("serviceFrom.router", h)?),
            ServiceKey::Header(h) => ServiceFrom::Header(valid_header("serviceFrom.header", h)?),
            ServiceKey::Host => ServiceFrom::Host,
        };
        let mut selectors = Vec::new();
        let mut by_name = HashMap::new();
        let mut needed = BTreeSet::new();
        for (name, svc) in &config.services {
            if name.is_empty() {
                return Err(ConfigError::new("services", K::EmptyName));
            }
            let sel = Selector::compile_at(&format!("services.{name}"), name, svc)?;
            needed.extend(sel.needed_headers().iter().cloned());
            // Hosts are matched lower-case; header values exactly.
            let key = match service_from {
                ServiceFrom::Host => name.to_ascii_lowercase(),
                ServiceFrom::Router(_) | ServiceFrom::Header(_) => name.clone(),
            };
            by_name.insert(key, selectors.len());
            selectors.push(sel);
        }
        let mut tcp_ports = BTreeMap::new();
        for (port, svc) in &config.tcp_ports {
            let Some(&i) = by_name.get(svc) else {
                return Err(ConfigError::new(
                    format!("tcpPorts.{port}"),
                    K::UnknownService(svc.clone()),
                ));
            };
            tcp_ports.insert(*port, i);
        }
        let locality = config
            .locality
            .as_ref()
            .map(|l| Locality::new(l.region.as_deref(), l.zone.as_deref()));
        let health_keys = selectors
            .iter()
            .map(|s| format_health_key(&config.shared_prefix, s.name()))
            .collect();
        let mut b = Balancer {
            cluster_header,
            service_from,
            selectors,
            by_name,
            tcp_ports,
            locality: None,
            shared_prefix: config.shared_prefix.clone(),
            health_keys,
            needed_headers: needed.into_iter().collect(),
        };
        if let Some(l) = locality {
            b.set_locality(&l);
        }
        Ok(b)
    }

    /// The proxy's locality from config, if it was given there.
    pub fn configured_locality(&self) -> Option<&Locality> {
        self.locality.as_ref()
    }

    pub fn set_locality(&mut self, l: &Locality) {
        for s in &mut self.selectors {
            s.set_locality(l);
        }
        self.locality = Some(l.clone());
    }

    pub fn cluster_header(&self) -> &str {
        &self.cluster_header
    }

    pub fn service_from(&self) -> &ServiceFrom {
        &self.service_from
    }

    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    pub fn selector(&self, i: usize) -> Option<&Selector> {
        self.selectors.get(i)
    }

    /// The service a request names (by the configured header value or host).
    pub fn service(&self, value: &[u8]) -> Option<usize> {
        match self.service_from {
            ServiceFrom::Router(_) | ServiceFrom::Header(_) => {
                self.by_name.get(std::str::from_utf8(value).ok()?).copied()
            }
            // The router's authority parser: `shop:80:80` or `user@shop` name no service.
            ServiceFrom::Host => self.by_name.get(&*parse_authority(value).ok()?).copied(),
        }
    }

    pub fn tcp_service(&self, port: u16) -> Option<usize> {
        self.tcp_ports.get(&port).copied()
    }

    pub fn has_tcp_ports(&self) -> bool {
        !self.tcp_ports.is_empty()
    }

    /// The shared-data key of service `i`'s health state.
    pub fn health_key(&self, i: usize) -> &str {
        self.health_keys.get(i).map_or("", String::as_str)
    }

    /// The shared-data key of the active health-check lease.
    pub fn lease_key(&self) -> String {
        format!("{}/hc-lease", self.shared_prefix)
    }

    /// Every request header some service's `pick` reads.
    pub fn needed_headers(&self) -> &[String] {
        &self.needed_headers
    }
}
