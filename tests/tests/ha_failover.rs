//! High availability with the generated config alone, in a real Envoy with 2 workers:
//! members die abruptly, drain, lose a whole region and come back under steady traffic.
//! The longer run with the README's figures is `make bench` (`ha_bench`).

use std::time::Duration;

use wasmgate_harness::failover::{self, run_failover};

#[test]
fn generated_config_fails_over_with_few_losses_keeps_affinity_and_recovers_within_two_checks() {
    let report = run_failover(Duration::from_millis(2000), 200).unwrap();
    eprintln!("{}", report.table());
    let lost = |name: &str| report.phase(name).unwrap().lost;
    assert_eq!(lost(failover::WARM), 0, "{}", report.table());
    assert!(lost(failover::KILL_ONE) <= 5, "{}", report.table());
    assert_eq!(lost(failover::DRAIN_ONE), 0, "{}", report.table());
    assert!(lost(failover::KILL_REGION) <= 5, "{}", report.table());
    for back in [
        failover::BACK_ONE,
        failover::BACK_DRAINED,
        failover::BACK_REGION,
    ] {
        assert_eq!(lost(back), 0, "{}", report.table());
        let after = report.phase(back).unwrap().recovered_after.unwrap();
        assert!(
            after <= report.check_interval * 2,
            "{back}: traffic back after {after:?}\n{}",
            report.table()
        );
    }
    assert!(report.moved_keys.is_empty(), "{:#?}", report.moved_keys);

    // The health signals are visible in Envoy's stats.
    let stat = |name: &str| {
        report
            .stats
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    };
    let base = "wasmcustom.wasmgate.balancer.shop";
    let us_east_out = stat(&format!("{base}.us-east.ejections")).unwrap_or(0)
        + stat(&format!("{base}.us-east.health_check_down")).unwrap_or(0);
    assert!(us_east_out >= 1, "{:#?}", report.stats);
    for m in ["us-east", "us-west", "eu-west"] {
        assert_eq!(
            stat(&format!("{base}.{m}.healthy")),
            Some(1),
            "{m} is back: {:#?}",
            report.stats
        );
        assert_eq!(
            stat(&format!("{base}.{m}.ejected")),
            Some(0),
            "{m}: {:#?}",
            report.stats
        );
    }
    assert!(
        stat("wasmcustom.wasmgate.router.host.shop.example.rule.0.matched").unwrap_or(0)
            >= report.phases.iter().map(|p| p.sent as u64).sum::<u64>() - 50,
        "{:#?}",
        report.stats
    );

    // Every request's access-log entry says which rule matched and which member served why.
    let status = |e: &serde_json::Value| {
        e["status"]
            .as_u64()
            .or_else(|| e["status"].as_str()?.parse().ok())
    };
    let served: Vec<&serde_json::Value> = report
        .access_log
        .iter()
        .filter(|e| status(e) == Some(200))
        .collect();
    assert!(served.len() > 1000, "{} entries", report.access_log.len());
    for e in &served {
        assert_eq!(e["route"], "shop.example rules[0]", "{e}");
        let member = e["member"].as_str().unwrap_or_default();
        assert!(
            ["us-east", "us-west", "eu-west"]
                .iter()
                .any(|m| member == format!("shop/{m} affinity")),
            "{e}"
        );
    }
}
