//! What a lookup answers: the types the filters and the generator read. A rule's action
//! produces one of these; the adapters turn it into host calls.

use std::borrow::Cow;

use crate::config::NoMatch;

/// What to do with a new TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOutcome<'t> {
    Cluster(&'t str),
    /// A multi-cluster service: the balancer's network root after the router picks.
    Delegate(&'t str),
    NoRoute,
}

/// Where a rule came from in the configuration, for logs and `explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef {
    pub route: usize,
    pub rule: usize,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<'t> {
    Forward(Forward<'t>),
    Reply(Reply<'t>),
    NoMatch(NoMatch),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forward<'t> {
    pub rule: RuleRef,
    pub service: &'t str,
    /// The Envoy cluster; `None` when the service is a multi-cluster service whose member is
    /// chosen by the balancer filter after the router (it reads the service header).
    pub cluster: Option<&'t str>,
    /// New `:authority`, when the rule rewrites the hostname.
    pub authority: Option<Cow<'t, str>>,
    /// New `:path` (query kept), when the rule rewrites the path.
    pub path: Option<String>,
    pub request_headers: HeaderEdits<'t>,
    /// The rule's response edits, then the CORS headers of an allowed cross-origin request.
    pub response_headers: HeaderEdits<'t>,
    /// Edits of the picked backend, applied after the rule's; boxed, as few backends have
    /// any.
    pub backend_headers: Option<Box<BackendEdits<'t>>>,
    /// The value of the policy header (the rule's `policy`); `None` removes the header.
    pub policy: Option<&'t str>,
    /// Sent to a storage bucket: the body of the 404 that replaces the store's 403/404 for a
    /// missing key (see [`crate::route_table::bucket::is_missing_key`]).
    pub bucket_not_found: Option<&'t str>,
}

/// A local reply: the seed's status-code action, a redirect, or an error the router defines
/// (404 for no match, 500 when every backend weight is zero).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<'t> {
    pub rule: Option<RuleRef>,
    pub status: u16,
    /// A rule's `redirect` answered (the `location` header is among `headers`): counted as a
    /// redirect rather than a local reply.
    pub redirect: bool,
    pub headers: Vec<(&'t str, Cow<'t, str>)>,
    pub body: &'t str,
}

/// A backend's own request and response header edits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackendEdits<'t> {
    pub request: HeaderEdits<'t>,
    pub response: HeaderEdits<'t>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderEdits<'t> {
    pub set: Vec<(&'t str, Cow<'t, str>)>,
    pub add: Vec<(&'t str, Cow<'t, str>)>,
    pub remove: &'t [String],
}

impl HeaderEdits<'_> {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// The answer to an `:authority` that is not `host [":" port]`, whatever the routes.
pub const INVALID_AUTHORITY: Reply<'static> = Reply {
    rule: None,
    status: 400,
    redirect: false,
    headers: Vec::new(),
    body: "invalid :authority\n",
};
