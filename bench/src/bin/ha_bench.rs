//! The failover scenario at length: 200 requests/s with 2 Envoy workers on the generated
//! config of `configs/examples/ha-failover`, 5 s per phase (the test runs 2 s phases).

use std::time::Duration;

fn main() {
    let runs = 3;
    println!("failover with the generated config: 3 member clusters, 2 Envoy workers, 200 requests/s, 5 s phases, {runs} runs");
    for run in 1..=runs {
        match wasmgate_harness::failover::run_failover(Duration::from_secs(5), 200) {
            Ok(report) => {
                println!("run {run}");
                print!("{}", report.table());
            }
            Err(e) => {
                eprintln!("ha_bench: {e}");
                std::process::exit(1);
            }
        }
    }
}
