//! Runs `protocol::fuzzing::request_params` (its doc says what it checks) on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| protocol::fuzzing::request_params(data));
