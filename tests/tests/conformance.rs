//! The conformance-style table (tests/conformance/*.yaml) run three ways: the generator's own
//! decision (`explain`), the compiled filters in host-sim, and a real Envoy in front of echo
//! backends. Each way reduces a case to what the client and the backend saw and checks it
//! against the same expectations.

use wasmgate_harness::conformance_runner::{run_all, Way};

fn assert_holds(way: Way) {
    let failures = run_all(way);
    assert!(
        failures.is_empty(),
        "{} conformance cases failed through {}:\n{}",
        failures.len(),
        way.key(),
        failures.join("\n")
    );
}

#[test]
fn every_conformance_case_holds_in_the_generators_explain() {
    assert_holds(Way::Explain);
}

#[test]
fn every_conformance_case_holds_in_host_sim() {
    assert_holds(Way::HostSim);
}

#[test]
fn every_conformance_case_holds_in_envoy() {
    assert_holds(Way::Envoy);
}
