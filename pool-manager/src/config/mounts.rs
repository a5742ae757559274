//! `[sites.NAME.mounts.MOUNT]`: applications mounted at a URL prefix, which get every request
//! under it without a script file (docs/configuration.md, "Application mounts").

use std::collections::BTreeMap;
use std::path::Path;

use protocol::control::MountSpec;

use super::error::{invalid, Invalid};
use super::raw::{RawMount, RawPool};
use super::validate::route_pool;

/// The site's mounts, longest prefix first (the router takes the first that matches).
pub(super) fn validate_mounts(
    site: &str,
    raw: &BTreeMap<String, RawMount>,
    base: &Path,
    pools: &BTreeMap<String, RawPool>,
) -> Result<Vec<MountSpec>, Invalid> {
    let mut mounts: Vec<MountSpec> = Vec::new();
    for (name, mount) in raw {
        let at = ["sites", site, "mounts", name.as_str()];
        let key = |last: &'static str| {
            let mut key = at.to_vec();
            key.push(last);
            key
        };
        let prefix = mount_prefix(&mount.prefix).ok_or_else(|| {
            invalid(
                &key("prefix"),
                format!(
                    "{:?} is not a URL path prefix: it starts with /, e.g. \"/\" for the whole site or \"/app\", without \"//\", \".\" or \"..\" segments, spaces or control characters",
                    mount.prefix
                ),
            )
        })?;
        if let Some(other) = mounts.iter().find(|m| m.prefix == prefix) {
            return Err(invalid(
                &key("prefix"),
                format!(
                    "another mount of this site ({:?}, to pool {:?}) has the same prefix",
                    display_prefix(&other.prefix),
                    other.pool
                ),
            ));
        }
        let unbuffered = mount.unbuffered.clone().unwrap_or_default();
        if unbuffered.iter().any(|p| !p.starts_with('/')) {
            return Err(invalid(
                &key("unbuffered"),
                "list URL path prefixes starting with /, e.g. [\"/events/\"]",
            ));
        }
        let script_filename = match &mount.script_filename {
            None => None,
            Some(file) if file.as_os_str().is_empty() => {
                return Err(invalid(
                    &key("script_filename"),
                    "give a file path, or leave the key out to send no SCRIPT_FILENAME",
                ))
            }
            // Sent as it is to the application, which may run elsewhere (an external pool): it
            // need not exist here, but a relative one is relative to the config file as always.
            Some(file) => Some(base.join(file)),
        };
        mounts.push(MountSpec {
            prefix,
            pool: route_pool(&at, &mount.pool, pools)?,
            script_filename,
            static_first: mount.static_first.unwrap_or(false),
            unbuffered,
            compress: mount.compress.unwrap_or(true),
        });
    }
    mounts.sort_by_key(|m| std::cmp::Reverse(m.segments().count()));
    Ok(mounts)
}

/// `/app/` or `/app` → `/app`; `/` → "" (the whole site). `None` for anything that is not a
/// plain decoded path: the router matches it against decoded, normalised segments, so a prefix
/// with an empty, `.` or `..` segment, or a character no such segment holds, would never match.
fn mount_prefix(raw: &str) -> Option<String> {
    if raw == "/" {
        return Some(String::new());
    }
    let inner = raw.strip_prefix('/')?;
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    let plain = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && !segment.contains(|c: char| c.is_whitespace() || c.is_control() || c == '\\')
            && !segment.contains('%')
    };
    inner.split('/').all(plain).then(|| format!("/{inner}"))
}

fn display_prefix(prefix: &str) -> &str {
    if prefix.is_empty() {
        "/"
    } else {
        prefix
    }
}

#[cfg(test)]
mod tests {
    use super::mount_prefix;

    #[test]
    fn prefixes_are_normalised_or_refused() {
        assert_eq!(mount_prefix("/").as_deref(), Some(""));
        assert_eq!(mount_prefix("/app").as_deref(), Some("/app"));
        assert_eq!(mount_prefix("/app/").as_deref(), Some("/app"));
        assert_eq!(mount_prefix("/a/b/").as_deref(), Some("/a/b"));
        for bad in [
            "", "app", "//", "/a//b", "/a/../b", "/./a", "/a b", "/a%20b", "/a\\b",
        ] {
            assert_eq!(mount_prefix(bad), None, "{bad:?}");
        }
    }
}
