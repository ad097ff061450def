//! Storage-bucket backends: request path -> object key -> the path and `:authority` the
//! store is asked for, read-only, without any way out of the configured prefix.
//!
//! A key is built from the *decoded* request path, so `%2e%2e`, `%2F` and `/../` are judged
//! by what they mean, not by how they are spelled; a dot segment is refused rather than
//! resolved (a store on a file system might resolve it, S3 would not, and a client never
//! needs it). The key is then encoded the way SigV4 canonical URIs expect (RFC 3986
//! unreserved bytes and `/` kept, everything else `%XX`), so what Envoy signs and what the
//! store checks are the same bytes.

use crate::config::{BucketAddressing, BucketBackend};
use crate::error::{quote, ConfigError, ConfigErrorKind as K};
use crate::route_table::matchers::host::{parse_authority, HostPattern};

/// Request headers a client must not pass to the store: its own credentials or signature
/// parts would be signed over (or replace) the proxy's.
pub const BUCKET_REQUEST_STRIP: &[&str] = &[
    "authorization",
    "x-amz-security-token",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-user-agent",
];

/// Response headers of the store that only describe the store.
pub const BUCKET_RESPONSE_STRIP: &[&str] = &["x-amz-request-id", "x-amz-id-2"];

/// The methods a bucket serves; the `allow` header of the 405 for any other.
pub const BUCKET_ALLOW: &str = "GET, HEAD";

/// The default body of the 404 for a key the store does not have.
pub const BUCKET_NOT_FOUND_BODY: &str = "not found\n";

/// A bucket backend, checked and ready for requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledBucket {
    pub name: String,
    pub cluster: String,
    /// `:authority` sent to the store.
    pub authority: String,
    /// `/<bucket>/` (path style) or `/` (virtual-hosted), before the key.
    path_base: String,
    /// Ends in `/` unless empty.
    key_prefix: String,
    index_document: String,
    spa_fallback: Option<String>,
    pub not_found_body: String,
    pub request_strip: Vec<String>,
    pub response_strip: Vec<String>,
}

/// Why a request path names no key of the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Not a path starting with `/`.
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    BadEncoding,
    /// A `.` or `..` segment, however encoded.
    DotSegment,
    /// A control byte (NUL, CR, LF, ...) once decoded.
    ControlByte,
}

impl KeyRefusal {
    /// The body of the 400 answered for it.
    pub fn body(self) -> &'static str {
        match self {
            KeyRefusal::NotAbsolute => "invalid object path: must start with /\n",
            KeyRefusal::BadEncoding => "invalid object path: bad percent-encoding\n",
            KeyRefusal::DotSegment => "invalid object path: `.` and `..` segments are refused\n",
            KeyRefusal::ControlByte => "invalid object path: control characters are refused\n",
        }
    }
}

/// Whether the store's answer means "no such key" (S3 answers 403 instead of 404 to a
/// client that may not list the bucket).
pub fn is_missing_key(status: u16) -> bool {
    status == 403 || status == 404
}

impl CompiledBucket {
    /// Checks a bucket backend; `at` is the field path of the `bucket` object.
    pub fn compile(at: &str, b: &BucketBackend) -> Result<Self, ConfigError> {
        let e = |field: &str, kind| ConfigError::new(format!("{at}.{field}"), kind);
        if !is_bucket_name(&b.name) {
            return Err(e(
                "name",
                K::InvalidName(format!(
                    "{}: a bucket name is 3-63 of a-z, 0-9, `.` and `-`, starting and \
                     ending with a letter or digit",
                    b.name
                )),
            ));
        }
        if b.cluster.is_empty() {
            return Err(e("cluster", K::EmptyName));
        }
        let host_ok = parse_authority(b.host.as_bytes())
            .ok()
            .is_some_and(|h| matches!(HostPattern::parse(&h), Ok(HostPattern::Exact(_))));
        if !host_ok {
            return Err(e("host", K::InvalidHost(b.host.clone())));
        }
        let (authority, path_base) = match b.addressing {
            BucketAddressing::Path => (b.host.to_ascii_lowercase(), format!("/{}/", b.name)),
            BucketAddressing::VirtualHosted => (
                format!("{}.{}", b.name, b.host.to_ascii_lowercase()),
                "/".to_string(),
            ),
        };
        let mut key_prefix = check_key(&b.prefix).map_err(|m| e("prefix", K::InvalidPath(m)))?;
        if !key_prefix.is_empty() && !key_prefix.ends_with('/') {
            key_prefix.push('/');
        }
        // `indexDocument` and `spaFallback` each name one object, never a folder.
        let object = |field: &str, d: &str| -> Result<String, ConfigError> {
            let d = check_key(d).map_err(|m| e(field, K::InvalidPath(m)))?;
            if d.is_empty() || d.ends_with('/') {
                return Err(e(
                    field,
                    K::InvalidPath("must name an object, not a folder".into()),
                ));
            }
            Ok(d)
        };
        let index_document = match &b.index_document {
            Some(d) => object("indexDocument", d)?,
            None => "index.html".to_string(),
        };
        let spa_fallback = b
            .spa_fallback
            .as_deref()
            .map(|d| object("spaFallback", d))
            .transpose()?;
        Ok(CompiledBucket {
            name: b.name.clone(),
            cluster: b.cluster.clone(),
            authority,
            path_base,
            key_prefix,
            index_document,
            spa_fallback,
            not_found_body: b
                .not_found_body
                .clone()
                .unwrap_or_else(|| BUCKET_NOT_FOUND_BODY.to_string()),
            request_strip: BUCKET_REQUEST_STRIP.iter().map(|h| h.to_string()).collect(),
            response_strip: BUCKET_RESPONSE_STRIP
                .iter()
                .map(|h| h.to_string())
                .collect(),
        })
    }

