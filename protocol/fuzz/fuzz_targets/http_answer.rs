//! Runs `protocol::fuzzing::http_answer` (its doc says what it checks) on every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| protocol::fuzzing::http_answer(data));
