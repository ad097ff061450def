//! Turns a bootstrap's router and balancer Wasm filters into one filter running the combined
//! module (`wasmgate_combined.wasm`) with their two configs as `{"router", "balancer"}`: the
//! same steering with one Wasm filter in Envoy, for the tests and the throughput bench to put
//! beside the two-filter chain.

use serde_json::{json, Value};

use crate::paths::wasm;

/// The filter's config JSON, from its `StringValue` wrapper.
fn configuration(filter: &Value) -> Result<Value, String> {
    let name = filter["name"].as_str().unwrap_or_default().to_string();
    let text = filter["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .ok_or(format!("{name}: no string configuration"))?;
    serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))
}

/// Replaces `wasmgate.router` and `wasmgate.balancer` in `filters` (an HCM's `http_filters`)
/// with one `wasmgate.combined` filter where the router stood.
pub fn combine_http_filters(filters: &mut Vec<Value>) -> Result<(), String> {
    let find = |name: &str| {
        filters
            .iter()
            .position(|f| f["name"] == name)
            .ok_or(format!("no {name} filter"))
    };
    let (r, b) = (find("wasmgate.router")?, find("wasmgate.balancer")?);
    let (Some(router), Some(balancer)) = (filters.get(r), filters.get(b)) else {
        return Err("filter index out of range".into());
    };
    let config = json!({
        "router": configuration(router)?,
        "balancer": configuration(balancer)?,
    });
    let mut combined = router.clone();
    combined["name"] = json!("wasmgate.combined");
    let c = &mut combined["typed_config"]["config"];
    c["name"] = json!("wasmgate.combined");
    c["root_id"] = json!("wasmgate.combined");
    c["configuration"]["value"] = json!(config.to_string());
    c["vm_config"]["vm_id"] = json!("wasmgate.combined");
    c["vm_config"]["code"]["local"]["filename"] =
        json!(wasm("wasmgate_combined").display().to_string());
    filters.push(combined);
    filters.swap_remove(r);
    filters.remove(b);
    Ok(())
}
