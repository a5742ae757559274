//! Config loading: any text is either a valid configuration or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../properties/config.rs"]
mod property;

fuzz_target!(|data: &[u8]| {
    property::check(data);
});
