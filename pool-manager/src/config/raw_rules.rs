//! The `[sites.NAME]` rule tables as written (`[[sites.NAME.deny]]`, `rewrite`, `headers`, …).
//! Each rule names its paths with exactly one of `prefix`, `glob` or `regex`; `rules.rs` checks
//! that and the rest.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeny {
    pub prefix: Option<String>,
    pub glob: Option<String>,
    pub regex: Option<String>,
    pub status: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNoScripts {
    pub prefix: Option<String>,
    pub glob: Option<String>,
    pub regex: Option<String>,
    /// "deny" (default) or "static".
    pub action: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRewrite {
    pub pattern: String,
    pub to: String,
    #[serde(default)]
    pub case_insensitive: bool,
    /// "file", "dir", "not_file", "not_dir".
    #[serde(default)]
    pub when: Vec<String>,
    /// "replace" (default), "append" or "discard".
    pub query: Option<String>,
    pub redirect: Option<u16>,
    pub last: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaders {
    pub prefix: Option<String>,
    pub glob: Option<String>,
    pub regex: Option<String>,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub unset: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub prefix: Option<String>,
    pub glob: Option<String>,
    pub regex: Option<String>,
    pub htpasswd: PathBuf,
    pub realm: Option<String>,
    #[serde(default)]
    pub users: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClients {
    pub prefix: Option<String>,
    pub glob: Option<String>,
    pub regex: Option<String>,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    pub status: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub prefix: Option<String>,
    pub glob: Option<String>,
    pub regex: Option<String>,
    /// "10/s", "30/m", "100/h".
    pub rate: String,
    pub burst: Option<u32>,
    #[serde(default)]
    pub methods: Vec<String>,
}
