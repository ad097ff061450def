//! The combined module's config: `{"router": <router config>, "balancer": <balancer config>}`,
//! split into the two documents each half compiles, with errors pointing into the whole.

use serde::Deserialize;

use crate::error::{from_json, ConfigError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CombinedConfig {
    router: serde_json::Value,
    balancer: serde_json::Value,
}

/// The router's and the balancer's config documents, as JSON bytes.
pub struct SplitConfig {
    pub router: Vec<u8>,
    pub balancer: Vec<u8>,
}

/// Splits a combined config; an error names the field path from the top.
pub fn split(config: &[u8]) -> Result<SplitConfig, ConfigError> {
    let c: CombinedConfig = from_json(config)?;
    // Re-serializing a `Value` cannot fail (its keys are strings); the halves are parsed again
    // by their own schema, so each keeps its own error paths.
    let bytes = |v: &serde_json::Value| serde_json::to_vec(v).unwrap_or_default();
    Ok(SplitConfig {
        router: bytes(&c.router),
        balancer: bytes(&c.balancer),
    })
}

/// Points an error from one half's compile at that half in the combined config.
pub fn under(half: &str, mut e: ConfigError) -> ConfigError {
    e.path = if e.path.is_empty() {
        half.to_string()
    } else if e.path.starts_with('[') {
        format!("{half}{}", e.path)
    } else {
        format!("{half}.{}", e.path)
    };
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BalancerConfig, RouterConfig};

    #[test]
    fn splits_into_documents_each_half_parses() {
        let s = split(
            br#"{"router": {"routes": []}, "balancer": {"serviceFrom": "host", "services": {}}}"#,
        )
        .unwrap();
        from_json::<RouterConfig>(&s.router).unwrap();
        from_json::<BalancerConfig>(&s.balancer).unwrap();
    }

    #[test]
    fn missing_or_unknown_top_level_fields_are_refused() {
        for (config, wanted) in [
            (r#"{"router": {}}"#, "balancer"),
            (r#"{"balancer": {}}"#, "router"),
            (r#"{"router": {}, "balancer": {}, "extra": 1}"#, "extra"),
            (r#"[]"#, ""),
        ] {
            let e = split(config.as_bytes()).err().unwrap();
            assert!(e.to_string().contains(wanted), "{config}: {e}");
        }
    }

    #[test]
    fn half_errors_are_prefixed_with_the_half() {
        let e = ConfigError::new("routes[0].host", crate::ConfigErrorKind::RouteKind);
        assert_eq!(under("router", e).path, "router.routes[0].host");
        let e = ConfigError::new("", crate::ConfigErrorKind::RouteKind);
        assert_eq!(under("balancer", e).path, "balancer");
        let e = ConfigError::new("[0]", crate::ConfigErrorKind::RouteKind);
        assert_eq!(under("router", e).path, "router[0]");
    }
}
