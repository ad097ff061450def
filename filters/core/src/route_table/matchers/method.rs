//! The method condition: the request's method, byte for byte.

use crate::error::ConfigErrorKind;

#[derive(Debug)]
pub(crate) struct MethodCond(Box<[u8]>);

impl MethodCond {
    /// Methods are upper-case tokens (`GET`, `PURGE`); `get` would never match, so it is
    /// refused rather than silently dead.
    pub(crate) fn parse(method: &str) -> Result<Self, ConfigErrorKind> {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ConfigErrorKind::InvalidMethod(method.to_string()));
        }
        Ok(MethodCond(method.as_bytes().into()))
    }

    pub(crate) fn holds(&self, method: &[u8]) -> bool {
        method == &*self.0
    }
}
