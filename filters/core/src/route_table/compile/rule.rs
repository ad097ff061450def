//! One rule: its matches, then its one action.
//!
//! The schema spreads a rule's action over four optional fields (`backend`/`backends`,
//! `bucket`, `statusCode`, `redirect`). Validation reads them once into a [`RuleAction`]
//! (exactly one, or an error) and checks that the modifiers go with an action that
//! forwards; construction then matches on that enum, so no branch sees a rule with no
//! action or two.

use std::collections::BTreeSet;

use crate::config::{
    BucketBackend, HeaderModifier, HeaderValue, HttpMatch, HttpRule, PathMatch, PathMatchKind,
    PathModifier, PathModifierKind, Redirect, StatusCodeAction,
};
use crate::error::{quote, ConfigError, ConfigErrorKind as K};
use crate::route_table::actions::backends::CompiledBackends;
use crate::route_table::actions::forward::ForwardAction;
use crate::route_table::actions::header_edits::CompiledEdits;
use crate::route_table::actions::redirect::RedirectAction;
use crate::route_table::actions::reply::ReplyAction;
use crate::route_table::actions::rewrite::PathEdit;
use crate::route_table::actions::{Action, CompiledRule};
use crate::route_table::bucket::CompiledBucket;
use crate::route_table::cors::{CompiledCors, CORS_REQUEST_HEADERS};
use crate::route_table::matchers::host::HostPattern;
use crate::route_table::matchers::path::{check_absolute, PathIndex};
use crate::route_table::outcome::RuleRef;
use crate::template::Template;
use crate::weighted::WeightedSet;

use super::backends::{compile_backends, Services};
use super::checks::{check_header_name, check_header_value};
use super::Compiler;

