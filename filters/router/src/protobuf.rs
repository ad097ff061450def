//! The one protobuf message the router sends Envoy, encoded by hand to keep the module small.

/// `envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments { path = 1; value = 2; }`,
/// the argument of Envoy's `set_envoy_filter_state` foreign function.
pub fn set_filter_state_args(path: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + value.len() + 8);
    for (tag, field) in [(0x0a_u8, path), (0x12, value)] {
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
