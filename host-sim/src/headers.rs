//! An ordered HTTP header map with Envoy's semantics: lower-case keys, byte values,
//! repeated keys allowed, `get` returns the first value.

/// Ordered header map. Keys are stored lower-cased; values are arbitrary bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(String, Vec<u8>)>,
}

fn lower(key: &[u8]) -> String {
    String::from_utf8_lossy(key).to_ascii_lowercase()
}

impl HeaderMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut map = Self::new();
        for (k, v) in pairs {
            map.add(k.as_ref(), v.as_ref());
        }
        map
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first value of `key` (case-insensitive).
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<&[u8]> {
        let key = lower(key.as_ref());
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `key` as UTF-8, if it is valid UTF-8.
    pub fn get_str(&self, key: impl AsRef<[u8]>) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn add(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.entries
            .push((lower(key.as_ref()), value.as_ref().to_vec()));
    }

    /// Envoy's `setCopy`: drop every value of `key`, then store one. Pseudo-headers keep
    /// their place at the front; other keys move to the end.
    pub fn replace(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let key = lower(key.as_ref());
        let value = value.as_ref().to_vec();
        if key.starts_with(':') {
            if let Some(pos) = self.entries.iter().position(|(k, _)| *k == key) {
                self.entries[pos].1 = value;
                let mut seen = false;
                self.entries.retain(|(k, _)| {
                    if *k != key {
                        return true;
                    }
                    let keep = !seen;
                    seen = true;
                    keep
                });
            } else {
                let at = self
                    .entries
                    .iter()
                    .take_while(|(k, _)| k.starts_with(':'))
                    .count();
                self.entries.insert(at, (key, value));
            }
            return;
        }
        self.entries.retain(|(k, _)| *k != key);
        self.entries.push((key, value));
    }

    pub fn remove(&mut self, key: impl AsRef<[u8]>) {
        let key = lower(key.as_ref());
        self.entries.retain(|(k, _)| *k != key);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + Clone {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Sum of key and value lengths, like Envoy's `byteSize`.
    pub fn byte_size(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    pub fn to_vec(&self) -> Vec<(String, Vec<u8>)> {
        self.entries.clone()
    }

    pub(crate) fn serialize(&self) -> Vec<u8> {
        crate::pairs::serialize(
            self.entries
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_slice())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_values_binary() {
        let mut h = HeaderMap::new();
        h.add("X-Key", [0xffu8, 0xfe]);
        assert_eq!(h.get("x-key"), Some(&[0xffu8, 0xfe][..]));
        assert_eq!(h.get_str("x-key"), None);
    }

    #[test]
    fn replace_drops_every_previous_value() {
        let mut h = HeaderMap::from_pairs([(":path", "/"), ("a", "1"), ("b", "2"), ("a", "3")]);
        h.replace("A", "4");
        assert_eq!(
            h.to_vec(),
            vec![
                (":path".to_string(), b"/".to_vec()),
                ("b".to_string(), b"2".to_vec()),
                ("a".to_string(), b"4".to_vec())
            ]
        );
        h.replace(":authority", "x");
        assert_eq!(h.iter().nth(1).map(|(k, _)| k), Some(":authority"));
    }
}
