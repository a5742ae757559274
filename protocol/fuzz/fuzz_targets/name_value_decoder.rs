//! Runs `protocol::fuzzing::name_value_decoder` (its doc says what it checks) on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| protocol::fuzzing::name_value_decoder(data));
