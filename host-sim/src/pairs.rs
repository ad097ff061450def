//! The proxy-wasm serialisation of header maps:
//! `u32 count, count x (u32 key_len, u32 value_len), then each key\0 value\0`, little-endian.

pub(crate) fn serialize<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone) -> Vec<u8> {
    let mut count = 0u32;
    let mut size = 4usize;
    for (k, v) in pairs.clone() {
        count += 1;
        size += 8 + k.len() + v.len() + 2;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&count.to_le_bytes());
    for (k, v) in pairs.clone() {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// Parses a serialised map. An empty buffer is an empty map; a truncated one is `None`.
pub(crate) fn deserialize(buf: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if buf.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(buf, 0)? as usize;
    let mut sizes_at = 4usize;
    let mut data_at = 4usize.checked_add(count.checked_mul(8)?)?;
    if data_at > buf.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let klen = read_u32(buf, sizes_at)? as usize;
        let vlen = read_u32(buf, sizes_at + 4)? as usize;
        sizes_at += 8;
        let key = buf.get(data_at..data_at.checked_add(klen)?)?.to_vec();
        data_at = data_at.checked_add(klen + 1)?;
        let value = buf.get(data_at..data_at.checked_add(vlen)?)?.to_vec();
        data_at = data_at.checked_add(vlen + 1)?;
        out.push((key, value));
    }
    Some(out)
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_binary_values() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/a"), (b"x", &[0xff, 0, 1]), (b"", b"")];
        let bytes = serialize(pairs.iter().copied());
        let back = deserialize(&bytes).unwrap();
        let back: Vec<(&[u8], &[u8])> = back.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        assert_eq!(back, pairs);
    }

    #[test]
    fn empty_buffer_is_empty_map() {
        assert_eq!(deserialize(&[]).unwrap(), vec![]);
        assert_eq!(deserialize(&[0, 0, 0, 0]).unwrap(), vec![]);
    }

    #[test]
    fn truncated_buffers_are_rejected() {
        let bytes = serialize([(&b"key"[..], &b"value"[..])].into_iter());
        for cut in 1..bytes.len() - 1 {
            assert!(deserialize(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        assert!(deserialize(&[255, 255, 255, 255]).is_none());
    }
}
