//! The streaming and compression settings that apply to a request sent to a pool: those of the
//! script route or the application mount that chose the pool.

use protocol::control::SiteSpec;

use crate::http::router::ScriptTarget;

#[derive(Debug)]
pub(crate) struct RouteSettings<'a> {
    pub pool: &'a str,
    /// URL path prefixes whose responses stream unbuffered.
    unbuffered: &'a [String],
    /// A mount matches them against the whole path (an app's URLs are not files); a script route
    /// against SCRIPT_NAME, the script's own URL.
    whole_path: bool,
    pub compress: bool,
}

impl<'a> RouteSettings<'a> {
    /// The settings for `target`; `mounted` when the router found it under a mount, whose
    /// SCRIPT_NAME is the mount's prefix (unique in a site: the config refuses two alike).
    pub(crate) fn of(site: &'a SiteSpec, target: &ScriptTarget, mounted: bool) -> Self {
        if mounted {
            let mount = site
                .mounts
                .iter()
                .find(|m| m.prefix == target.name)
                .expect("an application target comes from one of the site's mounts");
            return Self {
                pool: &mount.pool,
                unbuffered: &mount.unbuffered,
                whole_path: true,
                compress: mount.compress,
            };
        }
        let script = site
            .routes
            .iter()
            .chain(site.script.iter())
            .find(|route| route.pool == target.pool)
            .expect("a script target comes from one of the site's routes");
        Self {
            pool: &script.pool,
            unbuffered: &script.unbuffered,
            whole_path: false,
            compress: script.compress,
        }
    }

    /// Whether the response to `target` streams to the client as the worker writes it.
    pub(crate) fn unbuffered(&self, target: &ScriptTarget) -> bool {
        self.unbuffered.iter().any(|prefix| {
            if self.whole_path {
                // SCRIPT_NAME + PATH_INFO is the decoded request path.
                let name = &target.name;
                match prefix.strip_prefix(name.as_str()) {
                    Some(rest) => target.path_info.starts_with(rest),
                    None => name.starts_with(prefix.as_str()),
                }
            } else {
                target.name.starts_with(prefix.as_str())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, path_info: &str) -> ScriptTarget {
        ScriptTarget {
            pool: "app".into(),
            filename: None,
            name: name.into(),
            path_info: path_info.into(),
        }
    }

    #[test]
    fn a_mount_streams_by_the_whole_path_a_script_route_by_its_name() {
        let prefixes = ["/app/events".to_string(), "/feed".to_string()];
        let mount = RouteSettings {
            pool: "app",
            unbuffered: &prefixes,
            whole_path: true,
            compress: true,
        };
        assert!(mount.unbuffered(&target("/app", "/events/1")));
        assert!(!mount.unbuffered(&target("/app", "/other")));
        assert!(mount.unbuffered(&target("", "/feed")));
        assert!(!mount.unbuffered(&target("", "/app")));
        let script = RouteSettings {
            whole_path: false,
            ..mount
        };
        assert!(!script.unbuffered(&target("/index.php", "/feed")));
        assert!(script.unbuffered(&target("/feed.php", "")));
    }
}
