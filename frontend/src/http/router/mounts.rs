//! Application mounts: every request under a URL prefix goes to one pool, which routes it itself
//! (a WSGI, Rack or Go FastCGI server has no script file per URL). SCRIPT_NAME is the mount's
//! path and PATH_INFO the rest of the request's, as nginx's `location /app { fastcgi_pass … }`
//! with `fastcgi_split_path_info` would send them, and as a WSGI app expects to rebuild its URLs.
//!
//! With `static_first`, a regular file under the root that the path names is served as it is
//! (or, on a site that also has scripts, a script runs), like `try_files $uri @app`: only a
//! file, never a directory or its index, so `/` still reaches the application.

use protocol::cgi::UrlPath;
use protocol::control::{MountSpec, SiteSpec};

use super::{Route, ScriptTarget};

/// The mount a path is under: the one with the longest prefix (the site keeps them sorted so).
pub(super) fn mount_for<'a>(site: &'a SiteSpec, path: &UrlPath) -> Option<&'a MountSpec> {
    site.mounts.iter().find(|mount| {
        let mut segments = path.segments().iter();
        mount
            .segments()
            .all(|m| segments.next().is_some_and(|s| s == m))
    })
}

/// The route for `path` under `mount`; `walk` is the site's file walk, asked first when the
/// mount serves existing files itself.
pub(super) fn route(
    mount: &MountSpec,
    raw_path: &str,
    path: &UrlPath,
    walk: impl FnOnce() -> Route,
) -> Route {
    if mount.static_first && !raw_path.ends_with('/') {
        match walk() {
            found @ (Route::Static(_) | Route::Script(_)) => return found,
            // A bad path is bad for the application too.
            bad @ Route::BadRequest(_) => return bad,
            Route::App(_) | Route::AddSlash(_) | Route::NotFound => {}
        }
    }
    let (name, path_info) = path.split_after(mount.segments().count());
    Route::App(ScriptTarget {
        pool: mount.pool.clone(),
        filename: mount.script_filename.clone(),
        name,
        path_info,
    })
}
