//! JSON helpers: bytes are written as a string when they are UTF-8, else as `{"hex": "..."}`.

use serde_json::{json, Map, Value};

use crate::http::HttpOutcome;
use crate::tcp::TcpOutcome;
use crate::types::Level;

pub fn bytes_to_json(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => json!({ "hex": hex(b) }),
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads bytes written by [`bytes_to_json`] (or a plain string).
pub fn bytes_from_json(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Object(o) => {
            let h = o.get("hex")?.as_str()?;
            if h.len() % 2 != 0 {
                return None;
            }
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
                .collect()
        }
        _ => None,
    }
}

/// Standard base64 (padding optional), as protobuf JSON writes `bytes`.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

pub fn pairs_to_json(pairs: &[(String, Vec<u8>)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(k, v)| json!([k, bytes_to_json(v)]))
            .collect(),
    )
}

fn logs_to_json(logs: &[(Level, String)]) -> Value {
    Value::Array(logs.iter().map(|(l, m)| json!([l.as_str(), m])).collect())
}

pub fn http_outcome_to_json(o: &HttpOutcome) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), json!(o.status));
    m.insert("cluster".into(), json!(o.cluster));
    m.insert("details".into(), json!(o.details));
    if o.reset {
        m.insert("reset".into(), json!(true));
    }
    if let Some(lr) = &o.local_reply {
        m.insert(
            "local_reply".into(),
            json!({"status": lr.status, "headers": pairs_to_json(&lr.headers), "body": bytes_to_json(&lr.body), "details": lr.details}),
        );
    }
    if let Some(u) = &o.upstream_request {
        m.insert("upstream_request".into(), pairs_to_json(u));
    }
    m.insert(
        "response_headers".into(),
        pairs_to_json(&o.response_headers),
    );
    m.insert("response_body".into(), bytes_to_json(&o.response_body));
    m.insert("logs".into(), logs_to_json(&o.logs));
    m.insert("host_calls".into(), json!(o.host_calls));
    if !o.filter_state.is_empty() {
        m.insert("filter_state".into(), pairs_to_json(&o.filter_state));
    }
    if !o.vm_failures.is_empty() {
        m.insert("vm_failures".into(), json!(o.vm_failures));
    }
    if !o.callouts.is_empty() {
        m.insert(
            "callouts".into(),
            Value::Array(o.callouts.iter().map(callout_to_json).collect()),
        );
    }
    Value::Object(m)
}

pub fn callout_to_json(c: &crate::upstreams::Callout) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!(c.kind));
    m.insert("cluster".into(), json!(c.cluster));
    if c.kind == "grpc" {
        m.insert("service".into(), json!(c.service));
        m.insert("method".into(), json!(c.method));
    }
    m.insert("headers".into(), pairs_to_json(&c.headers));
    m.insert("body".into(), bytes_to_json(&c.body));
    if !c.trailers.is_empty() {
        m.insert("trailers".into(), pairs_to_json(&c.trailers));
    }
    m.insert("timeout_ms".into(), json!(c.timeout_ms));
    Value::Object(m)
}

pub fn logs_json(logs: &[(Level, String)]) -> Value {
    logs_to_json(logs)
}

pub fn tcp_outcome_to_json(o: &TcpOutcome) -> Value {
    json!({
        "cluster": o.cluster,
        "closed": o.closed,
        "filter_state": pairs_to_json(&o.filter_state),
        "to_upstream": bytes_to_json(&o.to_upstream),
        "to_downstream": bytes_to_json(&o.to_downstream),
        "logs": logs_to_json(&o.logs),
        "host_calls": o.host_calls,
        "vm_failures": o.vm_failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_bytes_round_trip_as_hex() {
        for b in [&b"plain"[..], &[0xff, 0x00, 0x7f][..], &[][..]] {
            assert_eq!(bytes_from_json(&bytes_to_json(b)).unwrap(), b);
        }
    }
}
