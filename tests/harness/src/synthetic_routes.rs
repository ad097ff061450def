//! Synthetic route sets for benchmarks: `hosts` hosts with `per_host` rules each, a mix of
//! exact, prefix and pattern paths, and requests that each match one of them.

use serde_json::{json, Value};

/// The router config of a route set.
pub fn router_config(hosts: usize, per_host: usize) -> Value {
    let routes: Vec<Value> = (0..hosts)
        .map(|h| {
            let rules: Vec<Value> = (0..per_host)
                .map(|r| {
                    let path = match r % 3 {
                        0 => json!({"type": "Exact", "value": format!("/svc{r}/exact")}),
                        1 => json!({"type": "PathPrefix", "value": format!("/svc{r}")}),
                        _ => json!({"type": "Pattern", "value": format!("/svc{r}/items/{{id}}")}),
                    };
                    json!({"matches": [{"path": path}],
                           "backend": {"service": format!("s{h}-{r}"), "cluster": format!("c{h}-{r}")}})
                })
                .collect();
            json!({"http": {"host": format!("host{h}.example.com"), "rules": rules}})
        })
        .collect();
    json!({ "routes": routes })
}

/// `n` (host, path) requests spread pseudo-randomly over the route set; all match.
pub fn requests(hosts: usize, per_host: usize, n: usize) -> Vec<(String, String)> {
    let mut x: u64 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let h = (x as usize) % hosts;
            let r = (x as usize >> 20) % per_host;
            let path = match r % 3 {
                0 => format!("/svc{r}/exact"),
                1 => format!("/svc{r}/a/b"),
                _ => format!("/svc{r}/items/42"),
            };
            (format!("host{h}.example.com"), path)
        })
        .collect()
}

/// One host with `n` PathPrefix rules keyed by an adversarial key set, plus a `/` rule so a
/// request that misses every key still walks all its path elements and then forwards.
pub fn keyset_config(set: &crate::hash_keysets::KeySet, n: usize) -> Value {
    let mut rules: Vec<Value> = (0..n)
        .map(|i| {
            json!({"matches": [{"path": {"type": "PathPrefix", "value": (set.key)(i)}}],
                   "backend": {"service": "s", "cluster": format!("c{i}")}})
        })
        .collect();
    rules.push(json!({"path": "/", "backend": {"service": "root", "cluster": "root"}}));
    json!({"routes": [{"http": {"host": "keys.example.com", "rules": rules}}]})
}

/// `count` paths for [`keyset_config`]: every other one a stored key with a suffix (a hit),
/// the rest keys `n..` of the same family (misses a client can make up).
pub fn keyset_requests(set: &crate::hash_keysets::KeySet, n: usize, count: usize) -> Vec<String> {
    let mut x: u64 = 0x9e37_79b9;
    (0..count)
        .map(|j| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x as usize) % n;
            if j % 2 == 0 {
                format!("{}/item", (set.key)(i))
            } else {
                (set.key)(n + i)
            }
        })
        .collect()
}
