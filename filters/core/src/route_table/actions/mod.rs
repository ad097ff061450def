//! What a matched rule does, one module per action: forward to backends ([`forward`]),
//! answer locally ([`reply`]) or redirect ([`redirect`]); with the parts they share: the
//! weighted backends ([`backends`]), header edits ([`header_edits`]) and path rewrites
//! ([`rewrite`]); a storage bucket as the backend ([`bucket`]) and CORS preflights
//! answered by the router ([`cors`]).

pub(crate) mod backends;
pub mod bucket;
pub mod cors;
pub(crate) mod forward;
pub(crate) mod header_edits;
pub(crate) mod redirect;
pub(crate) mod reply;
pub(crate) mod rewrite;

use std::collections::HashMap;

use crate::request::{Random, RequestView};
use crate::template::Captures;

use super::outcome::{Outcome, RuleRef};
use forward::ForwardAction;
use redirect::RedirectAction;
use reply::ReplyAction;

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) at: RuleRef,
    pub(crate) action: Action,
}

/// A rule's one action: the compiler builds exactly one per rule.
#[derive(Debug)]
pub(crate) enum Action {
    /// Boxed, being much the largest.
    Forward(Box<ForwardAction>),
    Reply(ReplyAction),
    Redirect(RedirectAction),
}

/// What an action reads of the request that matched its rule.
pub(crate) struct Matched<'m> {
    pub(crate) req: &'m RequestView<'m>,
    /// The host, lower-case, without the port.
    pub(crate) host: &'m str,
    /// The path without its query string.
    pub(crate) path: &'m [u8],
    pub(crate) query: Option<&'m [u8]>,
    /// Length of the matched prefix, for `ReplacePrefixMatch`.
    pub(crate) prefix_len: usize,
    pub(crate) captures: &'m Captures<'m>,
}

impl CompiledRule {
    /// `listener_ports` maps the proxy's listener ports to the declared ones (redirects).
    pub(crate) fn act<'t>(
        &'t self,
        m: &Matched<'_>,
        listener_ports: &HashMap<u16, u16>,
        rng: &mut dyn Random,
    ) -> Outcome<'t> {
        match &self.action {
            Action::Forward(forward) => forward.act(self.at, m, rng),
            Action::Reply(reply) => reply.act(self.at, m.captures),
            Action::Redirect(redirect) => redirect.act(self.at, m, listener_ports),
        }
    }
}
