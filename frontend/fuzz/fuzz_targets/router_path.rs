//! Router path resolution: whatever the path, a resolved file stays under the document root.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../properties/router.rs"]
mod property;

fuzz_target!(|data: &[u8]| {
    property::check(data);
});
