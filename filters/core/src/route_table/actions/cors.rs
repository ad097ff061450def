//! Cross-origin resource sharing as Gateway API's CORS filter defines it (GEP-1767): which
//! origins a rule allows, the answer to a preflight (given by the router, never forwarded),
//! and the headers added to the responses of allowed cross-origin requests.

use std::borrow::Cow;

use crate::config::Cors;
use crate::error::{quote, ConfigError, ConfigErrorKind as K};
use crate::request::RequestView;

/// `access-control-max-age` when the filter does not set `maxAge` (Gateway API's default).
pub const DEFAULT_MAX_AGE: u32 = 5;

/// The request headers CORS reads, beyond `:method`.
pub const CORS_REQUEST_HEADERS: [&str; 3] = [
    "origin",
    "access-control-request-method",
    "access-control-request-headers",
];

#[derive(Debug)]
pub struct CompiledCors {
    origins: Origins,
    credentials: bool,
    methods: Allowed,
    headers: Allowed,
    expose: Option<String>,
    max_age: String,
}

#[derive(Debug)]
enum Origins {
    Any,
    List(Vec<OriginPattern>),
}

#[derive(Debug)]
struct OriginPattern {
    scheme: String,
    /// The host, or with a leading `*` the suffix every matching host ends with (`.a.com`;
    /// empty: any host).
    host: HostPattern,
    port: u16,
}

#[derive(Debug)]
enum HostPattern {
    Exact(String),
    Suffix(String),
}

/// `access-control-allow-methods` / `-headers`: none configured, `*`, or a fixed list.
#[derive(Debug)]
enum Allowed {
    Unset,
    Any,
    List(String),
}

/// A request's origin, lower-cased: scheme, host, port (the scheme's default when absent).
fn parse_origin(origin: &str) -> Option<(&str, &str, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let default_port = match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let after_bracket = rest.rfind(']').map_or(0, |i| i + 1);
    let tail = rest.get(after_bracket..)?;
    let (host, port) = match tail.find(':') {
        Some(c) => {
            let port = tail.get(c + 1..)?.parse::<u16>().ok().filter(|p| *p > 0)?;
            (rest.get(..after_bracket + c)?, port)
        }
        None => (rest, default_port?),
    };
    (!host.is_empty() && !host.contains('/')).then_some((scheme, host, port))
}

