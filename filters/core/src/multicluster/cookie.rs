//! Affinity cookies: reading one from `cookie` headers, and issuing one when the service's
//! affinity generates it (Envoy's cookie hash policy with a `ttl`).
//!
//! Header values are bytes: nothing here assumes UTF-8, and an odd `cookie` header (no `=`,
//! quotes, stray separators, several headers) only fails to match.

use crate::request::Random;

/// The largest `ttlSeconds`: 400 days, the cap RFC 6265bis puts on `Max-Age`.
pub const MAX_TTL_SECONDS: u64 = 400 * 24 * 3600;

/// The value of cookie `name` in any `cookie` header (`a=1; b=2`), raw: the first match in
/// header order, whitespace around it trimmed, quotes kept.
pub fn cookie<'a>(headers: &[(&str, &'a [u8])], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .filter(|(n, _)| *n == "cookie")
        .find_map(|&(_, v)| {
            v.split(|&b| b == b';').find_map(|pair| {
                let pair = trim(pair);
                let eq = pair.iter().position(|&b| b == b'=')?;
                let (k, val) = (pair.get(..eq)?, pair.get(eq + 1..)?);
                (trim(k) == name.as_bytes()).then_some(trim(val))
            })
        })
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or_default()
}

/// An RFC 6265 cookie-name: an RFC 9110 token (letters, digits, ``!#$%&'*+-.^_`|~``).
pub fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An RFC 6265 `Path` attribute value that starts with `/`: printable ASCII without `;`.
pub fn is_cookie_path(path: &str) -> bool {
    path.starts_with('/') && path.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b';')
}

/// A fresh affinity key: 128 bits from `rng` as 32 lower-case hex digits (a valid cookie value
/// that needs no quoting).
pub fn new_key(rng: &mut dyn Random) -> String {
    let (hi, lo) = (rng.below(u64::MAX), rng.below(u64::MAX));
    format!("{hi:016x}{lo:016x}")
}

/// How a service issues its affinity cookie, compiled from `{"cookie": {"name", "ttlSeconds",
/// "path"}}`: name, `Max-Age` and `Path` checked at configure time, so the header it writes is
/// always well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieIssuer {
    name: String,
    /// `None`: a session cookie (`ttlSeconds: 0`).
    max_age: Option<u64>,
    path: String,
}

impl CookieIssuer {
    /// `name` must pass [`is_cookie_name`] and `path` [`is_cookie_path`]; the selector's
    /// compile checks both and reports the field.
    pub(crate) fn new(name: &str, ttl_seconds: u64, path: &str) -> Self {
        CookieIssuer {
            name: name.to_string(),
            max_age: (ttl_seconds > 0).then_some(ttl_seconds),
            path: path.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a request with these headers needs a cookie: it has none of that name, or an
    /// empty one.
    pub fn needed(&self, headers: &[(&str, &[u8])]) -> bool {
        cookie(headers, &self.name).is_none_or(<[u8]>::is_empty)
    }

    /// The `set-cookie` value that hands `key` to the client:
    /// `NAME=KEY; Max-Age=N; Path=P; HttpOnly`.
    pub fn set_cookie(&self, key: &str) -> String {
        let mut v = format!("{}={key}", self.name);
        if let Some(n) = self.max_age {
            v.push_str(&format!("; Max-Age={n}"));
        }
        v.push_str(&format!("; Path={}; HttpOnly", self.path));
        v
    }
}
