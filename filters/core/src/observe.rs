//! What the filters tell operators: the filter-state values an Envoy access log prints, and
//! the names of their stats. Kept here so the filters, the generator (which writes the access
//! log format) and the tests agree on one spelling.

use crate::config::RouterConfig;
use crate::multicluster::Reason;
use crate::RuleRef;

/// Filter state the router sets per request: the matched host and rule.
pub const ROUTE_STATE: &str = "wasmgate.route";
/// Filter state the balancer sets per request: the chosen member cluster and why.
pub const MEMBER_STATE: &str = "wasmgate.member";
/// Envoy stores a Wasm module's `set_property(key)` as filter state `wasm.<key>`
/// (`CelStateKeyPrefix` in Envoy's Wasm extension), so an access log reads
/// `%FILTER_STATE(wasm.wasmgate.route:PLAIN)%`.
pub const ENVOY_FILTER_STATE_PREFIX: &str = "wasm.";

/// The access-log operator that prints `key` as set by a filter, unquoted.
pub fn access_log_operator(key: &str) -> String {
    format!("%FILTER_STATE({ENVOY_FILTER_STATE_PREFIX}{key}:PLAIN)%")
}

/// `wasmgate.route`: `<host> rules[<i>]`, where host is the router's host pattern as
/// configured (`*` for the catch-all) and `i` the rule's index in it.
pub fn route_state(host: &str, rule: usize) -> String {
    let host = if host.is_empty() { "*" } else { host };
    format!("{host} rules[{rule}]")
}

/// `wasmgate.route` when no rule matched.
pub const ROUTE_STATE_NO_MATCH: &str = "- no-match";

/// Why a member was chosen, as the access log prints it.
pub fn reason_name(reason: Reason) -> &'static str {
    match reason {
        Reason::Weighted => "weight",
        Reason::Affinity => "affinity",
        Reason::CanaryForced => "canary",
        Reason::CanaryShare => "canary-share",
        Reason::Panic => "panic",
    }
}

/// `wasmgate.member`: `<service>/<member> <why>`, with ` spillover` when the member is outside
/// the proxy's zone tier (locality failover moved the request there).
pub fn member_state(service: &str, member: &str, reason: Reason, tier: u8) -> String {
    let spill = if tier > 0 && reason != Reason::Panic {
        " spillover"
    } else {
        ""
    };
    format!("{service}/{member} {}{spill}", reason_name(reason))
}

