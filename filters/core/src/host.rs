//! Host patterns and the host index: exact, `*.` wildcard, catch-all.

use std::borrow::Cow;

use crate::fxhash::FxHashMap;

use crate::error::ConfigErrorKind;

/// A parsed host pattern, normalised to lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    Exact(String),
    /// Stores the suffix including its leading dot: `*.foo.com` -> `.foo.com`.
    Wildcard(String),
    Any,
}

impl HostPattern {
    pub fn parse(raw: &str) -> Result<Self, ConfigErrorKind> {
        let host = raw.trim().to_ascii_lowercase();
        if host.is_empty() || host == "*" {
            return Ok(HostPattern::Any);
        }
        let invalid = || ConfigErrorKind::InvalidHost(raw.to_string());
        // A fully qualified name may end in a dot; requests are compared without it.
        let host = host.strip_suffix('.').unwrap_or(&host);
        if let Some(rest) = host.strip_prefix("*.") {
            if !is_dns_name(rest) {
                return Err(invalid());
            }
            return Ok(HostPattern::Wildcard(format!(".{rest}")));
        }
        if !is_dns_name(host) {
            return Err(invalid());
        }
        Ok(HostPattern::Exact(host.to_string()))
    }
}

/// Letters, digits, `-` and `_` in dot-separated non-empty labels (IP literals pass too).
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Lower-cases an `:authority` value and drops its port (and a trailing dot).
/// `[::1]:8080` keeps its brackets. Returns `None` for bytes no host can have.
pub fn normalize_authority(authority: &[u8]) -> Option<Cow<'_, str>> {
    let host = if authority.first() == Some(&b'[') {
        let end = authority.iter().position(|&b| b == b']')?;
        authority.get(..=end)?
    } else {
        match authority.iter().rposition(|&b| b == b':') {
            Some(colon) => authority.get(..colon)?,
            None => authority,
        }
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    if !host.is_ascii() {
        return None;
    }
    // Borrow in the common case of an already lower-case host: no allocation per request.
    if !host.iter().any(u8::is_ascii_uppercase) {
        return std::str::from_utf8(host).ok().map(Cow::Borrowed);
    }
    let mut s = String::with_capacity(host.len());
    for &b in host {
        s.push(b.to_ascii_lowercase() as char);
    }
    Some(Cow::Owned(s))
}

/// Maps hosts to values of type `T`, and answers a lookup with every pattern that matches,
/// most specific first: exact, then wildcards from the longest suffix to the shortest, then
/// the catch-all.
#[derive(Debug, Clone)]
pub struct HostIndex<T> {
    exact: FxHashMap<String, T>,
    wildcard: FxHashMap<String, T>,
    any: Option<T>,
}

impl<T> Default for HostIndex<T> {
    fn default() -> Self {
        HostIndex {
            exact: FxHashMap::default(),
            wildcard: FxHashMap::default(),
            any: None,
        }
    }
}

impl<T> HostIndex<T> {
    /// Inserts a pattern; returns false if it is already present.
    pub fn insert(&mut self, pattern: HostPattern, value: T) -> bool {
        let slot = match pattern {
            HostPattern::Exact(h) => self.exact.entry(h),
            HostPattern::Wildcard(s) => self.wildcard.entry(s),
            HostPattern::Any => {
                if self.any.is_some() {
                    return false;
                }
                self.any = Some(value);
                return true;
            }
        };
        match slot {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(value);
                true
            }
        }
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len() + usize::from(self.any.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `visit` on each matching value, most specific first, until it returns `Some`.
    pub fn find_map<'a, R>(
        &'a self,
        host: &str,
        mut visit: impl FnMut(&'a T) -> Option<R>,
    ) -> Option<R> {
        if let Some(v) = self.exact.get(host) {
            if let Some(r) = visit(v) {
                return Some(r);
            }
        }
        if !self.wildcard.is_empty() {
            // A wildcard needs at least one label before its suffix, so skip a leading dot.
            for (i, _) in host.match_indices('.').filter(|&(i, _)| i > 0) {
                if let Some(v) = host.get(i..).and_then(|suffix| self.wildcard.get(suffix)) {
                    if let Some(r) = visit(v) {
                        return Some(r);
                    }
                }
            }
        }
        self.any.as_ref().and_then(visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_normalization() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"Foo.COM", Some("foo.com")),
            (b"foo.com:8080", Some("foo.com")),
            (b"foo.com.", Some("foo.com")),
            (b"[::1]:80", Some("[::1]")),
            (b"", Some("")),
            (b"\xff.com", None),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_authority(input).as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn lookup_order_is_exact_then_longest_wildcard_then_any() {
        let mut idx = HostIndex::default();
        for (p, v) in [
            ("a.b.example.com", 1),
            ("*.b.example.com", 2),
            ("*.example.com", 3),
            ("*", 4),
        ] {
            assert!(idx.insert(HostPattern::parse(p).unwrap(), v));
        }
        let mut seen = vec![];
        idx.find_map::<()>("a.b.example.com", |v| {
            seen.push(*v);
            None
        });
        assert_eq!(seen, [1, 2, 3, 4]);
        let mut seen = vec![];
        idx.find_map::<()>("example.com", |v| {
            seen.push(*v);
            None
        });
        assert_eq!(seen, [4], "a wildcard never matches its own suffix");
    }

    #[test]
    fn invalid_hosts_are_rejected() {
        for bad in ["foo..com", "*foo.com", "foo.*.com", "fo o.com", "*."] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
