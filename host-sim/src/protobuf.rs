//! A minimal protobuf reader for the one message Envoy's foreign functions need:
//! `SetEnvoyFilterStateArguments { string path = 1; string value = 2; LifeSpan span = 3; }`.

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SetEnvoyFilterStateArguments {
    pub path: String,
    pub value: Vec<u8>,
    pub span: u64,
}

fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// `None` on malformed input (Envoy answers BadArgument).
pub(crate) fn decode_set_envoy_filter_state(buf: &[u8]) -> Option<SetEnvoyFilterStateArguments> {
    let mut out = SetEnvoyFilterStateArguments {
        path: String::new(),
        value: Vec::new(),
        span: 0,
    };
    let mut at = 0;
    while at < buf.len() {
        let tag = varint(buf, &mut at)?;
        let (field, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => {
                let v = varint(buf, &mut at)?;
                if field == 3 {
                    out.span = v;
                }
            }
            1 => at = at.checked_add(8).filter(|e| *e <= buf.len())?,
            2 => {
                let len = usize::try_from(varint(buf, &mut at)?).ok()?;
                let end = at.checked_add(len)?;
                let bytes = buf.get(at..end)?;
                at = end;
                match field {
                    1 => out.path = String::from_utf8(bytes.to_vec()).ok()?,
                    2 => out.value = bytes.to_vec(),
                    _ => {}
                }
            }
            5 => at = at.checked_add(4).filter(|e| *e <= buf.len())?,
            _ => return None,
        }
    }
    Some(out)
}

/// Encodes the message (for tests and hand-written guests).
pub fn encode_set_envoy_filter_state(path: &str, value: &[u8], span: u64) -> Vec<u8> {
    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::new();
    out.push(0x0a);
    put_varint(&mut out, path.len() as u64);
    out.extend_from_slice(path.as_bytes());
    out.push(0x12);
    put_varint(&mut out, value.len() as u64);
    out.extend_from_slice(value);
    if span != 0 {
        out.push(0x18);
        put_varint(&mut out, span);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_skips_unknown_fields() {
        let mut msg = encode_set_envoy_filter_state("envoy.tcp_proxy.cluster", b"east", 2);
        msg.extend_from_slice(&[0x25, 1, 2, 3, 4]); // field 4, fixed32
        let got = decode_set_envoy_filter_state(&msg).unwrap();
        assert_eq!(got.path, "envoy.tcp_proxy.cluster");
        assert_eq!(got.value, b"east");
        assert_eq!(got.span, 2);
    }

    #[test]
    fn rejects_truncated_input() {
        let msg = encode_set_envoy_filter_state("p", b"value", 0);
        assert!(decode_set_envoy_filter_state(&msg[..msg.len() - 1]).is_none());
        assert!(
            decode_set_envoy_filter_state(&[0x0f]).is_none(),
            "wire type 7"
        );
    }
}
