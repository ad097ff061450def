//! The router case table (`router_cases.yaml`), shared by the native runner in filters/core
//! and the host-sim and Envoy runners in tests/: loading, and comparing what a runner
//! observed with what a case expects.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use serde::Deserialize;

pub const CASES: &str = include_str!("../router_cases.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub configs: BTreeMap<String, serde_yaml_ng::Value>,
    pub cases: Vec<Case>,
    pub errors: Vec<ErrorCase>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub config: String,
    pub request: Request,
    pub expect: Expect,
    /// What a real Envoy shows instead, where its own path normalization (on in every
    /// listener we generate) changes the request before the router sees it.
    pub envoy: Option<Expect>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub authority: Option<String>,
    pub path: String,
    pub method: Option<String>,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    pub cluster: Option<String>,
    pub status: Option<u16>,
    pub body: Option<String>,
    /// Response headers: a value, or null for a header that must be absent.
    #[serde(default)]
    pub headers: BTreeMap<String, Option<String>>,
    pub path: Option<String>,
    pub authority: Option<String>,
    #[serde(default)]
    pub upstream: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub pass_through: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorCase {
    pub name: String,
    pub config: Option<serde_yaml_ng::Value>,
    pub raw: Option<String>,
    pub error: String,
}

impl ErrorCase {
    pub fn json(&self) -> Vec<u8> {
        match (&self.config, &self.raw) {
            (Some(c), _) => serde_json::to_vec(c).unwrap(),
            (None, Some(r)) => r.as_bytes().to_vec(),
            (None, None) => panic!("{}: needs config or raw", self.name),
        }
    }
}

pub fn load() -> CaseFile {
    serde_yaml_ng::from_str(CASES).expect("router_cases.yaml parses")
}

impl CaseFile {
    pub fn config_json(&self, name: &str) -> Vec<u8> {
        let v = self
            .configs
            .get(name)
            .unwrap_or_else(|| panic!("no config {name}"));
        serde_json::to_vec(v).unwrap()
    }
}

/// Test strings may carry raw bytes as `\xNN` (write them in single-quoted YAML).
pub fn bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 3 < b.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or(""), 16)
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

impl Request {
    /// The request's header map as a proxy holds it, pseudo-headers first.
    pub fn header_list(&self) -> Vec<(String, Vec<u8>)> {
        let mut h = Vec::new();
        if let Some(a) = &self.authority {
            h.push((":authority".to_string(), bytes(a)));
        }
        h.push((":path".to_string(), bytes(&self.path)));
        h.push((
            ":method".to_string(),
            self.method
                .clone()
                .unwrap_or_else(|| "GET".into())
                .into_bytes(),
        ));
        h.push((":scheme".to_string(), b"http".to_vec()));
        for (k, v) in &self.headers {
            h.push((k.to_ascii_lowercase(), bytes(v)));
        }
        h
    }
}

/// What a runner saw, in one shape for both runners.
#[derive(Debug, Default)]
pub struct Observed {
    /// Forwarded to this upstream cluster.
    pub cluster: Option<String>,
    /// Forwarded without a cluster choice (the proxy's own routing).
    pub pass_through: bool,
    /// Local reply status (or the upstream's status when forwarded).
    pub status: Option<u16>,
    pub body: Option<Vec<u8>>,
    pub response_headers: Vec<(String, Vec<u8>)>,
    /// Request headers as forwarded upstream.
    pub upstream: Vec<(String, Vec<u8>)>,
}

fn first<'a>(list: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    list.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// Compares an observation with a case's expectation; the error lists every mismatch.
pub fn check(case: &Case, seen: &Observed) -> Result<(), String> {
    let e = &case.expect;
    let mut diffs = Vec::new();
    let forwarded = seen.cluster.is_some() || seen.pass_through;
    if e.cluster.is_some() || e.pass_through {
        if seen.cluster != e.cluster {
            diffs.push(format!(
                "cluster: expected {:?}, saw {:?}",
                e.cluster, seen.cluster
            ));
        }
        if seen.pass_through != e.pass_through {
            diffs.push(format!(
                "passThrough: expected {}, saw {}",
                e.pass_through, seen.pass_through
            ));
        }
    } else if forwarded {
        diffs.push(format!(
            "expected a local reply, but it was forwarded to {:?}",
            seen.cluster
        ));
    }
    if let Some(s) = e.status {
        if forwarded || seen.status != Some(s) {
            diffs.push(format!(
                "status: expected local reply {s}, saw {:?} (forwarded: {forwarded})",
                seen.status
            ));
        }
    }
    if let Some(b) = &e.body {
        if seen.body.as_deref() != Some(b.as_bytes()) {
            diffs.push(format!(
                "body: expected {b:?}, saw {:?}",
                seen.body
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            ));
        }
    }
    for (k, v) in &e.headers {
        let got = first(&seen.response_headers, k);
        if got != v.as_deref().map(str::as_bytes) {
            diffs.push(format!(
                "response header {k}: expected {v:?}, saw {:?}",
                got.map(String::from_utf8_lossy)
            ));
        }
    }
    let mut want_upstream: Vec<(String, Option<String>)> = e
        .upstream
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(p) = &e.path {
        want_upstream.push((":path".into(), Some(p.clone())));
    }
    if let Some(a) = &e.authority {
        want_upstream.push((":authority".into(), Some(a.clone())));
    }
    for (k, v) in want_upstream {
        let got = first(&seen.upstream, &k);
        if got != v.as_deref().map(str::as_bytes) {
            diffs.push(format!(
                "upstream header {k}: expected {v:?}, saw {:?}",
                got.map(String::from_utf8_lossy)
            ));
        }
        let count = seen.upstream.iter().filter(|(n, _)| *n == k).count();
        if v.is_some() && count > 1 {
            diffs.push(format!(
                "upstream header {k}: expected one value, saw {count}"
            ));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!("{}:\n  {}", case.name, diffs.join("\n  ")))
    }
}
