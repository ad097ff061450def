#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgate_harness::fuzz_targets::hostsim_abi(data));
