#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgate_core_fuzz_targets::config(data));
