//! Header names and values as HTTP allows them: checked once, so no edit can write a header
//! the proxy would refuse or split.

use crate::error::ConfigErrorKind as K;

/// An RFC 9110 token, or a pseudo-header (`:scheme`).
pub(super) fn check_header_name(name: &str) -> Result<(), K> {
    let ok = !name.is_empty()
        && name.bytes().enumerate().all(|(i, b)| {
            (i == 0 && b == b':') || b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
        });
    if ok {
        Ok(())
    } else {
        Err(K::InvalidHeaderName(name.to_string()))
    }
}

/// No CR, LF or NUL: a value must not end the header or smuggle another.
pub(super) fn check_header_value(value: &str) -> Result<(), K> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        Err(K::InvalidHeaderValue(value.to_string()))
    } else {
        Ok(())
    }
}
