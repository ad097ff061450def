//! Generator errors: each names the file, the document and the field path.

use std::fmt;
use std::path::PathBuf;

/// Where in the inputs an error was found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based document index within the file.
    pub document: usize,
    /// `Kind name` of the document, when known.
    pub object: Option<String>,
    /// Field path inside the document, e.g. `spec.routes[0].http.rules[1].backend.servicePort`.
    pub field: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    Io(String),
    Yaml(String),
    Schema(String),
    UnknownKind(String),
    DuplicateObject(String),
    UnknownService(String),
    UnknownPort {
        service: String,
        port: String,
    },
    NoEndpoints {
        service: String,
        port: u16,
    },
    /// The compiled filter config was rejected by filters/core.
    FilterConfig(String),
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenError {
    pub at: Location,
    pub kind: ErrorKind,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Io(m) => write!(f, "cannot read: {m}"),
            ErrorKind::Yaml(m) => write!(f, "invalid YAML: {m}"),
            ErrorKind::Schema(m) => write!(f, "{m}"),
            ErrorKind::UnknownKind(k) => write!(f, "unsupported kind {k:?}"),
            ErrorKind::DuplicateObject(o) => write!(f, "{o} is defined twice"),
            ErrorKind::UnknownService(s) => write!(f, "no service named {s:?}"),
            ErrorKind::UnknownPort { service, port } => {
                write!(f, "no port named {port:?} on service {service}")
            }
            ErrorKind::NoEndpoints { service, port } => write!(
                f,
                "no cluster in the inventory has endpoints for service {service} port {port}"
            ),
            ErrorKind::FilterConfig(m) => write!(f, "generated filter config is invalid: {m}"),
            ErrorKind::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = &self.at;
        write!(f, "{}", at.file.display())?;
        if at.document > 0 {
            write!(f, ": document {}", at.document)?;
            if let Some(o) = &at.object {
                write!(f, " ({o})")?;
            }
        }
        if !at.field.is_empty() {
            write!(f, ": {}", at.field)?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for GenError {}

/// All errors of one run, reported together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Errors(pub Vec<GenError>);

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}