/// A stat-name segment from a host pattern: Envoy splits stat names on dots for tags but
/// keeps them; `*` (a wildcard or the catch-all) becomes `_`, anything outside
/// `[A-Za-z0-9._-]` becomes `_`.
pub fn stat_segment(host: &str) -> String {
    if host.is_empty() || host == "*" {
        return "_".into();
    }
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// What the router's observability needs to know of each rule, from its config: the host it
/// belongs to (as a filter-state value and as a stat segment).
#[derive(Debug, Clone, Default)]
pub struct RouteLabels {
    /// Per `routes[i]`: (host as configured, host as a stat segment); `None` for TCP routes.
    hosts: Vec<Option<(String, String)>>,
    /// Per `routes[i]`: the flat index of its first HTTP rule (see [`RouteLabels::rule_index`]).
    first_rule: Vec<usize>,
    rules: usize,
}

impl RouteLabels {
    pub fn new(config: &RouterConfig) -> Self {
        let mut rules = 0;
        let first_rule = config
            .routes
            .iter()
            .map(|r| {
                let first = rules;
                rules += r.http.as_ref().map_or(0, |h| h.rules.len());
                first
            })
            .collect();
        RouteLabels {
            first_rule,
            rules,
            hosts: config
                .routes
                .iter()
                .map(|r| {
                    r.http
                        .as_ref()
                        .map(|h| (h.host.clone(), stat_segment(&h.host)))
                })
                .collect(),
        }
    }

    /// How many HTTP rules the config has: the bound of [`RouteLabels::rule_index`].
    pub fn rule_count(&self) -> usize {
        self.rules
    }

    /// A dense index of an HTTP rule over the whole config (rules of `routes[0]` first), so a
    /// filter can keep per-rule state in a vector; `None` for a rule the config lacks.
    pub fn rule_index(&self, rule: RuleRef) -> Option<usize> {
        let first = *self.first_rule.get(rule.route)?;
        let next = self
            .first_rule
            .get(rule.route + 1)
            .copied()
            .unwrap_or(self.rules);
        let i = first + rule.rule;
        (i < next).then_some(i)
    }

    /// The `wasmgate.route` value of every HTTP rule, in [`RouteLabels::rule_index`] order.
    pub fn route_states(&self) -> Vec<String> {
        (0..self.hosts.len())
            .flat_map(|route| {
                let first = self.first_rule.get(route).copied().unwrap_or(self.rules);
                let next = self
                    .first_rule
                    .get(route + 1)
                    .copied()
                    .unwrap_or(self.rules);
                (0..next.saturating_sub(first))
                    .map(move |rule| self.route_state(RuleRef { route, rule }))
            })
            .collect()
    }

    /// The `wasmgate.route` value of a matched rule.
    pub fn route_state(&self, rule: RuleRef) -> String {
        route_state(self.host(rule.route), rule.rule)
    }

    fn host(&self, route: usize) -> &str {
        self.hosts
            .get(route)
            .and_then(|h| h.as_ref())
            .map_or("*", |(h, _)| h.as_str())
    }

    /// Stat name prefix of a route's host: `wasmgate.router.host.<host>`.
    pub fn host_stat(&self, route: usize) -> String {
        let seg = self
            .hosts
            .get(route)
            .and_then(|h| h.as_ref())
            .map_or("_", |(_, s)| s.as_str());
        format!("wasmgate.router.host.{seg}")
    }

    /// `wasmgate.router.host.<host>.rule.<i>.matched`: requests a rule matched.
    pub fn rule_matched_stat(&self, rule: RuleRef) -> String {
        format!("{}.rule.{}.matched", self.host_stat(rule.route), rule.rule)
    }
}

/// `wasmgate.router.no_match`: requests no rule matched.
pub const ROUTER_NO_MATCH_STAT: &str = "wasmgate.router.no_match";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_state_values_name_host_rule_member_and_why() {
        let cases = [
            (route_state("foo.com", 2), "foo.com rules[2]"),
            (route_state("", 0), "* rules[0]"),
            (
                member_state("shop", "us-east", Reason::Weighted, 0),
                "shop/us-east weight",
            ),
            (
                member_state("shop", "eu", Reason::Affinity, 2),
                "shop/eu affinity spillover",
            ),
            (
                member_state("shop", "eu", Reason::Panic, 2),
                "shop/eu panic",
            ),
            (
                member_state("shop", "c", Reason::CanaryForced, 0),
                "shop/c canary",
            ),
            (
                access_log_operator(ROUTE_STATE),
                "%FILTER_STATE(wasm.wasmgate.route:PLAIN)%",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn route_labels_name_rules_by_host_and_index() {
        let config: RouterConfig = crate::error::from_json(
            br#"{"routes": [{"tcp": {"port": 9000, "rules": []}},
                           {"http": {"host": "*.shop.com", "rules": [{"statusCode": {"code": 418}}]}}]}"#,
        )
        .unwrap();
        let labels = RouteLabels::new(&config);
        let rule = RuleRef { route: 1, rule: 0 };
        assert_eq!(labels.route_state(rule), "*.shop.com rules[0]");
        assert_eq!(
            labels.rule_matched_stat(rule),
            "wasmgate.router.host._.shop.com.rule.0.matched"
        );
        assert_eq!(labels.host_stat(7), "wasmgate.router.host._");
    }

    #[test]
    fn rule_indexes_are_dense_over_http_rules_and_none_outside_them() {
        let config: RouterConfig = crate::error::from_json(
            br#"{"routes": [{"http": {"host": "a", "rules": [{"statusCode": {"code": 200}}, {"statusCode": {"code": 201}}]}},
                           {"tcp": {"port": 9000, "rules": []}},
                           {"http": {"host": "b", "rules": [{"statusCode": {"code": 418}}]}}]}"#,
        )
        .unwrap();
        let labels = RouteLabels::new(&config);
        let at = |route, rule| labels.rule_index(RuleRef { route, rule });
        assert_eq!(labels.rule_count(), 3);
        assert_eq!(
            labels.route_states(),
            ["a rules[0]", "a rules[1]", "b rules[0]"]
        );
        let cases = [
            ((0, 0), Some(0)),
            ((0, 1), Some(1)),
            ((0, 2), None),
            ((1, 0), None),
            ((2, 0), Some(2)),
            ((2, 1), None),
            ((3, 0), None),
        ];
        for ((route, rule), want) in cases {
            assert_eq!(at(route, rule), want, "routes[{route}].rules[{rule}]");
        }
    }

    #[test]
    fn stat_segments_keep_dots_and_replace_wildcards() {
        for (host, want) in [
            ("foo.com", "foo.com"),
            ("*.Foo.com", "_.foo.com"),
            ("*", "_"),
            ("", "_"),
        ] {
            assert_eq!(stat_segment(host), want, "{host}");
        }
    }
}
