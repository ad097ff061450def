//! `make build` drops the exports listed in `filters/<filter>/unused-callbacks.txt`: a filter
//! that implements one of those callbacks would silently never see it. Each listed export must
//! be one the filter's plugin leaves at the SDK's default, and must be gone from the built module.

use wasmgate_harness::paths::{wasm, workspace_root};

/// The SDK trait method behind each droppable `proxy_on_*` export.
const METHODS: &[(&str, &str)] = &[
    ("proxy_on_request_body", "on_http_request_body"),
    ("proxy_on_request_trailers", "on_http_request_trailers"),
    ("proxy_on_response_body", "on_http_response_body"),
    ("proxy_on_response_trailers", "on_http_response_trailers"),
    ("proxy_on_log", "on_log"),
    ("proxy_on_done", "on_done"),
    ("proxy_on_downstream_data", "on_downstream_data"),
    ("proxy_on_upstream_data", "on_upstream_data"),
    (
        "proxy_on_downstream_connection_close",
        "on_downstream_close",
    ),
    ("proxy_on_upstream_connection_close", "on_upstream_close"),
];

fn listed(filter: &str) -> Vec<String> {
    let path = workspace_root().join(format!("filters/{filter}/unused-callbacks.txt"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split('#').next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn dropped_exports_are_callbacks_the_filter_leaves_at_the_sdk_default_and_are_gone() {
    for filter in ["router", "balancer"] {
        let source = std::fs::read_to_string(
            workspace_root().join(format!("filters/{filter}/src/plugin.rs")),
        )
        .unwrap();
        let module = std::fs::read(wasm(&format!("wasmgate_{filter}"))).unwrap();
        for export in listed(filter) {
            let method = METHODS
                .iter()
                .find(|(e, _)| *e == export)
                .unwrap_or_else(|| panic!("{filter}: no known callback {export}"))
                .1;
            assert!(
                !source.contains(&format!("fn {method}(")),
                "{filter} implements {method} but drops {export}"
            );
            // A release build has no name section, so an export's name appears in the
            // module only in its export section (an unstripped module fails here).
            let needle = export.as_bytes();
            let exported = module.windows(needle.len()).any(|w| w == needle);
            assert!(!exported, "{filter}: {export} is still in the built module");
        }
        // The callbacks the filter does implement stay exported.
        assert!(module
            .windows(b"proxy_on_request_headers".len())
            .any(|w| w == b"proxy_on_request_headers"));
    }
}
