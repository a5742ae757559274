//! `[sites.NAME.sendfile]`: where a worker's `X-Accel-Redirect` and `X-Sendfile` may point.

use std::path::{Path, PathBuf};

use protocol::control::SendfileSpec;
use serde::Deserialize;

use super::error::{invalid, Invalid};
use super::paths::existing_dir;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSendfile {
    #[serde(default)]
    pub internal: Vec<String>,
    #[serde(default)]
    pub roots: Vec<PathBuf>,
}

pub(super) fn validate(
    site: &str,
    raw: Option<&RawSendfile>,
    base: &Path,
) -> Result<SendfileSpec, Invalid> {
    let Some(raw) = raw else {
        return Ok(SendfileSpec::default());
    };
    let mut internal = Vec::new();
    for prefix in &raw.internal {
        let well_formed = prefix.len() > 1
            && prefix.starts_with('/')
            && prefix.ends_with('/')
            && !prefix.split('/').any(|s| s == ".." || s == ".")
            && prefix.bytes().all(|b| (0x21..0x7f).contains(&b));
        if !well_formed {
            return Err(invalid(
                &["sites", site, "sendfile", "internal"],
                format!("{prefix:?} must be a URL path that starts and ends with /, e.g. \"/protected/\""),
            ));
        }
        internal.push(prefix.clone());
    }
    let mut roots = Vec::new();
    for root in &raw.roots {
        let canonical = existing_dir(&["sites", site, "sendfile", "roots"], &base.join(root))?;
        if canonical == Path::new("/") {
            return Err(invalid(
                &["sites", site, "sendfile", "roots"],
                "the whole file system cannot be a root: name the directories the application's downloads live in",
            ));
        }
        roots.push(canonical);
    }
    Ok(SendfileSpec { internal, roots })
}