    /// The object key a request path (without its query) names.
    pub fn key(&self, path: &[u8]) -> Result<String, KeyRefusal> {
        let rest = match path.split_first() {
            Some((b'/', rest)) => rest,
            _ => return Err(KeyRefusal::NotAbsolute),
        };
        let decoded = percent_decode(rest)?;
        if decoded.iter().any(|&b| b < 0x20 || b == 0x7f) {
            return Err(KeyRefusal::ControlByte);
        }
        if decoded
            .split(|&b| b == b'/')
            .any(|seg| seg == b"." || seg == b"..")
        {
            return Err(KeyRefusal::DotSegment);
        }
        // Keys are bytes to the store; a non-UTF-8 path still names exactly one key, which
        // the encoding below spells byte for byte.
        let relative = String::from_utf8_lossy(&decoded);
        let last = relative.rsplit('/').next().unwrap_or_default();
        let mut key = self.key_prefix.clone();
        if relative.is_empty() || relative.ends_with('/') {
            key.push_str(&relative);
            key.push_str(&self.index_document);
        } else if let Some(fallback) = self.spa_fallback.as_ref().filter(|_| !last.contains('.')) {
            key.push_str(fallback);
        } else {
            key.push_str(&relative);
        }
        Ok(key)
    }

    /// The `:path` the store is asked for: the addressing's base, then the key encoded as in
    /// a SigV4 canonical URI. No query: S3 reads subresources (`?acl`, `?list-type=2`) from
    /// it, and a static site has no use for them.
    pub fn object_path(&self, path: &[u8]) -> Result<String, KeyRefusal> {
        let key = self.key(path)?;
        let mut out = String::with_capacity(self.path_base.len() + key.len() + 8);
        out.push_str(&self.path_base);
        encode_key(&key, &mut out);
        Ok(out)
    }
}

fn is_bucket_name(n: &str) -> bool {
    let b = n.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && !n.contains("..")
}

