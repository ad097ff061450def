//! Property values and their Envoy wire encoding.
//!
//! Envoy answers `proxy_get_property` with CEL values serialised as: strings and bytes raw,
//! integers as 8-byte little-endian, doubles as 8-byte IEEE, booleans as one byte, timestamps
//! and durations as int64 nanoseconds, maps as a serialised header map of serialised values.

use std::collections::BTreeMap;

use crate::types::Status;

/// One property value. Maps stand in for Envoy's protobuf messages (node, metadata...).
#[derive(Clone, Debug, PartialEq)]
pub enum PropValue {
    Str(String),
    Bytes(Vec<u8>),
    Int(i64),
    UInt(u64),
    Double(f64),
    Bool(bool),
    /// Nanoseconds since the Unix epoch (CEL timestamp).
    Timestamp(i64),
    /// Nanoseconds (CEL duration).
    Duration(i64),
    Map(BTreeMap<String, PropValue>),
    List(Vec<PropValue>),
}

impl PropValue {
    pub fn str(s: impl Into<String>) -> Self {
        PropValue::Str(s.into())
    }

    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, PropValue)>) -> Self {
        PropValue::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Converts JSON (as used in scenario files and `node.metadata`) to a property value.
    pub fn from_json(v: &serde_json::Value) -> Self {
        use serde_json::Value;
        match v {
            Value::Null => PropValue::Bytes(Vec::new()),
            Value::Bool(b) => PropValue::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    PropValue::Int(i)
                } else if let Some(u) = n.as_u64() {
                    PropValue::UInt(u)
                } else {
                    PropValue::Double(n.as_f64().unwrap_or(0.0))
                }
            }
            Value::String(s) => PropValue::Str(s.clone()),
            Value::Array(a) => PropValue::List(a.iter().map(PropValue::from_json).collect()),
            Value::Object(o) => PropValue::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), PropValue::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Envoy's serialisation of the value.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Status> {
        Ok(match self {
            PropValue::Str(s) => s.as_bytes().to_vec(),
            PropValue::Bytes(b) => b.clone(),
            PropValue::Int(i) | PropValue::Timestamp(i) | PropValue::Duration(i) => {
                i.to_le_bytes().to_vec()
            }
            PropValue::UInt(u) => u.to_le_bytes().to_vec(),
            PropValue::Double(d) => d.to_le_bytes().to_vec(),
            PropValue::Bool(b) => vec![u8::from(*b)],
            PropValue::Map(m) => {
                let mut encoded = Vec::with_capacity(m.len());
                for (k, v) in m {
                    encoded.push((k.as_bytes().to_vec(), v.encode()?));
                }
                crate::pairs::serialize(encoded.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
            }
            PropValue::List(l) => {
                let mut encoded = Vec::with_capacity(l.len());
                for v in l {
                    encoded.push(v.encode()?);
                }
                crate::pairs::serialize(encoded.iter().map(|v| (v.as_slice(), &[][..])))
            }
        })
    }

    /// Follows `path` into maps (by key) and lists (by index).
    pub fn lookup(&self, path: &[&[u8]]) -> Option<&PropValue> {
        let mut cur = self;
        for seg in path {
            cur = match cur {
                PropValue::Map(m) => m.get(std::str::from_utf8(seg).ok()?)?,
                PropValue::List(l) => {
                    l.get(std::str::from_utf8(seg).ok()?.parse::<usize>().ok()?)?
                }
                _ => return None,
            };
        }
        Some(cur)
    }
}

/// Values set by a test at fixed paths; the longest matching prefix answers.
#[derive(Clone, Debug, Default)]
pub struct PropertyOverrides {
    entries: Vec<(Vec<String>, PropValue)>,
}

impl PropertyOverrides {
    pub fn set(&mut self, path: &[&str], value: PropValue) {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.entries.retain(|(p, _)| *p != path);
        self.entries.push((path, value));
    }

    /// Adds `other`'s entries; on the same path, `other` wins.
    pub fn extend(&mut self, other: &PropertyOverrides) {
        for (path, value) in &other.entries {
            self.entries.retain(|(p, _)| p != path);
            self.entries.push((path.clone(), value.clone()));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `Some(None)` when a prefix matched but the rest of the path does not exist.
    pub(crate) fn lookup(&self, path: &[&[u8]]) -> Option<Option<&PropValue>> {
        let mut best: Option<(usize, &PropValue)> = None;
        for (p, v) in &self.entries {
            if p.len() <= path.len()
                && p.iter().zip(path).all(|(a, b)| a.as_bytes() == *b)
                && best.is_none_or(|(n, _)| p.len() > n)
            {
                best = Some((p.len(), v));
            }
        }
        let (n, v) = best?;
        Some(v.lookup(&path[n..]))
    }
}

/// Splits a property path on NUL separators.
pub(crate) fn split_path(path: &[u8]) -> Vec<&[u8]> {
    if path.is_empty() {
        return Vec::new();
    }
    path.split(|b| *b == 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_envoy() {
        let cases: Vec<(PropValue, Vec<u8>)> = vec![
            (PropValue::str("abc"), b"abc".to_vec()),
            (PropValue::Int(258), vec![2, 1, 0, 0, 0, 0, 0, 0]),
            (PropValue::UInt(1), vec![1, 0, 0, 0, 0, 0, 0, 0]),
            (PropValue::Bool(true), vec![1]),
        ];
        for (value, want) in cases {
            assert_eq!(value.encode().unwrap(), want, "{value:?}");
        }
    }

    #[test]
    fn overrides_answer_the_longest_prefix() {
        let mut o = PropertyOverrides::default();
        o.set(
            &["node", "metadata"],
            PropValue::map([("REGION", PropValue::str("us"))]),
        );
        o.set(&["node", "metadata", "REGION"], PropValue::str("eu"));
        let path: Vec<&[u8]> = vec![b"node", b"metadata", b"REGION"];
        assert_eq!(o.lookup(&path), Some(Some(&PropValue::str("eu"))));
        let path: Vec<&[u8]> = vec![b"node", b"metadata", b"ZONE"];
        assert_eq!(o.lookup(&path), Some(None));
        let path: Vec<&[u8]> = vec![b"node", b"id"];
        assert_eq!(o.lookup(&path), None);
    }
}
