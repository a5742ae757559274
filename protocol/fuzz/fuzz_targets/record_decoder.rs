//! Runs `protocol::fuzzing::record_decoder` (its doc says what it checks) on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| protocol::fuzzing::record_decoder(data));
