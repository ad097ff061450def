//! Storage-bucket backends: the generator's input shape (the seed's `backend: {bucket}` and
//! the `Bucket` object an HTTPRoute's backendRef of group `wasmgate.io` names), the router's
//! `bucket` action, and the Envoy cluster that reaches the store, with Envoy's own SigV4
//! signing as an upstream HTTP filter for a private bucket.
//!
//! What is signed where: the router only picks the key and the cluster; Envoy's
//! `aws_request_signing` filter on the bucket's cluster signs each request after the router
//! (so it signs the final `:path` and `:authority`), with credentials Envoy reads from its
//! environment or from a credentials file. No credential is ever written into any config.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use wasmgate_core::config::{self as fc, BucketAddressing};
use wasmgate_core::route_table::bucket::CompiledBucket;

use crate::envoy_api as api;
use crate::error::{ErrorKind, Location};
use crate::istio::IstioOptions;
use crate::istio_api;
use crate::listeners::namespace_of;
use crate::model::{BackendRef, Metadata, VhBackend};
use crate::resolve::Ctx;

/// The API group of the `Bucket` kind an HTTPRoute backendRef may name.
pub const BUCKET_GROUP: &str = "wasmgate.io";
pub const BUCKET_KIND: &str = "Bucket";

/// A bucket as the inputs describe it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketSpec {
    /// The bucket's name in the store.
    pub name: String,
    /// `http://host[:port]` or `https://host[:port]` of the store's S3 endpoint.
    pub endpoint: String,
    /// The region signatures are scoped to; default `us-east-1`.
    pub region: Option<String>,
    #[serde(default)]
    pub addressing: BucketAddressing,
    #[serde(default)]
    pub prefix: String,
    pub index_document: Option<String>,
    pub spa_fallback: Option<String>,
    pub not_found_body: Option<String>,
    /// A private bucket: Envoy signs every request to it. Absent: a public bucket.
    pub signing: Option<Signing>,
}

/// Where Envoy's signing filter reads credentials. Empty (`signing: {}`): Envoy's
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signing {
    /// An AWS credentials file Envoy reads (and re-reads as it changes).
    pub credentials_file: Option<String>,
    /// The profile in that file; default `default`.
    pub profile: Option<String>,
}

/// The `Bucket` object (group `wasmgate.io`) an HTTPRoute backendRef names.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bucket {
    pub metadata: Metadata,
    pub spec: BucketSpec,
}

/// The Envoy cluster of one bucket's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketCluster {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub region: String,
    pub signing: Option<Signing>,
}

/// The CA bundle an `https://` endpoint's certificate is checked against (Debian's path).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Bucket clusters by Envoy cluster name.
pub type BucketClusters = BTreeMap<String, BucketCluster>;

/// The cluster of a bucket: one per bucket name, so each has its own signing scope.
pub fn cluster_name(bucket: &str) -> String {
    format!("bucket_{bucket}")
}

/// `http(s)://host[:port]` -> (tls, host, port); `None` when it is anything else.
fn parse_endpoint(endpoint: &str) -> Option<(bool, String, u16)> {
    let (tls, rest) = if let Some(r) = endpoint.strip_prefix("https://") {
        (true, r)
    } else {
        (false, endpoint.strip_prefix("http://")?)
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, p.parse().ok()?),
        _ => (rest, if tls { 443 } else { 80 }),
    };
    (!host.is_empty()).then(|| (tls, host.to_ascii_lowercase(), port))
}

