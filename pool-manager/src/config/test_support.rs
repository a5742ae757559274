//! What the config tests share: a minimal valid site, and loading a text as `test.toml`.

use std::path::Path;

use super::*;

/// One HTTP listener and one site: the least a valid config has.
pub(super) const MINIMAL: &str = r#"
[listeners.web]
kind = "http"
address = "127.0.0.1:0"

[sites.main]
root = "deploy/demo"
"#;

pub(super) fn load(text: &str) -> Result<Config, ConfigError> {
    load_str(text, "test.toml", Path::new(EMBEDDED_BASE_DIR))
}

/// [`MINIMAL`] with a pool `app` of `mode` whose other lines are `body`.
pub(super) fn pool_text(mode: &str, body: &str) -> String {
    format!("{MINIMAL}\n[pools.app]\nmode = \"{mode}\"\n{body}\n")
}

pub(super) fn load_pool(mode: &str, body: &str) -> Result<Config, ConfigError> {
    load(&pool_text(mode, body))
}
