//! The request as the router sees it: a few fields read once from the proxy.

/// Borrowed view of the request attributes a route table needs.
///
/// `headers` holds only the headers some rule asks for ([`crate::RouteTable::header_names`]),
/// lower-case names with raw byte values; a header sent twice appears twice.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestView<'a> {
    pub authority: &'a [u8],
    /// `:path` as the proxy hands it over, query included.
    pub path: &'a [u8],
    pub method: &'a [u8],
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The port of the listener the request came in on (Envoy's `destination.port`), read
    /// only when [`crate::RouteTable::needs_listener_port`] says a rule uses it.
    pub listener_port: Option<u16>,
}

impl<'a> RequestView<'a> {
    /// The first value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &'a [u8] {
        split_query(self.path).0
    }
}

/// Splits `:path` at the first `?`.
pub fn split_query(path: &[u8]) -> (&[u8], Option<&[u8]>) {
    match path.iter().position(|&b| b == b'?') {
        Some(q) => (
            path.get(..q).unwrap_or(path),
            path.get(q + 1..).or(Some(&[])),
        ),
        None => (path, None),
    }
}

/// The raw (undecoded) value of the first query parameter called `name`, like Envoy's
/// route matcher. A parameter without `=` has the empty value.
pub fn query_param<'q>(query: &'q [u8], name: &str) -> Option<&'q [u8]> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (pair.get(..eq)?, pair.get(eq + 1..)?),
            None => (pair, &[][..]),
        };
        (k == name.as_bytes()).then_some(v)
    })
}

/// A source of random numbers for weighted choices, injectable so tables can be golden.
pub trait Random {
    /// A value uniformly distributed in `0..n`; `n` is never 0.
    fn below(&mut self, n: u64) -> u64;
}

/// xorshift64*: tiny, fast, and good enough to spread load; not for secrets.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }
}

impl Random for XorShift {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        // Lemire's multiply-shift: unbiased enough for load spreading, no division.
        ((u128::from(x.wrapping_mul(0x2545_f491_4f6c_dd1d)) * u128::from(n)) >> 64) as u64
    }
}

/// Always answers the same fraction of `n`, for golden tests (`0.0..1.0`).
#[derive(Debug, Clone, Copy)]
pub struct FixedRandom(pub f64);

impl Random for FixedRandom {
    fn below(&mut self, n: u64) -> u64 {
        ((self.0 * n as f64) as u64).min(n.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_raw_and_first_wins() {
        let q = b"a=1&b=x%20y&a=2&flag";
        assert_eq!(query_param(q, "a"), Some(&b"1"[..]));
        assert_eq!(query_param(q, "b"), Some(&b"x%20y"[..]));
        assert_eq!(query_param(q, "flag"), Some(&b""[..]));
        assert_eq!(query_param(q, "c"), None);
    }

    #[test]
    fn split_query_keeps_empty_query() {
        assert_eq!(split_query(b"/a?"), (&b"/a"[..], Some(&b""[..])));
        assert_eq!(split_query(b"/a"), (&b"/a"[..], None));
    }
}
