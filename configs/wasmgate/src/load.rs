//! Reads multi-document YAML from files and directories into typed objects.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{ErrorKind, Errors, GenError, Location};
use crate::model::*;

/// One typed input object and where it came from.
#[derive(Debug, Clone)]
pub struct Sourced<T> {
    pub at: Location,
    pub value: T,
}

/// Everything read from the inputs, by kind.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub services: Vec<Sourced<Service>>,
    pub virtual_hosts: Vec<Sourced<VirtualHost>>,
    pub inventories: Vec<Sourced<ClusterInventory>>,
    pub multi_cluster_services: Vec<Sourced<MultiClusterService>>,
    pub multi_cluster_ingresses: Vec<Sourced<MultiClusterIngress>>,
    pub gateways: Vec<Sourced<Gateway>>,
    pub http_routes: Vec<Sourced<HttpRoute>>,
    pub service_imports: Vec<Sourced<ServiceImport>>,
    pub destination_rules: Vec<Sourced<DestinationRule>>,
    pub namespaces: Vec<Sourced<Namespace>>,
    pub reference_grants: Vec<Sourced<ReferenceGrant>>,
    pub endpoint_slices: Vec<Sourced<EndpointSlice>>,
    /// Storage buckets (kind `Bucket`, group `wasmgate.io`) HTTPRoute backendRefs may name.
    pub buckets: Vec<Sourced<crate::buckets::Bucket>>,
    /// Documents read and left aside (kinds that do not affect routing), one line each.
    pub notes: Vec<String>,
}

/// Kinds `kubectl get -o yaml` prints that do not affect routing: skipped with a note.
const SKIPPED_KINDS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Pod",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Endpoints",
    "GatewayClass",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "NetworkPolicy",
    "Event",
];

/// Expands directories (their `*.yaml` / `*.yml` files, sorted) and reads every document.
/// Every error of every file is collected before returning.
pub fn load(paths: &[PathBuf]) -> Result<Inputs, Errors> {
    let mut inputs = Inputs::default();
    let mut errors = Vec::new();
    for file in expand(paths, &mut errors) {
        match std::fs::read_to_string(&file) {
            Ok(text) => load_str(&file, &text, &mut inputs, &mut errors),
            Err(e) => errors.push(GenError {
                at: Location {
                    file,
                    ..Location::default()
                },
                kind: ErrorKind::Io(e.to_string()),
            }),
        }
    }
    if errors.is_empty() {
        Ok(inputs)
    } else {
        Err(Errors(errors))
    }
}

fn expand(paths: &[PathBuf], errors: &mut Vec<GenError>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|f| is_yaml(f))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => errors.push(GenError {
                    at: Location {
                        file: p.clone(),
                        ..Location::default()
                    },
                    kind: ErrorKind::Io(e.to_string()),
                }),
            }
        } else {
            files.push(p.clone());
        }
    }
    files
}

fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

#[derive(Deserialize)]
struct Head {
    kind: Option<String>,
    metadata: Option<HeadMeta>,
}

#[derive(Deserialize)]
struct HeadMeta {
    name: Option<String>,
}

/// Reads the documents of one file's text.
pub fn load_str(file: &Path, text: &str, inputs: &mut Inputs, errors: &mut Vec<GenError>) {
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let at = Location {
            file: file.to_path_buf(),
            document: i + 1,
            ..Location::default()
        };
        let value = match serde_yaml_ng::Value::deserialize(doc) {
            Ok(serde_yaml_ng::Value::Null) => continue,
            Ok(v) => v,
            Err(e) => {
                errors.push(GenError {
                    at,
                    kind: ErrorKind::Yaml(e.to_string()),
                });
                // The YAML stream cannot be resumed after a syntax error.
                break;
            }
        };
        load_value(value, at, inputs, errors);
    }
}

/// Reads one document (a `List` document: each of its `items`).
fn load_value(
    value: serde_yaml_ng::Value,
    mut at: Location,
    inputs: &mut Inputs,
    errors: &mut Vec<GenError>,
) {
    {
        let head: Head = serde_yaml_ng::from_value(value.clone()).unwrap_or(Head {
            kind: None,
            metadata: None,
        });
        let kind = head.kind.unwrap_or_default();
        let name = head.metadata.and_then(|m| m.name).unwrap_or_default();
        at.object = Some(format!("{kind} {name}").trim().to_string());
        if kind == "List" || kind.ends_with("List") && value.get("items").is_some() {
            let items = match value.get("items") {
                Some(serde_yaml_ng::Value::Sequence(items)) => items.clone(),
                _ => Vec::new(),
            };
            for (i, item) in items.into_iter().enumerate() {
                let mut item_at = at.clone();
                item_at.field = format!("items[{i}]");
                load_value(item, item_at, inputs, errors);
            }
            return;
        }
        if SKIPPED_KINDS.contains(&kind.as_str()) {
            inputs.notes.push(format!(
                "{}: document {}: skipped {kind} {name}: it does not affect routing",
                at.file.display(),
                at.document
            ));
            return;
        }
        let value = strip_type_fields(value);
        match kind.as_str() {
            "Namespace" => push(&mut inputs.namespaces, at, value, errors),
            "ReferenceGrant" => push(&mut inputs.reference_grants, at, value, errors),
            "EndpointSlice" => push(&mut inputs.endpoint_slices, at, value, errors),
            "Service" => push(&mut inputs.services, at, value, errors),
            "VirtualHost" => push(&mut inputs.virtual_hosts, at, value, errors),
            "ClusterInventory" => push(&mut inputs.inventories, at, value, errors),
            "MultiClusterService" => push(&mut inputs.multi_cluster_services, at, value, errors),
            "MultiClusterIngress" => push(&mut inputs.multi_cluster_ingresses, at, value, errors),
            "Gateway" => push(&mut inputs.gateways, at, value, errors),
            "HTTPRoute" => push(&mut inputs.http_routes, at, value, errors),
            "ServiceImport" => push(&mut inputs.service_imports, at, value, errors),
            "DestinationRule" => push(&mut inputs.destination_rules, at, value, errors),
            "Bucket" => push(&mut inputs.buckets, at, value, errors),
            _ => errors.push(GenError {
                at,
                kind: ErrorKind::UnknownKind(kind),
            }),
        }
    }
}

/// `apiVersion` and `kind` select the type; the typed structs do not repeat them.
fn strip_type_fields(mut v: serde_yaml_ng::Value) -> serde_yaml_ng::Value {
    if let serde_yaml_ng::Value::Mapping(m) = &mut v {
        m.remove("apiVersion");
        m.remove("kind");
        m.remove("status");
    }
    v
}

fn push<T: DeserializeOwned>(
    list: &mut Vec<Sourced<T>>,
    mut at: Location,
    value: serde_yaml_ng::Value,
    errors: &mut Vec<GenError>,
) {
    // Inside a List, field paths start at the item.
    let prefix = std::mem::take(&mut at.field);
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(value) => list.push(Sourced { at, value }),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            at.field = match (prefix.is_empty(), path.is_empty()) {
                (true, _) => path,
                (false, true) => prefix,
                (false, false) => format!("{prefix}.{path}"),
            };
            errors.push(GenError {
                at,
                kind: ErrorKind::Schema(e.into_inner().to_string()),
            });
        }
    }
}
