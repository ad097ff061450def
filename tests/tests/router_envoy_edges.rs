//! The router in a real Envoy at the edges: a rejected config, huge requests, and bytes
//! that are not UTF-8. Each gets a defined answer; none traps the VM.

use std::net::SocketAddr;

use serde_json::json;
use wasmgate_harness::bootstrap::{HttpBootstrap, WasmFilter};
use wasmgate_harness::envoy_process::EnvoyError;
use wasmgate_harness::{free_port, get, request, request_bytes, Backend, Envoy, Scratch};

fn bootstrap(config: String, backend: &Backend) -> (HttpBootstrap, u16) {
    let admin_port = free_port().unwrap();
    let boot = HttpBootstrap {
        listen: SocketAddr::from(([127, 0, 0, 1], free_port().unwrap())),
        admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
        filters: vec![WasmFilter::router(config)],
        cluster_header: "x-wasmgate-cluster".into(),
        pass_through: None,
        clusters: vec![(backend.name.clone(), backend.addr())],
    };
    (boot, admin_port)
}

#[test]
fn an_invalid_config_is_refused_by_envoy_with_the_field_path_logged() {
    let backend = Backend::start("app").unwrap();
    let config = json!({"routes": [{"http": {"host": "a.com", "rules": [
        {"path": "/", "backend": {"service": "app", "cluster": "app"}},
        {"path": "no-slash", "backend": {"service": "app", "cluster": "app"}}
    ]}}]});
    let (boot, admin_port) = bootstrap(config.to_string(), &backend);
    let scratch = Scratch::new("bad-config").unwrap();
    let path = scratch
        .write("envoy.json", &boot.to_json().to_string())
        .unwrap();
    match Envoy::start(&path, admin_port, 1) {
        Ok(envoy) => panic!(
            "Envoy started with an invalid plugin config:\n{}",
            envoy.log_text()
        ),
        Err(EnvoyError::NotReady(log)) => {
            let full = std::fs::read_to_string(path.with_extension("envoy.log")).unwrap_or(log);
            assert!(
                full.contains(
                    "routes[0].http.rules[1].path: invalid path: \"no-slash\" must start with `/`"
                ),
                "the field path is not in Envoy's log:\n{full}"
            );
        }
        Err(e) => panic!("{e}"),
    }
}

/// Starts Envoy on `config`, which must be refused; returns Envoy's whole log.
fn refused_log(label: &str, config: String) -> String {
    let backend = Backend::start("app").unwrap();
    let (boot, admin_port) = bootstrap(config, &backend);
    let scratch = Scratch::new(label).unwrap();
    let path = scratch
        .write("envoy.json", &boot.to_json().to_string())
        .unwrap();
    match Envoy::start(&path, admin_port, 1) {
        Ok(envoy) => panic!(
            "Envoy started with a config to refuse:\n{}",
            envoy.log_text()
        ),
        Err(EnvoyError::NotReady(log)) => {
            std::fs::read_to_string(path.with_extension("envoy.log")).unwrap_or(log)
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn many_large_regexes_are_refused_by_the_budget_with_the_field_path() {
    // Issue 12: 100 rules of `.{65535}/N`, each under regex-lite's own limit, used to exhaust
    // the VM in on_configure.
    let rules: Vec<_> = (0..100)
        .map(|i| json!({"matches": [{"path": {"type": "RegularExpression", "value": format!(".{{65535}}/{i}")}}],
                        "statusCode": {"code": 200}}))
        .collect();
    let config = json!({"routes": [{"http": {"host": "a.com", "rules": rules}}]});
    let log = refused_log("regex-bomb", config.to_string());
    assert!(
        log.contains("routes[0].http.rules[0].matches[0].path.value: regular expression too large"),
        "the budget's error is not in Envoy's log:\n{log}"
    );
    // Regexes that fit alone but not together: refused at the first over the total.
    let rules: Vec<_> = (0..100)
        .map(|i| json!({"matches": [{"path": {"type": "RegularExpression", "value": format!(".{{1000}}/{i}")}}],
                        "statusCode": {"code": 200}}))
        .collect();
    let config = json!({"routes": [{"http": {"host": "a.com", "rules": rules}}]});
    let log = refused_log("regex-total", config.to_string());
    assert!(
        log.contains(
            "routes[0].http.rules[32].matches[0].path.value: regular expressions over budget"
        ),
        "the budget's error is not in Envoy's log:\n{log}"
    );
}

#[test]
fn a_huge_refused_value_is_quoted_in_a_short_log_line() {
    let huge = "a".repeat(1 << 20);
    let config = json!({"routes": [{"http": {"host": format!("{huge}..com"), "rules": []}}]});
    let log = refused_log("huge-value", config.to_string());
    let line = log
        .lines()
        .find(|l| l.contains("invalid configuration"))
        .unwrap_or_else(|| panic!("no error line in Envoy's log"));
    assert!(
        line.len() < 1024 && line.contains("...(1048581 bytes)"),
        "a {}-byte log line: {}",
        line.len(),
        &line[..line.len().min(400)]
    );
}

#[test]
fn oversized_and_odd_requests_get_defined_answers() {
    let backend = Backend::start("app").unwrap();
    let config = json!({"routes": [{"http": {"host": "a.com", "rules": [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}, "headers": [{"name": "x-odd", "type": "Present"}]}],
         "statusCode": {"code": 299, "body": "odd header seen\n"}},
        {"path": "/", "backend": {"service": "app", "cluster": "app"}}
    ]}}]});
    let (boot, admin_port) = bootstrap(config.to_string(), &backend);
    let scratch = Scratch::new("edges").unwrap();
    let path = scratch
        .write("envoy.json", &boot.to_json().to_string())
        .unwrap();
    let envoy = Envoy::start(&path, admin_port, 1).unwrap();
    let at = boot.listen;

    let long = format!("/{}", "a".repeat(9_999));
    let r = get(at, "a.com", &long).unwrap();
    assert_eq!(
        (r.status, r.backend().as_deref()),
        (200, Some("app")),
        "a 10,000-character path is routed"
    );

    let many: Vec<(String, Vec<u8>)> = (0..1_000)
        .map(|i| (format!("x-h{i}"), b"v".to_vec()))
        .collect();
    let many: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let r = request(at, "GET", "a.com", "/", &many).unwrap();
    assert_eq!(
        r.status, 431,
        "Envoy's codec caps headers at 100 before the filter runs"
    );

    let r = request_bytes(at, "GET", Some(b"a.com"), b"/", &[("x-odd", b"\xff\xfe")]).unwrap();
    assert_eq!(
        (r.status, r.text().as_str()),
        (299, "odd header seen\n"),
        "non-UTF-8 values are matched as bytes"
    );

    let r = request_bytes(at, "GET", Some(b"\xc3\xa9.a.com"), b"/", &[]).unwrap();
    assert!(
        r.status == 400 || r.status == 404,
        "a non-ASCII host gets 400 (codec) or 404 (router), saw {}",
        r.status
    );

    // The VM survived all of it.
    let r = get(at, "a.com", "/after").unwrap();
    assert_eq!(r.backend().as_deref(), Some("app"));
    assert!(
        !envoy.log_text().contains("panicked"),
        "a filter panicked:\n{}",
        envoy.log_text()
    );
}
