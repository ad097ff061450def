//! Forwarding: pick a backend by weight and hand the request on with the rule's edits; or,
//! for a bucket rule, turn the path into an object key on the store's cluster. A CORS
//! preflight is answered here and never forwarded.

use std::borrow::Cow;

use crate::request::Random;
use crate::route_table::bucket::{CompiledBucket, BUCKET_ALLOW};
use crate::route_table::cors::{is_preflight, CompiledCors};
use crate::route_table::outcome::{BackendEdits, Forward, HeaderEdits, Outcome, Reply, RuleRef};
use crate::template::Template;

use super::backends::{CompiledBackends, Picked};
use super::header_edits::CompiledEdits;
use super::rewrite::{rewrite_path, PathEdit};
use super::Matched;

#[derive(Debug)]
pub(crate) struct ForwardAction {
    pub(crate) backends: CompiledBackends,
    pub(crate) authority: Option<Template>,
    pub(crate) path: Option<PathEdit>,
    pub(crate) request: CompiledEdits,
    pub(crate) response: CompiledEdits,
    /// (request, response) edits of each backend, by index.
    pub(crate) backend_edits: Vec<(CompiledEdits, CompiledEdits)>,
    pub(crate) cors: Option<CompiledCors>,
    pub(crate) policy: Option<String>,
    /// A bucket rule: the only target is the bucket's cluster, and the path becomes a key.
    pub(crate) bucket: Option<CompiledBucket>,
}

/// A local reply of a forwarding rule that could not forward.
fn refuse<'t>(
    at: RuleRef,
    status: u16,
    headers: Vec<(&'t str, Cow<'t, str>)>,
    body: &'t str,
) -> Outcome<'t> {
    Outcome::Reply(Reply {
        rule: Some(at),
        status,
        redirect: false,
        headers,
        body,
    })
}

impl ForwardAction {
    pub(crate) fn act<'t>(
        &'t self,
        at: RuleRef,
        m: &Matched<'_>,
        rng: &mut dyn Random,
    ) -> Outcome<'t> {
        let req = m.req;
        if let Some(c) = self.cors.as_ref().filter(|_| is_preflight(req)) {
            // Answered here and never forwarded, allowed origin or not.
            return refuse(at, 200, c.preflight_headers(req), "");
        }
        let mut object_path = None;
        if let Some(b) = &self.bucket {
            if req.method != b"GET" && req.method != b"HEAD" {
                return refuse(
                    at,
                    405,
                    vec![("allow", Cow::Borrowed(BUCKET_ALLOW))],
                    "a bucket serves GET and HEAD only\n",
                );
            }
            let rewritten = self.path.as_ref().map(|e| rewrite_path(Some(e), m, None));
            let asked = rewritten.as_ref().map_or(m.path, |p| p.as_bytes());
            match b.object_path(asked) {
                Ok(p) => object_path = Some(p),
                Err(refusal) => return refuse(at, 400, Vec::new(), refusal.body()),
            }
        }
        let (i, service, cluster) = match self.backends.pick(rng) {
            Picked::Nothing => {
                return refuse(at, 500, Vec::new(), "no backend with a non-zero weight\n")
            }
            Picked::Unresolved => return refuse(at, 500, Vec::new(), "backend not resolved\n"),
            Picked::Target(i, service, cluster) => (i, service, cluster),
        };
        let mut response_headers = self.response.render(m.captures);
        if let Some(c) = &self.cors {
            response_headers.set.extend(c.response_headers(req));
        }
        Outcome::Forward(Forward {
            rule: at,
            service,
            cluster,
            authority: match &self.bucket {
                Some(b) => Some(Cow::Borrowed(b.authority.as_str())),
                None => self.authority.as_ref().map(|t| t.render(m.captures)),
            },
            path: object_path.or_else(|| {
                self.path
                    .as_ref()
                    .map(|e| rewrite_path(Some(e), m, m.query))
            }),
            request_headers: self.request.render(m.captures),
            response_headers,
            backend_headers: self.backend_headers(i, m),
            policy: self.policy.as_deref(),
            bucket_not_found: self.bucket.as_ref().map(|b| b.not_found_body.as_str()),
        })
    }

    /// The picked backend's own edits; a bucket's strip the client's credentials and the
    /// store's identifiers.
    fn backend_headers<'t>(&'t self, i: usize, m: &Matched<'_>) -> Option<Box<BackendEdits<'t>>> {
        match &self.bucket {
            // The client's credentials never reach the store.
            Some(b) => Some(Box::new(BackendEdits {
                request: HeaderEdits {
                    remove: &b.request_strip,
                    ..HeaderEdits::default()
                },
                response: HeaderEdits {
                    remove: &b.response_strip,
                    ..HeaderEdits::default()
                },
            })),
            None => self
                .backend_edits
                .get(i)
                .filter(|(rq, rs)| !rq.is_empty() || !rs.is_empty())
                .map(|(rq, rs)| {
                    Box::new(BackendEdits {
                        request: rq.render(m.captures),
                        response: rs.render(m.captures),
                    })
                }),
        }
    }
}
