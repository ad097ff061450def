//! Generator errors: each names the file, the document and the field path.

use std::fmt;
use std::path::PathBuf;

/// Where in the inputs an error was found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based document index within the file.
    pub document: usize,
    /// `Kind name` of the document, when known.
    pub object: Option<String>,
    /// Field path inside the document, e.g. `spec.routes[0].http.rules[1].backend.servicePort`.
    pub field: String,
}

/// What is wrong at a [`Location`]. The messages are the user's: they say what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    // Reading the inputs.
    #[error("cannot read: {0}")]
    Io(String),
    #[error("invalid YAML: {0}")]
    Yaml(String),
    #[error("{0}")]
    Schema(String),
    #[error("unsupported kind {0:?}")]
    UnknownKind(String),
    #[error("{0} is defined twice")]
    DuplicateObject(String),

    // References between documents.
    #[error("no service named {0:?}")]
    UnknownService(String),
    #[error("no port named {port:?} on service {service}")]
    UnknownPort { service: String, port: String },
    #[error("no cluster in the inventory has endpoints for service {service} port {port}")]
    NoEndpoints { service: String, port: u16 },
    #[error(
        "no multi-cluster service named {0:?}: a DestinationRule tunes a MultiClusterService or ServiceImport"
    )]
    NoMultiClusterService(String),
    #[error("the route attaches to no Gateway; name one of the input's Gateways")]
    NoParentGateway,
    #[error("only Gateway parents (group gateway.networking.k8s.io) are supported")]
    ParentNotGateway,
    #[error("no VirtualHost tcp route for TCP listener port {0}")]
    NoTcpRoute(u16),
    /// A fault Gateway API reports in a route's or listener's status, refused under `--strict`.
    #[error("{0}")]
    StrictFault(String),

    // Multi-cluster services.
    #[error("{0} are given both in spec and in spec.template; give them once")]
    GivenTwice(&'static str),
    #[error("a MultiClusterService needs at least one port")]
    NoServicePort,
    #[error("ServiceImport type {0:?} is not supported: only ClusterSetIP is routed")]
    ImportType(String),
    #[error(
        "multi-cluster service {0} is already routed on another port; one port per multi-cluster service"
    )]
    SecondServicePort(String),
    #[error(
        "no cluster in the inventory matches the selectors of multi-cluster service {service} and has endpoints for port {port}"
    )]
    NoMembers { service: String, port: u16 },
    /// A DestinationRule field wasmgate cannot honour; the text says why.
    #[error("not supported by wasmgate: {0}")]
    PolicyRefused(&'static str),
    #[error("invalid duration {0:?}: a number and ms, s, m or h")]
    PolicyDuration(String),
    #[error("not supported by wasmgate: {0}; the balancer spreads by weight (ROUND_ROBIN)")]
    LoadBalancer(String),
    #[error("give one of httpHeaderName, httpCookie, useSourceIp")]
    AffinityKeys,
    #[error("{0} is not a percentage (0 to 100)")]
    EjectionPercent(u32),

    // Routes and rules.
    #[error("a route needs exactly one of `http` or `tcp`")]
    RouteKind,
    #[error("a backend is either a service or a bucket")]
    ServiceOrBucket,
    #[error("a bucket serves HTTP only")]
    BucketOverTcp,
    #[error("endpoint {0:?}: expected http://host[:port] or https://host[:port]")]
    BucketEndpoint(String),
    #[error("bucket {0:?} is already defined with another endpoint, region or signing")]
    BucketRedefined(String),
    #[error(
        "path modifier type {0:?} needs exactly its own field (replaceFullPath or replacePrefixMatch)"
    )]
    PathModifierShape(String),
    /// `what` (a field, a filter) has no wasmgate equivalent.
    #[error("{0} is not supported by wasmgate")]
    Unsupported(String),
    #[error("filter type {0:?} needs exactly its own configuration field")]
    FilterShape(String),
    #[error("filter {0} needs exactly its own field and may appear once per backendRef")]
    BackendFilterShape(String),
    #[error(
        "filter {0} is not supported on a backendRef by wasmgate: only RequestHeaderModifier and ResponseHeaderModifier are"
    )]
    BackendFilterUnsupported(String),
    #[error(
        "a redirect rule forwards nothing: timeouts, retry, RequestMirror and CORS need backendRefs"
    )]
    RedirectWithPolicy,
    #[error("a rule cannot both redirect and forward to backendRefs")]
    RedirectAndBackends,

    // Gateway API Extended filters.
    #[error(
        "invalid duration {0:?}: expected up to four number-unit pairs, units h, m, s, ms (e.g. 1m30s, 500ms)"
    )]
    Duration(String),
    #[error("backendRequest ({backend_request}) must not be longer than request ({request})")]
    BackendRequestLonger {
        backend_request: String,
        request: String,
    },
    #[error("retry code {0} is outside 400-599")]
    RetryCode(u16),
    #[error(
        "backoff is not supported by wasmgate: Envoy's jittered back-off may retry sooner than the minimum Gateway API requires"
    )]
    RetryBackoff,
    #[error("filter type RequestMirror needs its requestMirror field")]
    MirrorMissing,
    #[error("a mirror to kind {0:?} is not supported: wasmgate mirrors to Services")]
    MirrorKind(String),
    #[error(
        "{0:?} is a multi-cluster service: Envoy mirrors to one cluster, so wasmgate mirrors only to Services"
    )]
    MirrorToMultiCluster(String),
    #[error("cross-namespace mirrors are not supported by wasmgate")]
    CrossNamespaceMirror,
    #[error("give percent or fraction, not both")]
    PercentAndFraction,
    #[error("percent {0} is outside 0-100")]
    Percent(u32),
    #[error("fraction {numerator}/{denominator} must have 0 <= numerator <= denominator, denominator > 0")]
    Fraction { numerator: u32, denominator: u32 },

    /// What filters/core refuses in a piece the generator compiles early (CORS, buckets), so
    /// the error names the input's field.
    #[error("{0}")]
    Core(wasmgate_core::error::ConfigErrorKind),
    /// The compiled filter config was rejected by filters/core.
    #[error("generated filter config is invalid: {0}")]
    FilterConfig(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenError {
    pub at: Location,
    pub kind: ErrorKind,
}

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = &self.at;
        write!(f, "{}", at.file.display())?;
        if at.document > 0 {
            write!(f, ": document {}", at.document)?;
            if let Some(o) = &at.object {
                write!(f, " ({o})")?;
            }
        }
        if !at.field.is_empty() {
            write!(f, ": {}", at.field)?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for GenError {}

/// All errors of one run, reported together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Errors(pub Vec<GenError>);

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}
