//! Runs `protocol::fuzzing::response_head` (its doc says what it checks) on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| protocol::fuzzing::response_head(data));
