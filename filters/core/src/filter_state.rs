//! The one protobuf message the filters send Envoy, encoded by hand to keep a protobuf
//! library out of the modules.

/// `envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments { path = 1; value = 2; }`,
/// the argument of Envoy's `set_envoy_filter_state` foreign function (the life span field is
/// left at its default, `FilterChain`).
pub fn set_filter_state_args(path: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + value.len() + 12);
    for (tag, field) in [(0x0a_u8, path), (0x12, value)] {
        // Field number << 3 | wire type 2 (length-delimited), then the length as a varint.
        out.push(tag);
        let mut len = field.len();
        while len >= 0x80 {
            out.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// Envoy's filter-state key that picks `tcp_proxy`'s upstream cluster.
pub const TCP_PROXY_CLUSTER: &str = "envoy.tcp_proxy.cluster";

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_path_and_value_fields() {
        assert_eq!(
            super::set_filter_state_args("k", "vv"),
            [0x0a, 1, b'k', 0x12, 2, b'v', b'v']
        );
        let long = "x".repeat(200);
        let enc = super::set_filter_state_args("k", &long);
        assert_eq!(&enc[3..6], &[0x12, 0xc8, 0x01]);
    }
}
