//! Typed configuration errors that carry the field path of the offending value.

use std::borrow::Cow;
use std::fmt;

/// A configuration error: where (a field path such as `routes[2].http.rules[0].path`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub kind: ConfigErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The JSON does not fit the schema (syntax, type, unknown or missing field).
    Schema(String),
    /// A route must have exactly one of `http` or `tcp`.
    RouteKind,
    /// A rule needs exactly one terminal action.
    ActionCount(usize),
    /// `path` and `matches` are exclusive; so are `backend` and `backends`.
    Exclusive(&'static str, &'static str),
    /// A modifier that only applies to backends was given with another action.
    ModifierWithoutBackend(&'static str),
    InvalidHost(String),
    DuplicateHost(String),
    DuplicateTcpPort(u16),
    InvalidPath(String),
    InvalidRegex(String),
    /// One regex compiles to more than the per-regex limit.
    RegexTooLarge,
    /// The configuration's regexes together exceed the total size or count limit.
    RegexBudget,
    /// Two matchit patterns of one host overlap in a way matchit cannot order.
    ConflictingPattern(String),
    InvalidStatusCode(u16),
    InvalidRedirectCode(u16),
    InvalidHeaderName(String),
    InvalidHeaderValue(String),
    InvalidMethod(String),
    MissingValue,
    /// A `{name}` template refers to a capture that not every match of the rule provides.
    UnknownCapture(String),
    /// `ReplacePrefixMatch` needs every match of the rule to be a PathPrefix.
    PrefixRewriteWithoutPrefix,
    EmptyBackends,
    EmptyName,
    UnknownService(String),
    NoMembers,
    DuplicateMember(String),
    /// A canary or other reference names a member the service does not have.
    UnknownMember(String),
    /// The label selectors of a multi-cluster service match none of its members.
    NoSelectedMembers,
    /// Every member weight of a multi-cluster service is zero.
    ZeroWeights,
    /// A number outside its allowed range; the text says which range.
    OutOfRange(&'static str),
    /// A header name or value the balancer would have to send or match is unusable.
    InvalidName(String),
    /// A field that applies only when another one is set (named here).
    NeedsField(&'static str),
    /// The combined router+balancer module serves HTTP streams only.
    CombinedHttpOnly,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, kind: ConfigErrorKind) -> Self {
        ConfigError {
            path: path.into(),
            kind,
        }
    }
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConfigErrorKind::*;
        match self {
            Schema(m) => write!(f, "{}", bounded(m, MESSAGE_LIMIT)),
            RouteKind => write!(f, "a route needs exactly one of `http` or `tcp`"),
            ActionCount(0) => write!(
                f,
                "a rule needs an action: `backend`, `backends`, `bucket`, `statusCode` or \
                 `redirect`"
            ),
            ActionCount(n) => write!(
                f,
                "a rule takes one action of `backend(s)`, `bucket`, `statusCode`, `redirect`; \
                 found {n}"
            ),
            Exclusive(a, b) => write!(f, "`{a}` and `{b}` cannot be used together"),
            ModifierWithoutBackend(m) => write!(f, "`{m}` applies only to backend actions"),
            InvalidHost(h) => write!(
                f,
                "invalid host {}: expected a DNS name, `*.` followed by one, or `*`",
                quote(h)
            ),
            DuplicateHost(h) => write!(
                f,
                "host {} is already defined by an earlier route",
                quote(h)
            ),
            DuplicateTcpPort(p) => write!(f, "tcp port {p} is already defined by an earlier route"),
            InvalidPath(m) => write!(f, "invalid path: {}", bounded(m, MESSAGE_LIMIT)),
            InvalidRegex(m) => write!(
                f,
                "invalid regular expression: {}",
                bounded(m, MESSAGE_LIMIT)
            ),
            RegexTooLarge => write!(
                f,
                "regular expression too large: it compiles to more than {} bytes",
                crate::regex_budget::REGEX_SIZE_LIMIT
            ),
            RegexBudget => write!(
                f,
                "regular expressions over budget: all of a configuration's together may compile \
                 to at most {} bytes and number at most {}",
                crate::regex_budget::REGEX_TOTAL_LIMIT,
                crate::regex_budget::REGEX_COUNT_LIMIT
            ),
            ConflictingPattern(m) => {
                write!(f, "conflicting path pattern: {}", bounded(m, MESSAGE_LIMIT))
            }
            InvalidStatusCode(c) => write!(f, "invalid status code {c}: expected 200..=599"),
            InvalidRedirectCode(c) => {
                write!(
                    f,
                    "invalid redirect code {c}: expected 301, 302, 303, 307 or 308"
                )
            }
            InvalidHeaderName(n) => write!(f, "invalid header name {}", quote(n)),
            InvalidHeaderValue(v) => write!(f, "invalid header value {}", quote(v)),
            InvalidMethod(m) => write!(f, "invalid method {}", quote(m)),
            MissingValue => write!(f, "a value is required for this match type"),
            UnknownCapture(c) => write!(
                f,
                "template uses {{{}}}, which not every path pattern of the rule captures",
                bounded(c, QUOTE_LIMIT)
            ),
            PrefixRewriteWithoutPrefix => write!(
                f,
                "ReplacePrefixMatch needs every match of the rule to use a PathPrefix path"
            ),
            EmptyBackends => write!(f, "at least one backend is required"),
            EmptyName => write!(f, "must not be empty"),
            UnknownService(s) => write!(f, "no multi-cluster service named {}", quote(s)),
            NoMembers => write!(f, "a multi-cluster service needs at least one member"),
            DuplicateMember(m) => write!(f, "member {} is listed twice", quote(m)),
            UnknownMember(m) => write!(f, "no member named {} in this service", quote(m)),
            NoSelectedMembers => write!(f, "the cluster selectors match no member"),
            ZeroWeights => write!(f, "every member weight is zero"),
            OutOfRange(r) => write!(f, "out of range: expected {r}"),
            InvalidName(n) => write!(f, "invalid name {}", quote(n)),
            NeedsField(other) => write!(f, "applies only together with `{other}`"),
            CombinedHttpOnly => write!(
                f,
                "the combined module serves HTTP only: load the router and balancer modules \
                 for a TCP root (id ending in `.tcp`)"
            ),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            // A path can hold a map key of any length.
            write!(f, "{}: {}", bounded(&self.path, PATH_LIMIT), self.kind)
        }
    }
}