/// A configured key part (prefix, index, fallback): relative, no dot segments, no control
/// characters. Returns it unchanged.
fn check_key(k: &str) -> Result<String, String> {
    if k.starts_with('/') {
        return Err(format!("{} must not start with `/`", quote(k)));
    }
    if k.split('/').any(|s| s == "." || s == "..") {
        return Err(format!(
            "{} must not contain `.` or `..` segments",
            quote(k)
        ));
    }
    if k.chars().any(char::is_control) {
        return Err(format!("{} must not contain control characters", quote(k)));
    }
    Ok(k.to_string())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(s: &[u8]) -> Result<Vec<u8>, KeyRefusal> {
    let mut out = Vec::with_capacity(s.len());
    let mut it = s.iter();
    while let Some(&b) = it.next() {
        if b == b'%' {
            let hi = it.next().and_then(|&h| hex(h));
            let lo = it.next().and_then(|&l| hex(l));
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(KeyRefusal::BadEncoding),
            }
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

/// SigV4's URI encoding of an S3 key: unreserved bytes and `/` as they are, the rest `%XX`.
fn encode_key(key: &str, out: &mut String) {
    use std::fmt::Write;
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(addressing: BucketAddressing, prefix: &str, spa: Option<&str>) -> CompiledBucket {
        CompiledBucket::compile(
            "bucket",
            &BucketBackend {
                name: "site".into(),
                cluster: "store".into(),
                host: "s3.example.com:9000".into(),
                addressing,
                prefix: prefix.into(),
                index_document: None,
                spa_fallback: spa.map(str::to_string),
                not_found_body: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn object_paths_keep_every_key_under_the_prefix() {
        use KeyRefusal::*;
        let path = bucket(BucketAddressing::Path, "www", Some("index.html"));
        let plain = bucket(BucketAddressing::Path, "", None);
        let cases: &[(&CompiledBucket, &str, Result<&str, KeyRefusal>)] = &[
            (&path, "/", Ok("/site/www/index.html")),
            (&path, "/docs/", Ok("/site/www/docs/index.html")),
            (&path, "/app.js", Ok("/site/www/app.js")),
            (&path, "/users/42", Ok("/site/www/index.html")),
            (&path, "/a%20b.txt", Ok("/site/www/a%20b.txt")),
            (&path, "/caf%C3%A9.css", Ok("/site/www/caf%C3%A9.css")),
            (&path, "/x+y=z.txt", Ok("/site/www/x%2By%3Dz.txt")),
            (&path, "/a%2Fb.txt", Ok("/site/www/a/b.txt")),
            (&path, "/../secret.txt", Err(DotSegment)),
            (&path, "/a/../../secret.txt", Err(DotSegment)),
            (&path, "/%2e%2e/secret.txt", Err(DotSegment)),
            (&path, "/%2E%2E%2Fsecret.txt", Err(DotSegment)),
            (&path, "/a/%2e/b.txt", Err(DotSegment)),
            (&path, "/a/..", Err(DotSegment)),
            (&path, "/..%2f", Err(DotSegment)),
            (&path, "/%zz", Err(BadEncoding)),
            (&path, "/%4", Err(BadEncoding)),
            (&path, "/a%00.txt", Err(ControlByte)),
            (&path, "/a%0d%0a.txt", Err(ControlByte)),
            (&path, "relative", Err(NotAbsolute)),
            (&path, "", Err(NotAbsolute)),
            (&plain, "/", Ok("/site/index.html")),
            (&plain, "/users/42", Ok("/site/users/42")),
            (&plain, "/...txt", Ok("/site/...txt")),
            (&plain, "/a..b", Ok("/site/a..b")),
        ];
        for (b, input, want) in cases {
            let got = b.object_path(input.as_bytes());
            assert_eq!(got.as_deref(), want.as_ref().map(|s| *s), "{input}");
        }
    }

    #[test]
    fn virtual_hosted_addressing_names_the_bucket_in_the_host() {
        let b = bucket(BucketAddressing::VirtualHosted, "", None);
        assert_eq!(b.authority, "site.s3.example.com:9000");
        assert_eq!(b.object_path(b"/a.css").unwrap(), "/a.css");
        let p = bucket(BucketAddressing::Path, "", None);
        assert_eq!(p.authority, "s3.example.com:9000");
    }

    #[test]
    fn invalid_bucket_config_is_refused_with_its_field_path() {
        let base = BucketBackend {
            name: "site".into(),
            cluster: "store".into(),
            host: "s3.example.com".into(),
            addressing: BucketAddressing::Path,
            prefix: String::new(),
            index_document: None,
            spa_fallback: None,
            not_found_body: None,
        };
        let cases: Vec<(BucketBackend, &str)> = vec![
            (
                BucketBackend {
                    name: "Site".into(),
                    ..base.clone()
                },
                "b.name",
            ),
            (
                BucketBackend {
                    name: "ab".into(),
                    ..base.clone()
                },
                "b.name",
            ),
            (
                BucketBackend {
                    name: "-ab".into(),
                    ..base.clone()
                },
                "b.name",
            ),
            (
                BucketBackend {
                    cluster: String::new(),
                    ..base.clone()
                },
                "b.cluster",
            ),
            (
                BucketBackend {
                    host: "a b".into(),
                    ..base.clone()
                },
                "b.host",
            ),
            (
                BucketBackend {
                    host: "*.x.com".into(),
                    ..base.clone()
                },
                "b.host",
            ),
            (
                BucketBackend {
                    prefix: "/www".into(),
                    ..base.clone()
                },
                "b.prefix",
            ),
            (
                BucketBackend {
                    prefix: "www/../x".into(),
                    ..base.clone()
                },
                "b.prefix",
            ),
            (
                BucketBackend {
                    index_document: Some("dir/".into()),
                    ..base.clone()
                },
                "b.indexDocument",
            ),
            (
                BucketBackend {
                    spa_fallback: Some("../x.html".into()),
                    ..base.clone()
                },
                "b.spaFallback",
            ),
        ];
        for (b, field) in cases {
            let err = CompiledBucket::compile("b", &b).unwrap_err();
            assert_eq!(err.path, field, "{b:?}");
        }
        assert!(CompiledBucket::compile("b", &base).is_ok());
    }

    #[test]
    fn the_stores_403_and_404_mean_a_missing_key() {
        for (status, missing) in [
            (200, false),
            (206, false),
            (304, false),
            (403, true),
            (404, true),
            (500, false),
        ] {
            assert_eq!(is_missing_key(status), missing, "{status}");
        }
    }
}