/// Turns a bucket of the inputs into the router's action, registering its cluster; errors
/// are reported at `field` and give `None`.
pub fn resolve(
    cx: &mut Ctx<'_>,
    at: &Location,
    field: &str,
    spec: &BucketSpec,
) -> Option<fc::BucketBackend> {
    let Some((tls, host, port)) = parse_endpoint(&spec.endpoint) else {
        cx.fail(
            at,
            format!("{field}.endpoint"),
            ErrorKind::BucketEndpoint(spec.endpoint.clone()),
        );
        return None;
    };
    let default_port = if tls { 443 } else { 80 };
    let authority = if port == default_port {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let cluster = cluster_name(&spec.name);
    let backend = fc::BucketBackend {
        name: spec.name.clone(),
        cluster: cluster.clone(),
        host: authority,
        addressing: spec.addressing,
        prefix: spec.prefix.clone(),
        index_document: spec.index_document.clone(),
        spa_fallback: spec.spa_fallback.clone(),
        not_found_body: spec.not_found_body.clone(),
    };
    // The router checks the rest; report its error here, at the input's field path.
    if let Err(e) = CompiledBucket::compile(field, &backend) {
        let field = e
            .path
            .replace(".cluster", ".name")
            .replace(".host", ".endpoint");
        cx.fail(at, field, ErrorKind::Core(e.kind));
        return None;
    }
    let def = BucketCluster {
        host,
        port,
        tls,
        region: spec.region.clone().unwrap_or_else(|| "us-east-1".into()),
        signing: spec.signing.clone(),
    };
    match cx.buckets.get(&cluster) {
        Some(existing) if *existing != def => {
            cx.fail(
                at,
                field.to_string(),
                ErrorKind::BucketRedefined(spec.name.clone()),
            );
            return None;
        }
        Some(_) => {}
        None => {
            cx.buckets.insert(cluster, def);
        }
    }
    Some(backend)
}

/// The seed's `backend:` of an HTTP rule: a service (`service`, `servicePort`) or a
/// `bucket`. `None` when it is invalid (reported).
pub fn seed_backend(
    cx: &mut Ctx<'_>,
    at: &Location,
    field: &str,
    b: &VhBackend,
) -> Option<(Option<fc::Backend>, Option<fc::BucketBackend>)> {
    match (&b.bucket, b.service.is_empty()) {
        (Some(spec), true) if b.service_port.is_none() => {
            let bucket = resolve(cx, at, &format!("{field}.bucket"), spec)?;
            Some((None, Some(bucket)))
        }
        (Some(_), _) => {
            cx.fail(at, field.to_string(), ErrorKind::ServiceOrBucket);
            None
        }
        (None, _) => {
            let backend = cx.backend(
                at,
                field,
                "service",
                &b.service,
                None,
                b.service_port.as_ref(),
                1,
                "servicePort",
            )?;
            Some((Some(backend), None))
        }
    }
}

/// Whether an HTTPRoute backendRef names a `Bucket`.
pub fn is_bucket_ref(b: &BackendRef) -> bool {
    b.group.as_deref() == Some(BUCKET_GROUP) && b.kind.as_deref() == Some(BUCKET_KIND)
}

/// Resolves a backendRef to a `Bucket`, or gives the ResolvedRefs reason it fails with. A
/// bucket is a rule's only backendRef: the router sends the whole rule there.
pub fn backend_ref(
    cx: &mut Ctx<'_>,
    field: &str,
    route_ns: &str,
    b: &BackendRef,
    refs_in_rule: usize,
) -> Result<fc::BucketBackend, (&'static str, String, String)> {
    if refs_in_rule != 1 {
        return Err((
            "InvalidKind",
            field.to_string(),
            "a Bucket must be the rule's only backendRef (its requests are not split)".into(),
        ));
    }
    if !b.filters.is_empty() {
        return Err((
            "InvalidKind",
            format!("{field}.filters"),
            "a Bucket backendRef takes no filters; put them on the rule".into(),
        ));
    }
    let inputs = cx.inputs;
    let ns = namespace_of(b.namespace.as_deref().or(Some(route_ns))).to_string();
    if ns != route_ns
        && !crate::namespaces::granted(
            inputs,
            route_ns,
            "HTTPRoute",
            &ns,
            BUCKET_GROUP,
            BUCKET_KIND,
            &b.name,
        )
    {
        return Err((
            "RefNotPermitted",
            format!("{field}.namespace"),
            format!(
                "a backendRef to namespace {ns} needs a ReferenceGrant there from HTTPRoutes in {route_ns}"
            ),
        ));
    }
    let Some(found) = inputs.buckets.iter().find(|o| {
        o.value.metadata.name == b.name && namespace_of(o.value.metadata.namespace.as_deref()) == ns
    }) else {
        return Err((
            "BackendNotFound",
            format!("{field}.name"),
            format!("no Bucket named {ns}/{}", b.name),
        ));
    };
    // Errors in the Bucket itself are the Bucket document's, reported there.
    let before = cx.errors.len();
    resolve(cx, &found.at, "spec", &found.value.spec).ok_or_else(|| {
        let why = cx
            .errors
            .get(before)
            .map_or_else(String::new, |e| e.kind.to_string());
        (
            "BackendNotFound",
            format!("{field}.name"),
            format!("Bucket {ns}/{} is invalid: {why}", b.name),
        )
    })
}

/// The Envoy clusters of the buckets.
pub fn clusters(buckets: &BucketClusters) -> Vec<Value> {
    buckets
        .iter()
        .map(|(name, b)| {
            let is_ip = b.host.parse::<std::net::IpAddr>().is_ok();
            let mut c = api::Cluster::new(name, vec![api::socket(&b.host, b.port)]);
            c.connect_timeout = "2s".into();
            if !is_ip {
                c.kind = "STRICT_DNS";
                c.dns_lookup_family = Some("V4_PREFERRED");
            }
            if b.tls {
                let tls = api::UpstreamTlsContext {
                    sni: b.host.clone(),
                    // The store's certificate must chain to the system's CAs and name the
                    // endpoint: signed requests never go to an impostor.
                    common_tls_context: api::CommonTlsContext {
                        validation_context: api::ValidationContext {
                            trusted_ca: api::LocalFile {
                                filename: SYSTEM_CA_BUNDLE.into(),
                            },
                            match_typed_subject_alt_names: vec![api::SanMatcher {
                                san_type: "DNS",
                                matcher: api::StringMatcher::Exact(b.host.clone()),
                            }],
                        },
                    },
                };
                c.transport_socket = Some(api::extension("envoy.transport_sockets.tls", tls));
            }
            if let Some(s) = &b.signing {
                c.typed_extension_protocol_options = Some(signing_options(
                    &b.region,
                    s,
                    Some(api::ExplicitHttpConfig {
                        http_protocol_options: api::Empty {},
                    }),
                ));
            }
            api::value(c)
        })
        .collect()
}

/// The upstream filters of a private bucket's cluster: SigV4 signing, then the codec.
fn signing_options(
    region: &str,
    s: &Signing,
    explicit_http_config: Option<api::ExplicitHttpConfig>,
) -> api::ProtocolOptions {
    let codec = api::extension("envoy.filters.http.upstream_codec", api::UpstreamCodec {});
    api::ProtocolOptions {
        http: api::Typed::new(api::HttpProtocolOptions {
            explicit_http_config,
            http_filters: vec![signing_filter(region, s), api::value(codec)],
        }),
    }
}

/// Envoy's SigV4 filter, as an upstream filter: it runs after the router, on the request
/// the store will receive. The payload is not hashed (a bucket backend only reads).
fn signing_filter(region: &str, s: &Signing) -> Value {
    // Only the source named here: without `custom_credential_provider_chain` Envoy also
    // walks its default chain (instance metadata included) on every refresh.
    let file = s
        .credentials_file
        .as_ref()
        .map(|file| api::CredentialsFileProvider {
            credentials_data_source: api::LocalFile {
                filename: file.clone(),
            },
            profile: s.profile.clone().unwrap_or_else(|| "default".into()),
        });
    let provider = api::CredentialProvider {
        custom_credential_provider_chain: true,
        environment_credential_provider: file.is_none().then_some(api::Empty {}),
        credentials_file_provider: file,
    };
    let signing = api::AwsRequestSigning {
        service_name: "s3",
        region: region.into(),
        use_unsigned_payload: true,
        credential_provider: provider,
        // Headers Envoy adds or changes after signing must stay out of the signature.
        match_excluded_headers: vec![
            api::StringMatcher::Prefix("x-envoy".into()),
            api::StringMatcher::Prefix("x-wasmgate".into()),
            api::StringMatcher::Exact("x-request-id".into()),
        ],
    };
    api::value(api::extension(
        "envoy.filters.http.aws_request_signing",
        signing,
    ))
}

/// Adds the bucket clusters to a generated bootstrap.
pub fn add_clusters(bootstrap: &mut Value, buckets: &BucketClusters) {
    if buckets.is_empty() {
        return;
    }
    if let Some(list) = bootstrap
        .pointer_mut("/static_resources/clusters")
        .and_then(Value::as_array_mut)
    {
        list.extend(clusters(buckets));
    }
}

/// Istio's name of a bucket's cluster: `outbound|PORT||HOST` of its ServiceEntry.
fn istio_cluster(b: &BucketCluster) -> String {
    format!("outbound|{}||{}", b.port, b.host)
}

/// Istio's side of the buckets: a ServiceEntry per store endpoint (with a DestinationRule
/// originating TLS for `https://`), the signing filter patched onto a private bucket's
/// cluster, and the router's bucket clusters renamed to Istio's. The ServiceEntries go
/// first (apply order); `docs` are the manifests `istio::manifests` made.
pub fn add_istio(docs: &mut Vec<Value>, buckets: &BucketClusters, o: &IstioOptions) {
    if buckets.is_empty() {
        return;
    }
    let names: BTreeMap<&str, String> = buckets
        .iter()
        .map(|(name, b)| (name.as_str(), istio_cluster(b)))
        .collect();
    for doc in docs.iter_mut() {
        if doc["kind"] == "WasmPlugin" {
            if let Some(routes) = doc
                .pointer_mut("/spec/pluginConfig/routes")
                .and_then(Value::as_array_mut)
            {
                let rules = routes
                    .iter_mut()
                    .filter_map(|r| r.pointer_mut("/http/rules").and_then(Value::as_array_mut))
                    .flatten();
                for rule in rules {
                    let cluster = rule.pointer_mut("/bucket/cluster");
                    if let Some(c) = cluster {
                        if let Some(new) = c.as_str().and_then(|n| names.get(n)) {
                            *c = Value::String(new.clone());
                        }
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (name, b) in buckets {
        let is_ip = b.host.parse::<std::net::IpAddr>().is_ok();
        let object = format!("wasmgate-{}", name.replace('_', "-"));
        let entry = istio_api::ServiceEntry {
            hosts: vec![b.host.clone()],
            location: "MESH_EXTERNAL",
            resolution: if is_ip { "STATIC" } else { "DNS" },
            // HTTP to the gateway's Envoy, so its router and the signing filter see
            // requests; TLS, when the endpoint has it, is originated below.
            ports: vec![istio_api::http_port(b.port)],
            endpoints: is_ip.then(|| {
                vec![istio_api::WorkloadEntry {
                    address: b.host.clone(),
                    ports: None,
                    labels: None,
                }]
            }),
        };
        out.push(istio_api::manifest(&object, &o.namespace, entry));
        if b.tls {
            let rule = istio_api::DestinationRule {
                host: b.host.clone(),
                traffic_policy: istio_api::TrafficPolicy {
                    tls: istio_api::ClientTls {
                        mode: "SIMPLE",
                        sni: b.host.clone(),
                    },
                },
            };
            out.push(istio_api::manifest(&object, &o.namespace, rule));
        }
        if let Some(s) = &b.signing {
            let options = signing_options(&b.region, s, None);
            let cluster = istio_api::ClusterMatch {
                service: b.host.clone(),
                port_number: b.port,
            };
            let value = api::value(api::ClusterPatch {
                typed_extension_protocol_options: options,
            });
            let filter = istio_api::EnvoyFilter {
                workload_selector: istio_api::WorkloadSelector {
                    labels: o.selector.clone(),
                },
                config_patches: vec![istio_api::merge_patch("CLUSTER", Some(cluster), value)],
            };
            out.push(istio_api::manifest(
                format!("{object}-signing"),
                &o.namespace,
                filter,
            ));
        }
    }
    out.append(docs);
    *docs = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_scheme_host_and_optional_port() {
        let cases = [
            ("http://127.0.0.1:9000", Some((false, "127.0.0.1", 9000))),
            (
                "https://s3.us-east-1.amazonaws.com",
                Some((true, "s3.us-east-1.amazonaws.com", 443)),
            ),
            ("http://Store.Local/", Some((false, "store.local", 80))),
            ("ftp://x", None),
            ("http://", None),
            ("http://a/b", None),
            ("http://a:port", None),
            ("s3.amazonaws.com", None),
        ];
        for (input, want) in cases {
            let got = parse_endpoint(input);
            assert_eq!(got, want.map(|(t, h, p)| (t, h.to_string(), p)), "{input}");
        }
    }

    #[test]
    fn a_private_bucket_cluster_signs_with_envoys_credentials_and_a_public_one_does_not() {
        let mut b = BucketClusters::new();
        b.insert(
            "bucket_a".into(),
            BucketCluster {
                host: "127.0.0.1".into(),
                port: 9000,
                tls: false,
                region: "eu-west-1".into(),
                signing: Some(Signing {
                    credentials_file: Some("/etc/creds".into()),
                    profile: None,
                }),
            },
        );
        b.insert(
            "bucket_b".into(),
            BucketCluster {
                host: "s3.example.com".into(),
                port: 443,
                tls: true,
                region: "us-east-1".into(),
                signing: None,
            },
        );
        let out = clusters(&b);
        let filters = &out[0]["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"];
        let signing = &filters[0]["typed_config"];
        assert_eq!(signing["region"], "eu-west-1");
        assert_eq!(
            signing["credential_provider"]["credentials_file_provider"]["profile"],
            "default"
        );
        assert_eq!(filters[1]["name"], "envoy.filters.http.upstream_codec");
        assert_eq!(out[0]["type"], "STATIC");
        assert!(out[1].get("typed_extension_protocol_options").is_none());
        assert_eq!(out[1]["type"], "STRICT_DNS");
        assert_eq!(
            out[1]["transport_socket"]["typed_config"]["sni"],
            "s3.example.com"
        );
    }
}
