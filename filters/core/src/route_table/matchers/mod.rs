//! What a request is matched on: one module per matcher.

pub mod host;
