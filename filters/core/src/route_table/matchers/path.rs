//! The path matcher: one host's rule matches indexed by path kind, so that a lookup costs
//! one hash probe per path element instead of a scan over every route.
//!
//! A lookup tries, in Gateway API order: the exact path, then matchit patterns, then regular
//! expressions, then path prefixes from the longest. Each list holds its candidates in
//! `Precedence` order, so the first candidate
//! whose other conditions hold wins.

use std::collections::{BTreeSet, HashMap};

use regex_lite::Regex;

use crate::error::{quote, ConfigErrorKind};
use crate::request::RequestView;
use crate::seeded_hash::SeededHashMap;

use super::Candidate;

#[derive(Debug, Default)]
pub(crate) struct PathIndex {
    exact: SeededHashMap<Box<[u8]>, Vec<Candidate>>,
    patterns: Option<matchit::Router<usize>>,
    pattern_candidates: Vec<Vec<Candidate>>,
    pattern_ids: HashMap<String, usize>,
    /// Candidates whose path is a regular expression, tried in order.
    regexes: Vec<Candidate>,
    /// Keyed by the prefix without trailing slashes; `/` is the empty key.
    prefixes: SeededHashMap<Box<[u8]>, Vec<Candidate>>,
}

impl PathIndex {
    pub(crate) fn insert_exact(&mut self, path: &str, cand: Candidate) {
        self.exact
            .entry(path.as_bytes().into())
            .or_default()
            .push(cand);
    }

    /// A prefix matches element-wise: `/foo` matches `/foo`, `/foo/` and `/foo/bar`.
    pub(crate) fn insert_prefix(&mut self, prefix: &str, mut cand: Candidate) {
        let key = trim_trailing_slashes(prefix.as_bytes());
        cand.prefix_len = key.len();
        self.prefixes.entry(key.into()).or_default().push(cand);
    }

    /// `regex` is anchored at both ends.
    pub(crate) fn insert_regex(&mut self, regex: Regex, mut cand: Candidate) {
        cand.path_regex = Some(regex);
        self.regexes.push(cand);
    }

    /// Files the candidate under a matchit pattern; returns the pattern's capture names.
    pub(crate) fn insert_pattern(
        &mut self,
        pattern: &str,
        cand: Candidate,
    ) -> Result<BTreeSet<String>, ConfigErrorKind> {
        let id = match self.pattern_ids.get(pattern) {
            Some(id) => *id,
            None => {
                let router = self.patterns.get_or_insert_with(matchit::Router::new);
                let id = self.pattern_candidates.len();
                router
                    .insert(pattern, id)
                    .map_err(|err| ConfigErrorKind::ConflictingPattern(err.to_string()))?;
                self.pattern_ids.insert(pattern.to_string(), id);
                self.pattern_candidates.push(Vec::new());
                id
            }
        };
        if let Some(list) = self.pattern_candidates.get_mut(id) {
            list.push(cand);
        }
        Ok(pattern_captures(pattern))
    }

    /// Puts every list in precedence order; called once, after the last insert.
    pub(crate) fn sort_by_precedence(&mut self) {
        for list in self
            .exact
            .values_mut()
            .chain(self.prefixes.values_mut())
            .chain(self.pattern_candidates.iter_mut())
            .chain(std::iter::once(&mut self.regexes))
        {
            list.sort_by_key(|c| c.precedence);
        }
    }

    /// The winning candidate for a path (without its query) and its pattern captures.
    pub(crate) fn find<'s, 'p>(
        &'s self,
        path: &'p [u8],
        query: Option<&[u8]>,
        req: &RequestView<'_>,
    ) -> Option<(&'s Candidate, Vec<(&'s str, &'p str)>)> {
        let first = |cands: &'s [Candidate]| cands.iter().find(|c| c.conditions_hold(req, query));
        if let Some(c) = self.exact.get(path).and_then(|cs| first(cs)) {
            return Some((c, Vec::new()));
        }
        let path_str = std::str::from_utf8(path).ok();
        if let (Some(router), Some(p)) = (&self.patterns, path_str) {
            if let Ok(m) = router.at(p) {
                if let Some(c) = self
                    .pattern_candidates
                    .get(*m.value)
                    .and_then(|cs| first(cs))
                {
                    return Some((c, m.params.iter().collect()));
                }
            }
        }
        if let Some(p) = path_str {
            let hit = self
                .regexes
                .iter()
                .find(|c| c.path_regex_matches(p) && c.conditions_hold(req, query));
            if let Some(c) = hit {
                return Some((c, Vec::new()));
            }
        }
        if self.prefixes.is_empty() {
            return None;
        }
        // Element-wise prefixes, longest first: `/a/b/` tries `/a/b`, `/a`, then `/` ("").
        let mut key = trim_trailing_slashes(path);
        loop {
            if let Some(c) = self.prefixes.get(key).and_then(|cs| first(cs)) {
                return Some((c, Vec::new()));
            }
            if key.is_empty() {
                return None;
            }
            let cut = key.iter().rposition(|&b| b == b'/').unwrap_or(0);
            key = trim_trailing_slashes(key.get(..cut).unwrap_or_default());
        }
    }
}

/// A path to match or to write starts with `/`.
pub(crate) fn check_absolute(path: &str) -> Result<(), ConfigErrorKind> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(ConfigErrorKind::InvalidPath(format!(
            "{} must start with `/`",
            quote(path)
        )))
    }
}

/// A path to match (other than a regular expression) is absolute and has no query or
/// fragment: the lookup sees the path without them.
pub(crate) fn check_match_path(path: &str) -> Result<(), ConfigErrorKind> {
    check_absolute(path)?;
    if path.contains('?') || path.contains('#') {
        return Err(ConfigErrorKind::InvalidPath(format!(
            "{} must not contain `?` or `#`",
            quote(path)
        )));
    }
    Ok(())
}

fn trim_trailing_slashes(p: &[u8]) -> &[u8] {
    let end = p.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    p.get(..end).unwrap_or_default()
}

/// Parameter names of a matchit pattern: `{id}` and `{*rest}`.
fn pattern_captures(pattern: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let Some(after) = rest.get(open + 1..) else {
            break;
        };
        let Some(close) = after.find('}') else { break };
        if let Some(name) = after.get(..close) {
            out.insert(name.trim_start_matches('*').to_string());
        }
        rest = after.get(close + 1..).unwrap_or_default();
    }
    out
}
