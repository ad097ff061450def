//! Host patterns and the host index: exact, `*.` wildcard, catch-all.

use std::borrow::Cow;

use crate::seeded_hash::SeededHashMap;

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

/// Why an `:authority` is refused: it is not RFC 3986 `host [":" port]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidAuthority {
    /// `user@host`: HTTP forbids userinfo in `Host` and `:authority` (RFC 9110 4.2.4).
    Userinfo,
    /// No host before the port, or an empty `[]`.
    EmptyHost,
    /// A byte no host can have (outside RFC 3986 `reg-name`, a `,`, or a bad `%` escape).
    HostCharacter,
    /// An IPv6 literal without its closing `]`, or with bytes other than hex digits, `:`, `.`.
    Ipv6Literal,
    /// The text after the host is not `:` followed by 1 to 5 digits up to 65535: a second
    /// colon (`foo.com:80:80`), letters, an empty or out-of-range port.
    Port,
}

impl std::fmt::Display for InvalidAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InvalidAuthority::Userinfo => "userinfo is not allowed",
            InvalidAuthority::EmptyHost => "empty host",
            InvalidAuthority::HostCharacter => "invalid character in host",
            InvalidAuthority::Ipv6Literal => "malformed IPv6 literal",
            InvalidAuthority::Port => "invalid port",
        })
    }
}

/// Parses an `:authority` as RFC 3986 `host [":" port]` and returns the host, lower-cased,
/// without a trailing dot; `[::1]:8080` keeps its brackets. An empty authority (HTTP/1.0
/// without `Host`) is the empty host, which only the catch-all matches. Anything else that is
/// not `host [":" port]` is an error, never a different host: `foo.com:80:80` must not be
/// looked up as `foo.com:80`.
pub fn parse_authority(authority: &[u8]) -> Result<Cow<'_, str>, InvalidAuthority> {
    if authority.is_empty() {
        return Ok(Cow::Borrowed(""));
    }
    let (host, rest) = if authority.first() == Some(&b'[') {
        let end = authority
            .iter()
            .position(|&b| b == b']')
            .ok_or(InvalidAuthority::Ipv6Literal)?;
        let inner = authority.get(1..end).unwrap_or_default();
        if inner.is_empty() {
            return Err(InvalidAuthority::EmptyHost);
        }
        if !inner
            .iter()
            .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(InvalidAuthority::Ipv6Literal);
        }
        (
            authority.get(..=end).unwrap_or_default(),
            authority.get(end + 1..).unwrap_or_default(),
        )
    } else {
        let colon = authority.iter().position(|&b| b == b':');
        let host = colon.map_or(authority, |c| authority.get(..c).unwrap_or_default());
        if authority.contains(&b'@') {
            return Err(InvalidAuthority::Userinfo);
        }
        if host.is_empty() {
            return Err(InvalidAuthority::EmptyHost);
        }
        if !is_reg_name(host) {
            return Err(InvalidAuthority::HostCharacter);
        }
        let rest = colon.map_or(&[][..], |c| authority.get(c..).unwrap_or_default());
        (host, rest)
    };
    if !rest.is_empty() {
        check_port(rest)?;
    }
    let host = match host.strip_suffix(b".") {
        Some(h) if !h.is_empty() => h,
        _ => host,
    };
    // Borrow in the common case of an already lower-case host: no allocation per request.
    if !host.iter().any(u8::is_ascii_uppercase) {
        return std::str::from_utf8(host)
            .map(Cow::Borrowed)
            .map_err(|_| InvalidAuthority::HostCharacter);
    }
    Ok(Cow::Owned(
        host.iter()
            .map(|&b| b.to_ascii_lowercase() as char)
            .collect(),
    ))
}

/// `":" port` with 1 to 5 digits, at most 65535.
fn check_port(rest: &[u8]) -> Result<(), InvalidAuthority> {
    let digits = rest.strip_prefix(b":").ok_or(InvalidAuthority::Port)?;
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(InvalidAuthority::Port);
    }
    let port = digits
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    if port > 65_535 {
        return Err(InvalidAuthority::Port);
    }
    Ok(())
}

/// RFC 3986 `reg-name` (which also covers IPv4 addresses): unreserved characters,
/// sub-delimiters and `%XX` escapes, but no `,`: Envoy joins duplicate `Host` headers with
/// one (`other.example,secure.example`), and a backend may pick either name.
fn is_reg_name(host: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = host.get(i) {
        if b == b'%' {
            let hex = host.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~!$&'()*+;=".contains(&b)) {
            return false;
        }
        i += 1;
    }
    true
}

/// Maps hosts to values of type `T`, and answers a lookup with every pattern that matches,
/// most specific first: exact, then wildcards from the longest suffix to the shortest, then
/// the catch-all.
#[derive(Debug, Clone)]
pub struct HostIndex<T> {
    exact: SeededHashMap<String, T>,
    wildcard: SeededHashMap<String, T>,
    any: Option<T>,
}

impl<T> Default for HostIndex<T> {
    fn default() -> Self {
        HostIndex {
            exact: SeededHashMap::default(),
            wildcard: SeededHashMap::default(),
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
    fn authorities_parse_as_host_and_optional_port() {
        use InvalidAuthority as E;
        let cases: &[(&[u8], Result<&str, E>)] = &[
            (b"Foo.COM", Ok("foo.com")),
            (b"foo.com:8080", Ok("foo.com")),
            (b"foo.com:0", Ok("foo.com")),
            (b"foo.com:65535", Ok("foo.com")),
            (b"foo.com.", Ok("foo.com")),
            (b"foo.com.:80", Ok("foo.com")),
            (b"foo.com..", Ok("foo.com.")),
            (b"127.0.0.1:80", Ok("127.0.0.1")),
            (b"[::1]:80", Ok("[::1]")),
            (b"[2001:DB8::1]", Ok("[2001:db8::1]")),
            (b"a%41b.com", Ok("a%41b.com")),
            (b"", Ok("")),
            (b"foo.com:80:80", Err(E::Port)),
            (b"secure.example:80:80", Err(E::Port)),
            (b"foo.com:", Err(E::Port)),
            (b"foo.com:http", Err(E::Port)),
            (b"foo.com:65536", Err(E::Port)),
            (b"foo.com:000080", Err(E::Port)),
            (b"foo.com: 80", Err(E::Port)),
            (b"[::1]80", Err(E::Port)),
            (b"[::1]:80:80", Err(E::Port)),
            (b":80", Err(E::EmptyHost)),
            (b"[]:80", Err(E::EmptyHost)),
            (b"user@foo.com", Err(E::Userinfo)),
            (b"user:pw@foo.com", Err(E::Userinfo)),
            (b"foo.com:80@evil.com", Err(E::Userinfo)),
            (b"[::1", Err(E::Ipv6Literal)),
            (b"[foo.com]", Err(E::Ipv6Literal)),
            (b"\xff.com", Err(E::HostCharacter)),
            (b"foo com", Err(E::HostCharacter)),
            (b"other.example,secure.example", Err(E::HostCharacter)),
            (b"foo.com/x", Err(E::HostCharacter)),
            (b"a%4.com", Err(E::HostCharacter)),
        ];
        for (input, want) in cases {
            let got = parse_authority(input);
            assert_eq!(
                got.as_deref().map_err(|e| *e),
                want.as_ref().map(|s| *s).map_err(|e| *e),
                "{}",
                String::from_utf8_lossy(input)
            );
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
