//! One configured match (path, method, headers, query parameters) into a candidate filed
//! in the host's path index.

use std::collections::BTreeSet;

use crate::config::{HeaderMatchKind, HttpMatch, PathMatchKind, QueryMatchKind};
use crate::error::{ConfigError, ConfigErrorKind as K};
use crate::route_table::matchers::header::HeaderCond;
use crate::route_table::matchers::method::MethodCond;
use crate::route_table::matchers::path::{check_match_path, PathIndex};
use crate::route_table::matchers::query::QueryCond;
use crate::route_table::matchers::value::{anchored, ValueMatch};
use crate::route_table::matchers::Candidate;

use super::checks::check_header_name;
use super::Compiler;

impl Compiler {
    /// Compiles the match `mat` (its field path: `.matches[i]`, or empty for the seed's
    /// `path` shorthand) of the rule at `at`, and files it in `paths`; returns the capture
    /// names its path provides.
    pub(super) fn compile_match(
        &mut self,
        at: &str,
        mat: &str,
        rule: usize,
        m: &HttpMatch,
        paths: &mut PathIndex,
    ) -> Result<BTreeSet<String>, ConfigError> {
        let e = |field: &str, kind| ConfigError::new(format!("{at}{mat}{field}"), kind);
        let method = match &m.method {
            Some(me) => {
                self.needs_method = true;
                Some(MethodCond::parse(me).map_err(|k| e(".method", k))?)
            }
            None => None,
        };
        let mut headers = Vec::new();
        for (i, h) in m.headers.iter().enumerate() {
            let f = format!(".headers[{i}]");
            check_header_name(&h.name).map_err(|k| e(&format!("{f}.name"), k))?;
            let name = h.name.to_ascii_lowercase();
            self.header_names.insert(name.clone());
            let value = || {
                h.value
                    .as_deref()
                    .ok_or_else(|| e(&format!("{f}.value"), K::MissingValue))
            };
            headers.push(match h.kind {
                HeaderMatchKind::Exact => {
                    HeaderCond::Value(name, ValueMatch::Exact(value()?.as_bytes().into()))
                }
                HeaderMatchKind::RegularExpression => HeaderCond::Value(
                    name,
                    ValueMatch::Regex(
                        self.regexes
                            .compile(&anchored(value()?))
                            .map_err(|k| e(&format!("{f}.value"), k))?,
                    ),
                ),
                HeaderMatchKind::Present => HeaderCond::Present(name),
                HeaderMatchKind::Absent => HeaderCond::Absent(name),
            });
        }
        let mut query = Vec::new();
        for (i, q) in m.query_params.iter().enumerate() {
            let f = format!(".queryParams[{i}]");
            if q.name.is_empty() {
                return Err(e(&format!("{f}.name"), K::EmptyName));
            }
            let value = match q.kind {
                QueryMatchKind::Exact => ValueMatch::Exact(q.value.as_bytes().into()),
                QueryMatchKind::RegularExpression => ValueMatch::Regex(
                    self.regexes
                        .compile(&anchored(&q.value))
                        .map_err(|k| e(&format!("{f}.value"), k))?,
                ),
            };
            query.push(QueryCond {
                name: q.name.clone(),
                value,
            });
        }
        let cand = Candidate::new(rule, self.order, method, headers, query);
        self.order += 1;
        // No path matches everything: the prefix `/`.
        let (kind, value) = match &m.path {
            Some(p) => (p.kind, p.value.as_str()),
            None => (PathMatchKind::PathPrefix, "/"),
        };
        let path_field = if mat.is_empty() {
            ".path"
        } else {
            ".path.value"
        };
        if kind != PathMatchKind::RegularExpression {
            check_match_path(value).map_err(|k| e(path_field, k))?;
        }
        match kind {
            PathMatchKind::Exact => paths.insert_exact(value, cand),
            PathMatchKind::PathPrefix => paths.insert_prefix(value, cand),
            PathMatchKind::RegularExpression => {
                let regex = self
                    .regexes
                    .compile(&anchored(value))
                    .map_err(|k| e(path_field, k))?;
                paths.insert_regex(regex, cand);
            }
            PathMatchKind::Pattern => {
                return paths
                    .insert_pattern(value, cand)
                    .map_err(|k| e(path_field, k));
            }
        }
        Ok(BTreeSet::new())
    }
}
