#![no_main]

// Each target uses part of the shared module.
#[allow(dead_code)]
#[path = "../../tests/harness/src/fuzz_core.rs"]
mod fuzz_core;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_core::balancer(data));