impl CompiledCors {
    /// `at` is the rule's path; errors name the field under `.cors`.
    pub fn compile(at: &str, c: &Cors) -> Result<Self, ConfigError> {
        let e = |field: String, kind| ConfigError::new(format!("{at}.cors.{field}"), kind);
        let origins = if c.allow_origins.iter().any(|o| o == "*") {
            if c.allow_origins.len() > 1 {
                return Err(e(
                    "allowOrigins".into(),
                    K::Schema("`*` cannot be listed alongside other origins".into()),
                ));
            }
            Origins::Any
        } else {
            let mut list = Vec::new();
            for (i, o) in c.allow_origins.iter().enumerate() {
                let lower = o.to_ascii_lowercase();
                let parsed =
                    parse_origin(&lower).filter(|(s, _, _)| matches!(*s, "http" | "https"));
                let Some((scheme, host, port)) = parsed else {
                    return Err(e(
                        format!("allowOrigins[{i}]"),
                        K::Schema(format!(
                            "invalid origin {}: expected `*` or http(s)://host[:port]",
                            quote(o)
                        )),
                    ));
                };
                let host = match host.strip_prefix('*') {
                    Some(suffix) if !suffix.contains('*') => HostPattern::Suffix(suffix.into()),
                    None if !host.contains('*') => HostPattern::Exact(host.into()),
                    _ => {
                        return Err(e(
                            format!("allowOrigins[{i}]"),
                            K::Schema(format!(
                                "invalid origin {}: `*` may only start the host",
                                quote(o)
                            )),
                        ))
                    }
                };
                list.push(OriginPattern {
                    scheme: scheme.into(),
                    host,
                    port,
                });
            }
            Origins::List(list)
        };
        let allowed = |field: &str, list: &[String], check: fn(&str) -> bool| {
            if list.iter().any(|m| m == "*") {
                if list.len() > 1 {
                    return Err(e(
                        field.into(),
                        K::Schema("`*` cannot be listed alongside other values".into()),
                    ));
                }
                return Ok(Allowed::Any);
            }
            if let Some((i, bad)) = list.iter().enumerate().find(|(_, v)| !check(v)) {
                return Err(e(format!("{field}[{i}]"), K::InvalidName(bad.clone())));
            }
            Ok(if list.is_empty() {
                Allowed::Unset
            } else {
                Allowed::List(list.join(", "))
            })
        };
        let is_method = |m: &str| !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase());
        let is_header = |h: &str| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        let methods = allowed("allowMethods", &c.allow_methods, is_method)?;
        let headers = allowed("allowHeaders", &c.allow_headers, is_header)?;
        let expose = match allowed("exposeHeaders", &c.expose_headers, is_header)? {
            Allowed::Unset => None,
            Allowed::Any => Some("*".to_string()),
            Allowed::List(l) => Some(l),
        };
        Ok(CompiledCors {
            origins,
            credentials: c.allow_credentials,
            methods,
            headers,
            expose,
            max_age: c.max_age.unwrap_or(DEFAULT_MAX_AGE).to_string(),
        })
    }

    /// Whether `origin` (the request's `Origin` header) may share the response.
    pub fn allows(&self, origin: &[u8]) -> bool {
        let list = match &self.origins {
            Origins::Any => return true,
            Origins::List(list) => list,
        };
        let Ok(origin) = std::str::from_utf8(origin) else {
            return false;
        };
        let lower = origin.to_ascii_lowercase();
        let Some((scheme, host, port)) = parse_origin(&lower) else {
            return false;
        };
        list.iter().any(|p| {
            p.scheme == scheme
                && p.port == port
                && match &p.host {
                    HostPattern::Exact(h) => h == host,
                    HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
                }
        })
    }

    /// `access-control-allow-origin` (and `-credentials`) for an allowed origin.
    fn origin_headers<'t>(&'t self, origin: &str, out: &mut Vec<(&'static str, Cow<'t, str>)>) {
        let value = match (&self.origins, self.credentials) {
            // With credentials a browser refuses `*`: echo the origin instead.
            (Origins::Any, false) => Cow::Borrowed("*"),
            _ => Cow::Owned(origin.to_string()),
        };
        out.push(("access-control-allow-origin", value));
        if self.credentials {
            out.push(("access-control-allow-credentials", Cow::Borrowed("true")));
        }
    }

    /// The headers of the answer to a preflight: none when the origin is not allowed (the
    /// answer is still OK; the browser then refuses the actual request).
    pub fn preflight_headers<'t>(&'t self, req: &RequestView<'_>) -> Vec<(&'t str, Cow<'t, str>)> {
        let mut out = Vec::new();
        let Some(origin) = req.header("origin").filter(|o| self.allows(o)) else {
            return out;
        };
        let Ok(origin) = std::str::from_utf8(origin) else {
            return out;
        };
        self.origin_headers(origin, &mut out);
        let echo = |name: &str| {
            req.header(name)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(|v| Cow::Owned(v.to_string()))
        };
        let list = |a: &'t Allowed, request_header: &str| match a {
            Allowed::Unset => None,
            Allowed::List(l) => Some(Cow::Borrowed(l.as_str())),
            // With credentials `*` is literal to a browser: name what was asked for.
            Allowed::Any if self.credentials => echo(request_header),
            Allowed::Any => Some(Cow::Borrowed("*")),
        };
        if let Some(m) = list(&self.methods, "access-control-request-method") {
            out.push(("access-control-allow-methods", m));
        }
        if let Some(h) = list(&self.headers, "access-control-request-headers") {
            out.push(("access-control-allow-headers", h));
        }
        out.push((
            "access-control-max-age",
            Cow::Borrowed(self.max_age.as_str()),
        ));
        out
    }

    /// Headers added to the response of an actual request from an allowed origin.
    pub fn response_headers<'t>(&'t self, req: &RequestView<'_>) -> Vec<(&'t str, Cow<'t, str>)> {
        let mut out = Vec::new();
        let origin = req
            .header("origin")
            .filter(|o| self.allows(o))
            .and_then(|o| std::str::from_utf8(o).ok());
        if let Some(origin) = origin {
            self.origin_headers(origin, &mut out);
            if let Some(e) = &self.expose {
                out.push(("access-control-expose-headers", Cow::Borrowed(e.as_str())));
            }
        }
        out
    }
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight(req: &RequestView<'_>) -> bool {
    req.method == b"OPTIONS"
        && req.header("origin").is_some()
        && req.header("access-control-request-method").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> CompiledCors {
        let c = Cors {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_credentials: credentials,
            ..Cors::default()
        };
        match CompiledCors::compile("r", &c) {
            Ok(c) => c,
            Err(e) => unreachable!("{e:?}"),
        }
    }

    #[test]
    fn origins_match_scheme_host_and_port_with_leading_wildcards() {
        let c = cors(
            &[
                "https://www.foo.com",
                "https://*.bar.com",
                "http://a.com:8080",
            ],
            false,
        );
        let cases: &[(&str, bool)] = &[
            ("https://www.foo.com", true),
            ("https://WWW.foo.com", true),
            ("https://www.foo.com:443", true),
            ("https://www.foo.com:444", false),
            ("http://www.foo.com", false),
            ("https://foo.com", false),
            ("https://a.bar.com", true),
            ("https://a.b.bar.com", true),
            ("https://bar.com", false),
            ("https://abar.com", false),
            ("http://a.com:8080", true),
            ("http://a.com", false),
            ("null", false),
            ("https://", false),
        ];
        for (origin, want) in cases {
            assert_eq!(c.allows(origin.as_bytes()), *want, "{origin}");
        }
        assert!(!c.allows(b"\xff\xfe"));
        assert!(cors(&["*"], false).allows(b"null"));
        assert!(cors(&["https://*"], false).allows(b"https://anything.example"));
    }

    #[test]
    fn invalid_origins_are_refused_with_their_index() {
        let cases: &[(&[&str], &str)] = &[
            (&["*", "https://a.com"], "r.cors.allowOrigins"),
            (&["https://a.com", "ftp://b.com"], "r.cors.allowOrigins[1]"),
            (&["https://a.*.com"], "r.cors.allowOrigins[0]"),
            (&["a.com"], "r.cors.allowOrigins[0]"),
        ];
        for (origins, path) in cases {
            let c = Cors {
                allow_origins: origins.iter().map(|s| s.to_string()).collect(),
                ..Cors::default()
            };
            match CompiledCors::compile("r", &c) {
                Err(e) => assert_eq!(e.path, *path, "{origins:?}"),
                Ok(_) => unreachable!("{origins:?} accepted"),
            }
        }
    }
}
