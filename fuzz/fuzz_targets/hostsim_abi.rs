#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgate_tests::fuzz::hostsim_abi(data));
