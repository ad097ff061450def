//! Scripted upstream clusters: what each cluster answers to proxied requests and `http_call`s.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::headers::HeaderMap;

/// A request as it reaches an upstream cluster.
#[derive(Clone, Debug)]
pub struct UpstreamRequest {
    pub cluster: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// True for `proxy_http_call`, false for proxied downstream requests.
    pub from_http_call: bool,
}

/// A callout a guest started (`proxy_http_call` or `proxy_grpc_call`), as the host sent it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Callout {
    /// `http` or `grpc`.
    pub kind: String,
    pub cluster: String,
    /// HTTP: the request headers (with the `content-length` the host adds); gRPC: the
    /// initial metadata.
    pub headers: Vec<(String, Vec<u8>)>,
    /// HTTP: the body; gRPC: the request message.
    pub body: Vec<u8>,
    pub trailers: Vec<(String, Vec<u8>)>,
    pub timeout_ms: u32,
    /// gRPC only: `service` and `method`.
    pub service: String,
    pub method: String,
}

/// What a cluster answers to a unary gRPC call. Envoy delivers a success (status 0) as
/// `proxy_on_grpc_receive` with the message, anything else as `proxy_on_grpc_close`.
#[derive(Clone, Debug, PartialEq)]
pub struct GrpcReply {
    pub status: u32,
    pub message: String,
    /// The response message (protobuf bytes) of a success.
    pub response: Vec<u8>,
    pub delay: Duration,
}

impl GrpcReply {
    pub fn ok(response: impl Into<Vec<u8>>) -> Self {
        GrpcReply {
            status: 0,
            message: String::new(),
            response: response.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn error(status: u32, message: &str) -> Self {
        GrpcReply {
            status,
            message: message.to_string(),
            response: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What an upstream answers.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamReply {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, Vec<u8>)>,
    /// The connection is reset before any response (Envoy answers 503 downstream; an
    /// `http_call` gets its failure callback).
    pub reset: bool,
    /// Virtual time before the answer arrives.
    pub delay: Duration,
    /// Sizes of the body chunks the response path sees (empty: one chunk).
    pub chunk_sizes: Vec<usize>,
}

impl UpstreamReply {
    pub fn status(status: u16) -> Self {
        UpstreamReply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            trailers: Vec::new(),
            reset: false,
            delay: Duration::ZERO,
            chunk_sizes: Vec::new(),
        }
    }

    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self::status(200).with_body(body)
    }

    pub fn reset() -> Self {
        UpstreamReply {
            reset: true,
            ..Self::status(0)
        }
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    pub fn with_trailer(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.trailers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// Sends the body in several chunks (one `proxy_on_response_body` call each).
    pub fn with_chunks<C: AsRef<[u8]>>(mut self, chunks: impl IntoIterator<Item = C>) -> Self {
        self.body.clear();
        self.chunk_sizes.clear();
        for c in chunks {
            self.body.extend_from_slice(c.as_ref());
            self.chunk_sizes.push(c.as_ref().len());
        }
        self
    }

    /// The body split as the upstream sends it.
    pub(crate) fn chunks(&self) -> Vec<Vec<u8>> {
        if self.chunk_sizes.is_empty() {
            return if self.body.is_empty() {
                Vec::new()
            } else {
                vec![self.body.clone()]
            };
        }
        let mut at = 0;
        let mut out = Vec::new();
        for n in &self.chunk_sizes {
            let end = (at + n).min(self.body.len());
            out.push(self.body[at..end].to_vec());
            at = end;
        }
        out
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Response headers including `:status` (and content-length when there is a body).
    pub(crate) fn header_map(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.add(":status", self.status.to_string());
        for (k, v) in &self.headers {
            h.add(k, v);
        }
        if h.get("content-length").is_none() && self.trailers.is_empty() {
            h.add("content-length", self.body.len().to_string());
        }
        h
    }
}

type ReplyFn = Arc<dyn Fn(&UpstreamRequest) -> UpstreamReply + Send + Sync>;

#[derive(Clone)]
enum Script {
    Fixed(UpstreamReply),
    Func(ReplyFn),
}

/// The cluster manager of the simulated Envoy.
///
/// Without `strict`, every cluster name exists and answers 200 with its own name as a
/// `text/plain` body unless scripted. With `strict`, only named clusters exist: others are unknown (Envoy's
/// router answers 503 / `http_call` returns BadArgument).
#[derive(Clone, Default)]
pub struct Upstreams {
    scripts: HashMap<String, Script>,
    known: BTreeSet<String>,
    strict: bool,
    /// Endpoint address per cluster, served as `upstream.address`.
    addresses: HashMap<String, String>,
    /// Scripted gRPC answers by `cluster`, `cluster/service` or `cluster/service/method`.
    grpc: HashMap<String, GrpcReply>,
}

impl fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstreams")
            .field("known", &self.known)
            .field("strict", &self.strict)
            .finish()
    }
}

impl Upstreams {
    /// Scripts a fixed reply for `cluster` (and declares it).
    pub fn set(&mut self, cluster: &str, reply: UpstreamReply) {
        self.known.insert(cluster.to_string());
        self.scripts
            .insert(cluster.to_string(), Script::Fixed(reply));
    }

    /// Scripts a reply computed from each request.
    pub fn set_fn(
        &mut self,
        cluster: &str,
        f: impl Fn(&UpstreamRequest) -> UpstreamReply + Send + Sync + 'static,
    ) {
        self.known.insert(cluster.to_string());
        self.scripts
            .insert(cluster.to_string(), Script::Func(Arc::new(f)));
    }

    /// Declares clusters that exist (with the default reply) and makes the set strict.
    pub fn declare<S: AsRef<str>>(&mut self, clusters: impl IntoIterator<Item = S>) {
        for c in clusters {
            self.known.insert(c.as_ref().to_string());
        }
        self.strict = true;
    }

    pub fn set_address(&mut self, cluster: &str, address: &str) {
        self.addresses
            .insert(cluster.to_string(), address.to_string());
    }

    /// The endpoint a request to `cluster` connects to. Envoy always knows one; a cluster
    /// without a declared address answers the stand-in `127.0.0.1:0`.
    pub fn address(&self, cluster: &str) -> String {
        self.addresses
            .get(cluster)
            .cloned()
            .unwrap_or_else(|| "127.0.0.1:0".to_string())
    }

    pub fn set_strict(&mut self, strict: bool) {
        self.strict = strict;
    }

    pub fn exists(&self, cluster: &str) -> bool {
        !cluster.is_empty() && (!self.strict || self.known.contains(cluster))
    }

    /// Scripts the answer to unary gRPC calls to `key`: a cluster, `cluster/service` or
    /// `cluster/service/method` (the most specific wins).
    pub fn set_grpc(&mut self, key: &str, reply: GrpcReply) {
        self.grpc.insert(key.to_string(), reply);
    }

    /// The scripted answer to a gRPC call, if any.
    pub fn grpc_reply(&self, cluster: &str, service: &str, method: &str) -> Option<GrpcReply> {
        [
            format!("{cluster}/{service}/{method}"),
            format!("{cluster}/{service}"),
            cluster.to_string(),
        ]
        .iter()
        .find_map(|k| self.grpc.get(k).cloned())
    }

    pub fn reply(&self, req: &UpstreamRequest) -> UpstreamReply {
        match self.scripts.get(&req.cluster) {
            Some(Script::Fixed(r)) => r.clone(),
            Some(Script::Func(f)) => f(req),
            None => UpstreamReply::ok(req.cluster.as_bytes().to_vec())
                .with_header("content-type", "text/plain"),
        }
    }
}
