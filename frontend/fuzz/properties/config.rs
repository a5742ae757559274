//! The property of the `config_load` fuzz target, shared with the corpus replay in
//! pool-manager/tests/fuzz_corpus.rs: `load_str` turns any text into a `Config` or a
//! `ConfigError` that names a line, and never panics.

use std::path::Path;

/// Checks one input (bytes that are not UTF-8 are not a config file: skipped).
pub(crate) fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A base directory that exists, so that relative roots resolve (to nothing in particular).
    let base = Path::new("/nonexistent-paddock-fuzz-base");
    match pool_manager::config::load_str(text, "fuzz.toml", base) {
        Ok(_) => {}
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains("fuzz.toml"),
                "an error names the file: {message}"
            );
        }
    }
}
