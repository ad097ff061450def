//! Gateway API's `RequestRedirect`: a 3xx whose `location` is the request's URL with the
//! configured parts replaced.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::route_table::outcome::{Outcome, Reply, RuleRef};

use super::rewrite::{rewrite_path, PathEdit};
use super::Matched;

#[derive(Debug)]
pub(crate) struct RedirectAction {
    pub(crate) status: u16,
    pub(crate) scheme: Option<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) path: Option<PathEdit>,
}

impl RedirectAction {
    pub(crate) fn act<'t>(
        &'t self,
        at: RuleRef,
        m: &Matched<'_>,
        listener_ports: &HashMap<u16, u16>,
    ) -> Outcome<'t> {
        let scheme_in = m.req.header(":scheme").unwrap_or(b"http");
        let scheme_out = match &self.scheme {
            Some(s) => s.as_str(),
            None => std::str::from_utf8(scheme_in).unwrap_or("http"),
        };
        // An explicit scheme implies its well-known port; otherwise keep the request's.
        let port = match (self.port, &self.scheme) {
            (Some(p), _) => Some(p.to_string()),
            (None, Some(_)) => None,
            // Gateway API: the port of the listener, as the user declared it.
            (None, None) => match m.req.listener_port {
                Some(p) => Some(listener_ports.get(&p).unwrap_or(&p).to_string()),
                None => authority_port(m.req.authority).map(str::to_string),
            },
        };
        let mut location = format!(
            "{scheme_out}://{}",
            self.hostname.as_deref().unwrap_or(m.host)
        );
        if let Some(p) = port.filter(|p| !is_default_port(scheme_out, p)) {
            location.push(':');
            location.push_str(&p);
        }
        location.push_str(&rewrite_path(self.path.as_ref(), m, m.query));
        Outcome::Reply(Reply {
            rule: Some(at),
            status: self.status,
            redirect: true,
            headers: vec![("location", Cow::Owned(location))],
            body: "",
        })
    }
}

fn authority_port(authority: &[u8]) -> Option<&str> {
    let after_bracket = authority
        .iter()
        .rposition(|&b| b == b']')
        .map_or(0, |i| i + 1);
    let rest = authority.get(after_bracket..)?;
    let colon = rest.iter().position(|&b| b == b':')?;
    std::str::from_utf8(rest.get(colon + 1..)?)
        .ok()
        .filter(|p| !p.is_empty())
}

fn is_default_port(scheme: &str, port: &str) -> bool {
    matches!((scheme, port), ("http", "80") | ("https", "443"))
}