/// The one action a rule configures.
enum RuleAction<'r> {
    /// `backend` or `backends` (which two are exclusive is checked with the backends).
    Backends,
    Bucket(&'r BucketBackend),
    StatusCode(&'r StatusCodeAction),
    Redirect(&'r Redirect),
}

impl<'r> RuleAction<'r> {
    /// Exactly one action field, or an error that counts them.
    fn of(rule: &'r HttpRule) -> Result<Self, K> {
        let backends = rule.backend.is_some() || !rule.backends.is_empty();
        let mut found = [
            backends.then_some(RuleAction::Backends),
            rule.bucket.as_ref().map(RuleAction::Bucket),
            rule.status_code.as_ref().map(RuleAction::StatusCode),
            rule.redirect.as_ref().map(RuleAction::Redirect),
        ]
        .into_iter()
        .flatten();
        match (found.next(), found.next()) {
            (Some(action), None) => Ok(action),
            (None, _) => Err(K::ActionCount(0)),
            (Some(_), Some(_)) => Err(K::ActionCount(2 + found.count())),
        }
    }

    fn forwards(&self) -> bool {
        matches!(self, RuleAction::Backends | RuleAction::Bucket(_))
    }
}

/// The rule being compiled: where its fields are, and what its templates may use.
struct RuleScope<'a> {
    /// The rule's field path, `routes[i].http.rules[j]`.
    at: &'a str,
    /// Captures every match of the rule provides: the only names templates may use.
    captures: BTreeSet<String>,
    /// Whether every match is a path prefix, which `ReplacePrefixMatch` needs.
    all_prefix: bool,
}

impl RuleScope<'_> {
    fn err(&self, field: &str, kind: K) -> ConfigError {
        ConfigError::new(format!("{}{field}", self.at), kind)
    }

    /// Modifiers that mean something only when the rule forwards.
    fn check_modifiers(&self, rule: &HttpRule, action: &RuleAction<'_>) -> Result<(), ConfigError> {
        if action.forwards() {
            return Ok(());
        }
        let given = [
            ("urlRewrite", rule.url_rewrite.is_some()),
            ("requestHeaders", rule.request_headers.is_some()),
            ("cors", rule.cors.is_some()),
            ("policy", rule.policy.is_some()),
        ];
        match given.into_iter().find(|(_, set)| *set) {
            Some((name, _)) => Err(self.err(&format!(".{name}"), K::ModifierWithoutBackend(name))),
            None => Ok(()),
        }
    }

    fn template(&self, field: &str, raw: &str) -> Result<Template, ConfigError> {
        let t = Template::parse(raw).map_err(|k| self.err(field, k))?;
        if let Some(missing) = t.captures().find(|c| !self.captures.contains(*c)) {
            return Err(self.err(field, K::UnknownCapture(missing.to_string())));
        }
        Ok(t)
    }

    fn path_edit(&self, field: &str, m: &PathModifier) -> Result<PathEdit, ConfigError> {
        check_absolute(&m.value).map_err(|k| self.err(field, k))?;
        let t = self.template(&format!("{field}.value"), &m.value)?;
        match m.kind {
            PathModifierKind::ReplaceFullPath => Ok(PathEdit::Full(t)),
            PathModifierKind::ReplacePrefixMatch if self.all_prefix => Ok(PathEdit::Prefix(t)),
            PathModifierKind::ReplacePrefixMatch => {
                Err(self.err(field, K::PrefixRewriteWithoutPrefix))
            }
        }
    }

    /// A list of headers to write, at `list_field` (`.requestHeaders.set`, ...).
    fn header_values(
        &self,
        list_field: &str,
        list: &[HeaderValue],
    ) -> Result<Vec<(String, Template)>, ConfigError> {
        list.iter()
            .enumerate()
            .map(|(i, hv)| {
                let f = format!("{list_field}[{i}]");
                check_header_name(&hv.name).map_err(|k| self.err(&format!("{f}.name"), k))?;
                check_header_value(&hv.value).map_err(|k| self.err(&format!("{f}.value"), k))?;
                Ok((
                    hv.name.to_ascii_lowercase(),
                    self.template(&format!("{f}.value"), &hv.value)?,
                ))
            })
            .collect()
    }

    fn edits(&self, field: &str, m: Option<&HeaderModifier>) -> Result<CompiledEdits, ConfigError> {
        let Some(m) = m else {
            return Ok(CompiledEdits::default());
        };
        let remove = m
            .remove
            .iter()
            .enumerate()
            .map(|(i, n)| {
                check_header_name(n).map_err(|k| self.err(&format!("{field}.remove[{i}]"), k))?;
                Ok(n.to_ascii_lowercase())
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(CompiledEdits {
            set: self.header_values(&format!("{field}.set"), &m.set)?,
            add: self.header_values(&format!("{field}.add"), &m.add)?,
            remove,
        })
    }

    /// `urlRewrite.hostname`: a host name, or a template that renders one.
    fn rewritten_host(&self, host: &str) -> Result<Template, ConfigError> {
        let t = self.template(".urlRewrite.hostname", host)?;
        if t.captures().next().is_none()
            && !matches!(HostPattern::parse(host), Ok(HostPattern::Exact(_)))
        {
            return Err(self.err(".urlRewrite.hostname", K::InvalidHost(host.to_string())));
        }
        Ok(t)
    }
}

impl Compiler {
    pub(super) fn compile_rule(
        &mut self,
        at: &str,
        rref: RuleRef,
        rule: &HttpRule,
        services: &Services,
        paths: &mut PathIndex,
    ) -> Result<(), ConfigError> {
        let scope = self.compile_matches(at, rule, paths)?;
        let action = RuleAction::of(rule).map_err(|k| scope.err("", k))?;
        scope.check_modifiers(rule, &action)?;
        let action = match action {
            RuleAction::StatusCode(sc) => {
                Action::Reply(reply(&scope, sc, rule.response_headers.as_ref())?)
            }
            RuleAction::Redirect(r) => Action::Redirect(self.redirect(&scope, r)?),
            RuleAction::Backends => {
                Action::Forward(Box::new(self.forward(&scope, rule, None, services)?))
            }
            RuleAction::Bucket(b) => {
                Action::Forward(Box::new(self.forward(&scope, rule, Some(b), services)?))
            }
        };
        self.rules.push(CompiledRule { at: rref, action });
        Ok(())
    }

    /// Files the rule's matches in `paths`; returns the scope its action compiles in.
    fn compile_matches<'a>(
        &mut self,
        at: &'a str,
        rule: &HttpRule,
        paths: &mut PathIndex,
    ) -> Result<RuleScope<'a>, ConfigError> {
        if rule.path.is_some() && !rule.matches.is_empty() {
            return Err(ConfigError::new(at, K::Exclusive("path", "matches")));
        }
        // The seed's `path` is a prefix; no path at all matches everything (prefix `/`).
        let shorthand;
        let matches: &[HttpMatch] = match (&rule.path, rule.matches.is_empty()) {
            (Some(p), _) => {
                shorthand = [HttpMatch {
                    path: Some(PathMatch {
                        kind: PathMatchKind::PathPrefix,
                        value: p.clone(),
                    }),
                    ..HttpMatch::default()
                }];
                &shorthand
            }
            (None, true) => {
                shorthand = [HttpMatch::default()];
                &shorthand
            }
            (None, false) => &rule.matches,
        };
        let rule_index = self.rules.len();
        let mut common_caps: Option<BTreeSet<String>> = None;
        let mut all_prefix = true;
        for (mi, m) in matches.iter().enumerate() {
            let mat = if rule.path.is_some() {
                String::new()
            } else {
                format!(".matches[{mi}]")
            };
            let caps = self.compile_match(at, &mat, rule_index, m, paths)?;
            all_prefix &= m
                .path
                .as_ref()
                .is_none_or(|p| p.kind == PathMatchKind::PathPrefix);
            common_caps = Some(match common_caps {
                None => caps,
                Some(c) => c.intersection(&caps).cloned().collect(),
            });
        }
        Ok(RuleScope {
            at,
            captures: common_caps.unwrap_or_default(),
            all_prefix,
        })
    }

    fn redirect(
        &mut self,
        scope: &RuleScope<'_>,
        r: &Redirect,
    ) -> Result<RedirectAction, ConfigError> {
        let status = r.status_code.unwrap_or(302);
        if ![301, 302, 303, 307, 308].contains(&status) {
            return Err(scope.err(".redirect.statusCode", K::InvalidRedirectCode(status)));
        }
        if let Some(h) = &r.hostname {
            if !matches!(HostPattern::parse(h), Ok(HostPattern::Exact(_))) {
                return Err(scope.err(".redirect.hostname", K::InvalidHost(h.clone())));
            }
        }
        if let Some(s) = &r.scheme {
            if !matches!(s.as_str(), "http" | "https") {
                return Err(scope.err(
                    ".redirect.scheme",
                    K::Schema(format!(
                        "unsupported scheme {}: expected http or https",
                        quote(s)
                    )),
                ));
            }
        }
        // The location is built from the request's scheme and, without a port or a scheme
        // here, the listener's port.
        self.header_names.insert(":scheme".into());
        self.needs_listener_port |= r.port.is_none() && r.scheme.is_none();
        Ok(RedirectAction {
            status,
            scheme: r.scheme.clone(),
            hostname: r.hostname.clone(),
            port: r.port,
            path: r
                .path
                .as_ref()
                .map(|p| scope.path_edit(".redirect.path", p))
                .transpose()?,
        })
    }

    /// A rule that forwards: to its backends, or to the bucket when `bucket` is given.
    fn forward(
        &mut self,
        scope: &RuleScope<'_>,
        rule: &HttpRule,
        bucket: Option<&BucketBackend>,
        services: &Services,
    ) -> Result<ForwardAction, ConfigError> {
        let bucket = bucket
            .map(|b| CompiledBucket::compile(&format!("{}.bucket", scope.at), b))
            .transpose()?;
        let backends = match &bucket {
            Some(b) => self.bucket_target(scope, rule, b)?,
            None => compile_backends(
                scope.at,
                rule.backend.as_ref(),
                &rule.backends,
                rule.unresolved_weight,
                services,
            )?,
        };
        let rewrite = rule.url_rewrite.as_ref();
        let authority = rewrite
            .and_then(|r| r.hostname.as_deref())
            .map(|h| scope.rewritten_host(h))
            .transpose()?;
        let backend_edits = rule
            .backend
            .iter()
            .map(|b| (".backend".to_string(), b))
            .chain(
                rule.backends
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (format!(".backends[{i}]"), b)),
            )
            .map(|(f, b)| {
                Ok((
                    scope.edits(&format!("{f}.requestHeaders"), b.request_headers.as_ref())?,
                    scope.edits(&format!("{f}.responseHeaders"), b.response_headers.as_ref())?,
                ))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let cors = rule
            .cors
            .as_ref()
            .map(|c| CompiledCors::compile(scope.at, c))
            .transpose()?;
        if cors.is_some() {
            self.needs_method = true;
            self.header_names
                .extend(CORS_REQUEST_HEADERS.iter().map(|h| h.to_string()));
        }
        if let Some(p) = &rule.policy {
            check_header_value(p).map_err(|k| scope.err(".policy", k))?;
            if p.is_empty() {
                return Err(scope.err(".policy", K::EmptyName));
            }
            self.has_policies = true;
        }
        Ok(ForwardAction {
            backends,
            authority,
            path: rewrite
                .and_then(|r| r.path.as_ref())
                .map(|p| scope.path_edit(".urlRewrite.path", p))
                .transpose()?,
            request: scope.edits(".requestHeaders", rule.request_headers.as_ref())?,
            response: scope.edits(".responseHeaders", rule.response_headers.as_ref())?,
            backend_edits,
            cors,
            policy: rule.policy.clone(),
            bucket,
        })
    }

    /// A bucket's one target, its cluster. The store's host is what the signature and the
    /// store check, so the rule cannot rewrite it; and a bucket is never unresolved.
    fn bucket_target(
        &mut self,
        scope: &RuleScope<'_>,
        rule: &HttpRule,
        b: &CompiledBucket,
    ) -> Result<CompiledBackends, ConfigError> {
        if rule
            .url_rewrite
            .as_ref()
            .is_some_and(|r| r.hostname.is_some())
        {
            return Err(scope.err(
                ".urlRewrite.hostname",
                K::Exclusive("bucket", "urlRewrite.hostname"),
            ));
        }
        if rule.unresolved_weight > 0 {
            return Err(scope.err(
                ".unresolvedWeight",
                K::Exclusive("bucket", "unresolvedWeight"),
            ));
        }
        // A bucket serves GET and HEAD only.
        self.needs_method = true;
        Ok(CompiledBackends {
            targets: vec![(b.name.clone(), Some(b.cluster.clone()))],
            weights: WeightedSet::new([1]),
        })
    }
}

/// The seed's status-code action. Response header edits on a local reply apply to that
/// reply (set, then add).
fn reply(
    scope: &RuleScope<'_>,
    sc: &StatusCodeAction,
    response: Option<&HeaderModifier>,
) -> Result<ReplyAction, ConfigError> {
    if !(200..=599).contains(&sc.code) {
        return Err(scope.err(".statusCode.code", K::InvalidStatusCode(sc.code)));
    }
    let mut headers = scope.header_values(".statusCode.headers", &sc.headers)?;
    if response.is_some() {
        let extra = scope.edits(".responseHeaders", response)?;
        headers.extend(extra.set);
        headers.extend(extra.add);
    }
    Ok(ReplyAction {
        status: sc.code,
        headers,
        body: sc.body.clone().unwrap_or_default(),
    })
}
