//! Site rules and `.htaccess`: whatever the request target, no protected file is served or run.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../properties/rules.rs"]
mod property;

fuzz_target!(|data: &[u8]| {
    property::check(data);
});
