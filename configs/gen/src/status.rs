//! Route status: what the generator made of each HTTPRoute, as Gateway API reports it in a
//! route's `.status.parents[].conditions` (`Accepted`, `ResolvedRefs`, with the spec's
//! reasons). Faults the spec scopes to a route or a rule are reported here, not refused:
//! everything else keeps serving.

use serde_json::{json, Value};

use crate::error::Location;

/// The controller name wasmgate reports status under.
pub const CONTROLLER: &str = "wasmgate.io/gateway-controller";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `Accepted` or `ResolvedRefs`.
    pub kind: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Condition {
    pub fn ok(kind: &'static str, reason: &'static str) -> Self {
        Condition {
            kind,
            status: true,
            reason,
            message: String::new(),
        }
    }

    pub fn failed(kind: &'static str, reason: &'static str, message: String) -> Self {
        Condition {
            kind,
            status: false,
            reason,
            message,
        }
    }
}

/// One parentRef of a route and its conditions.
#[derive(Debug, Clone)]
pub struct ParentStatus {
    pub name: String,
    pub namespace: String,
    pub section_name: Option<String>,
    pub port: Option<u16>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub struct RouteStatus {
    pub kind: &'static str,
    pub name: String,
    pub namespace: String,
    pub at: Location,
    pub parents: Vec<ParentStatus>,
}

impl RouteStatus {
    /// The route as a document shaped like the object, with only its `.status`.
    pub fn to_document(&self) -> Value {
        let parents: Vec<Value> = self
            .parents
            .iter()
            .map(|p| {
                let mut parent_ref = json!({
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "namespace": p.namespace,
                    "name": p.name,
                });
                if let Some(s) = &p.section_name {
                    parent_ref["sectionName"] = json!(s);
                }
                if let Some(port) = p.port {
                    parent_ref["port"] = json!(port);
                }
                json!({
                    "parentRef": parent_ref,
                    "controllerName": CONTROLLER,
                    "conditions": p.conditions.iter().map(|c| json!({
                        "type": c.kind,
                        "status": if c.status { "True" } else { "False" },
                        "reason": c.reason,
                        "message": c.message,
                    })).collect::<Vec<_>>()
                })
            })
            .collect();
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "status": {"parents": parents}
        })
    }

    /// One line per condition that is not met, for stderr.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.parents {
            for c in p.conditions.iter().filter(|c| !c.status) {
                let parent = match (&p.section_name, p.port) {
                    (Some(s), _) => format!("{}/{} listener {s}", p.namespace, p.name),
                    (None, Some(port)) => format!("{}/{} port {port}", p.namespace, p.name),
                    (None, None) => format!("{}/{}", p.namespace, p.name),
                };
                let line = format!(
                    "{} {}/{} on {parent}: {} False ({}): {}",
                    self.kind, self.namespace, self.name, c.kind, c.reason, c.message
                );
                if !out.contains(&line) {
                    out.push(line);
                }
            }
        }
        out
    }
}
