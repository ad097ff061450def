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
    /// `Accepted`, `ResolvedRefs`, `Programmed` or `Conflicted`.
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

    /// The same condition with the opposite status (`Conflicted` is a problem when True).
    pub fn flip(mut self) -> Self {
        self.status = !self.status;
        self
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

/// One Gateway listener's status (`.status.listeners[]`).
#[derive(Debug, Clone)]
pub struct ListenerStatus {
    pub name: String,
    /// The route kinds the listener admits and wasmgate supports (`supportedKinds`).
    pub supported_kinds: Vec<String>,
    /// HTTPRoutes Accepted on a parentRef that selects this listener and that its
    /// `allowedRoutes` admits (hostnames play no part, as the spec says).
    pub attached_routes: u32,
    /// `Accepted`, `Programmed`, `ResolvedRefs`, `Conflicted`.
    pub conditions: Vec<Condition>,
}

impl ListenerStatus {
    /// Whether the listener is accepted and so gets an Envoy listener.
    pub fn accepted(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| c.kind == "Accepted" && c.status)
    }
}

/// What the generator made of a Gateway (`.status.conditions` and `.status.listeners`).
#[derive(Debug, Clone)]
pub struct GatewayStatus {
    pub name: String,
    pub namespace: String,
    pub at: Location,
    /// `Accepted`, `Programmed`.
    pub conditions: Vec<Condition>,
    pub listeners: Vec<ListenerStatus>,
}

fn conditions_json(conditions: &[Condition]) -> Vec<Value> {
    conditions
        .iter()
        .map(|c| {
            json!({
                "type": c.kind,
                "status": if c.status { "True" } else { "False" },
                "reason": c.reason,
                "message": c.message,
            })
        })
        .collect()
}

/// Whether a condition reports a problem: every condition type but `Conflicted` is good
/// when True.
fn is_problem(c: &Condition) -> bool {
    if c.kind == "Conflicted" {
        c.status
    } else {
        !c.status
    }
}

impl GatewayStatus {
    /// The Gateway's own conditions, from its listeners': Accepted (with reason
    /// `ListenersNotValid` when some listener is not, False when none is) and Programmed.
    pub fn conclude(&mut self) {
        let valid = self.listeners.iter().filter(|l| l.accepted()).count();
        let invalid: Vec<&str> = self
            .listeners
            .iter()
            .filter(|l| !l.accepted())
            .map(|l| l.name.as_str())
            .collect();
        let accepted = if invalid.is_empty() {
            Condition::ok("Accepted", "Accepted")
        } else {
            let accepted: Vec<&str> = self
                .listeners
                .iter()
                .filter(|l| l.accepted())
                .map(|l| l.name.as_str())
                .collect();
            Condition {
                kind: "Accepted",
                status: valid > 0,
                reason: "ListenersNotValid",
                message: format!(
                    "listeners not accepted: {}; accepted: {}",
                    invalid.join(", "),
                    if accepted.is_empty() {
                        "none".to_string()
                    } else {
                        accepted.join(", ")
                    }
                ),
            }
        };
        let programmed = if valid > 0 {
            Condition::ok("Programmed", "Programmed")
        } else {
            Condition::failed("Programmed", "Invalid", "no listener is accepted".into())
        };
        self.conditions = vec![accepted, programmed];
    }

    /// The Gateway as a document shaped like the object, with only its `.status`.
    pub fn to_document(&self) -> Value {
        let listeners: Vec<Value> = self
            .listeners
            .iter()
            .map(|l| {
                json!({
                    "name": l.name,
                    "supportedKinds": l.supported_kinds.iter().map(|k| json!({
                        "group": "gateway.networking.k8s.io",
                        "kind": k,
                    })).collect::<Vec<_>>(),
                    "attachedRoutes": l.attached_routes,
                    "conditions": conditions_json(&l.conditions),
                })
            })
            .collect();
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "status": {
                "conditions": conditions_json(&self.conditions),
                "listeners": listeners,
            }
        })
    }

    /// One line per condition that reports a problem, for stderr.
    pub fn problems(&self) -> Vec<String> {
        let id = format!("Gateway {}/{}", self.namespace, self.name);
        let gateway = self.conditions.iter().filter(|c| c.reason != "Accepted");
        let mut out: Vec<String> = gateway
            .filter(|c| c.reason == "ListenersNotValid" || is_problem(c))
            .map(|c| {
                let state = if c.status { "True" } else { "False" };
                format!("{id}: {} {state} ({}): {}", c.kind, c.reason, c.message)
            })
            .collect();
        for l in &self.listeners {
            for c in l.conditions.iter().filter(|c| is_problem(c)) {
                let state = if c.status { "True" } else { "False" };
                out.push(format!(
                    "{id} listener {}: {} {state} ({}): {}",
                    l.name, c.kind, c.reason, c.message
                ));
            }
        }
        out
    }
}