/// How much of a bad value an error quotes, in bytes: a refused 1 MB string must not become
/// a 1 MB log line.
pub const QUOTE_LIMIT: usize = 64;
const PATH_LIMIT: usize = 256;
/// Messages that embed a value (the JSON parser's, a regex compiler's) are cut here.
const MESSAGE_LIMIT: usize = 320;

/// At most `limit` bytes of `s` (cut on a character boundary), with `...(N bytes)` when cut.
pub fn bounded(s: &str, limit: usize) -> Cow<'_, str> {
    if s.len() <= limit {
        return Cow::Borrowed(s);
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}...({} bytes)",
        s.get(..end).unwrap_or_default(),
        s.len()
    ))
}

/// `s` quoted as Rust's `{:?}` does, cut to its first [`QUOTE_LIMIT`] bytes.
pub fn quote(s: &str) -> String {
    if s.len() <= QUOTE_LIMIT {
        return format!("{s:?}");
    }
    let head = bounded(s, QUOTE_LIMIT);
    let cut = head.rfind("...(").unwrap_or(head.len());
    format!(
        "{:?}...({} bytes)",
        head.get(..cut).unwrap_or_default(),
        s.len()
    )
}

impl std::error::Error for ConfigError {}

/// Parses JSON into `T`, reporting schema errors with their field path.
pub fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = e.into_inner().to_string();
        ConfigError::new(
            bounded(&path, PATH_LIMIT),
            ConfigErrorKind::Schema(bounded(&message, MESSAGE_LIMIT).into_owned()),
        )
    })?;
    de.end().map_err(|e| {
        let message = e.to_string();
        ConfigError::new(
            "",
            ConfigErrorKind::Schema(bounded(&message, MESSAGE_LIMIT).into_owned()),
        )
    })?;
    Ok(value)
}
