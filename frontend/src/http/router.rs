//! Maps a request to what serves it: a static file, a script in a pool, a redirect, or an error.
//!
//! The front end resolves scripts itself, so a worker only ever runs a file that exists under the
//! document root with an allowed extension. The walk goes segment by segment from the root: the
//! first segment that is a regular file ends the walk. If that file is a script, the rest of the
//! path is PATH_INFO; if it is anything else and path segments remain, the request is a 404. That is
//! what keeps `/upload/x.jpg/foo.php` from ever executing `x.jpg` (the classic `cgi.fix_pathinfo`
//! hole), and PATH_INFO is found without regexes (the php-fpm CVE-2019-11043 came from one): the
//! path decoding and the SCRIPT_NAME / PATH_INFO split are `protocol::cgi::decode_url_path` and
//! `UrlPath::split_at_script`, fuzzed there.
//!
//! Paths that match nothing go to the front controller when the site has one, as nginx's
//! `try_files $uri $uri/ /index.php` does; a missing path that names a script is a plain 404.
//!
//! Application mounts (`mounts`) come first: a path under one goes to its pool whole, with no
//! file on disk (see `mounts.rs`).

use std::path::{Path, PathBuf};

use std::os::unix::fs::MetadataExt;

use protocol::cgi;
use protocol::control::{ScriptRouteSpec, SiteSpec, SymlinkPolicy};

use super::stat_memo::StatMemo;

/// What a request resolves to.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Static(StaticFile),
    Script(ScriptTarget),
    /// A request for an application mounted at a URL prefix: no script file, the app routes.
    App(ScriptTarget),
    /// Permanent redirect to the same path with a trailing slash (a directory was named).
    AddSlash(String),
    NotFound,
    BadRequest(&'static str),
}

impl Route {
    /// The file a static route serves.
    pub fn static_path(self) -> Option<PathBuf> {
        match self {
            Route::Static(file) => Some(file.path),
            _ => None,
        }
    }
}

/// A file to serve as it is, with the metadata the walk found (of the symlink's target, for a
/// link), so that serving it needs no second stat.
#[derive(Debug)]
pub struct StaticFile {
    pub path: PathBuf,
    pub meta: std::fs::Metadata,
}

impl StaticFile {
    /// The file at `path` as it is now (for tests and tools; the router has the metadata).
    pub fn at(path: PathBuf) -> std::io::Result<Self> {
        let meta = std::fs::metadata(&path)?;
        Ok(Self { path, meta })
    }
}

/// Two routes to the same file are the same route, whenever their metadata was read.
impl PartialEq for StaticFile {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for StaticFile {}

#[derive(Debug, PartialEq, Eq)]
pub struct ScriptTarget {
    /// The pool that runs it.
    pub pool: String,
    /// Absolute filesystem path of the script (SCRIPT_FILENAME); an application mount has one
    /// only when configured.
    pub filename: Option<PathBuf>,
    /// URL path of the script (decoded), e.g. `/index.php`, or of the mount (SCRIPT_NAME).
    pub name: String,
    /// Decoded path after the script, e.g. `/extra` for `/index.php/extra`; empty when none.
    pub path_info: String,
}

/// Resolves the URL path `raw_path` (still percent-encoded, no query) against `site`.
pub fn route(site: &SiteSpec, raw_path: &str) -> Route {
    route_with_index(site, raw_path, &site.index, &StatMemo::default())
}

/// [`route`] with another list of index files for directories (an `.htaccess`
/// `DirectoryIndex`), and what the request's rules phase already found on disk.
pub(crate) fn route_with_index(
    site: &SiteSpec,
    raw_path: &str,
    index: &[String],
    memo: &StatMemo,
) -> Route {
    let path = match cgi::decode_url_path(raw_path) {
        Ok(path) => path,
        Err(e) => return Route::BadRequest(e.reason()),
    };
    if let Some(mount) = mounts::mount_for(site, &path) {
        return mounts::route(mount, raw_path, &path, || {
            walk(site, raw_path, &path, index, memo)
        });
    }
    walk(site, raw_path, &path, index, memo)
}

/// The walk from the root described at the top of this file.
/// Room left in a walk's path buffer for an index file's name.
const MAX_INDEX_NAME: usize = 16;

fn walk(
    site: &SiteSpec,
    raw_path: &str,
    path: &cgi::UrlPath,
    index: &[String],
    memo: &StatMemo,
) -> Route {
    let segments = path.segments();
    if segments.iter().any(|s| is_hidden(s) || is_backup(s)) {
        return Route::NotFound;
    }
    let script = script_route(site, segments);
    // One buffer for the whole walk, sized for it: a `join` per segment allocated a path and
    // grew it again on every level.
    let mut candidate =
        PathBuf::with_capacity(site.root.as_os_str().len() + raw_path.len() + MAX_INDEX_NAME);
    candidate.push(&site.root);
    for (i, segment) in segments.iter().enumerate() {
        candidate.push(segment);
        let Some(meta) = memo.recalled_or_stat(site, &candidate) else {
            return fallback(site, script, segment, memo);
        };
        if meta.is_dir() {
            continue;
        }
        if !meta.is_file() {
            return Route::NotFound;
        }
        if script.is_some_and(|s| is_script(s, segment)) {
            let (name, path_info) = path.split_at_script(i);
            return Route::Script(ScriptTarget {
                pool: script.map(|s| s.pool.clone()).unwrap_or_default(),
                filename: Some(candidate),
                name,
                path_info,
            });
        }
        // A non-script file followed by more path (even a bare `/`): never serve or execute it.
        return if i + 1 == segments.len() && !raw_path.ends_with('/') {
            Route::Static(StaticFile {
                path: candidate,
                meta,
            })
        } else {
            Route::NotFound
        };
    }
    // The whole path is a directory. Leading slashes are collapsed: `//dir/` in a Location
    // header would be a protocol-relative URL, a redirect to the host `dir` (found by fuzzing).
    if !raw_path.ends_with('/') {
        return Route::AddSlash(format!("/{}/", raw_path.trim_start_matches('/')));
    }
    let dir = candidate;
    let dir_url = segments.iter().fold(String::new(), |acc, s| acc + "/" + s) + "/";
    for index in index {
        let candidate = dir.join(index);
        if let Some(meta) = memo
            .recalled_or_stat(site, &candidate)
            .filter(|m| m.is_file())
        {
            if script.is_some_and(|s| is_script(s, index)) {
                return Route::Script(ScriptTarget {
                    pool: script.map(|s| s.pool.clone()).unwrap_or_default(),
                    filename: Some(candidate),
                    name: format!("{dir_url}{index}"),
                    path_info: String::new(),
                });
            }
            return Route::Static(StaticFile {
                path: candidate,
                meta,
            });
        }
    }
    fallback(site, script, "", memo)
}

/// Nothing on disk matched: the front controller takes it, unless the path named a script.
fn fallback(
    site: &SiteSpec,
    script: Option<&ScriptRouteSpec>,
    segment: &str,
    memo: &StatMemo,
) -> Route {
    let Some(script) = script else {
        return Route::NotFound;
    };
    if is_script(script, segment) {
        return Route::NotFound;
    }
    let Some(front) = &script.front_controller else {
        return Route::NotFound;
    };
    let filename = site.root.join(front.trim_start_matches('/'));
    match memo.recalled_or_stat(site, &filename) {
        Some(meta) if meta.is_file() => Route::Script(ScriptTarget {
            pool: script.pool.clone(),
            filename: Some(filename),
            name: front.clone(),
            path_info: String::new(),
        }),
        _ => Route::NotFound,
    }
}

/// The script route for a path: the longest matching prefix route, else the site's default.
fn script_route<'a>(site: &'a SiteSpec, segments: &[String]) -> Option<&'a ScriptRouteSpec> {
    let path = segments.iter().fold(String::new(), |acc, s| acc + "/" + s) + "/";
    site.routes
        .iter()
        .find(|r| {
            r.prefix
                .as_ref()
                .is_some_and(|p| path.starts_with(p.as_str()))
        })
        .or(site.script.as_ref())
}

fn is_script(script: &ScriptRouteSpec, file_name: &str) -> bool {
    file_name
        .rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && script.extensions.iter().any(|e| e == ext))
}

/// Editor and backup copies (`wp-config.php~`, `config.php.bak`, `.orig`, `.old`, `.swp`): they
/// hold a script's source under a name that no longer runs it, so they are never served.
fn is_backup(segment: &str) -> bool {
    segment.ends_with('~')
        || segment.rsplit_once('.').is_some_and(|(stem, ext)| {
            !stem.is_empty() && ["bak", "swp", "orig", "old"].contains(&ext)
        })
}

/// Dotfiles (`.git`, `.env`, `.htaccess`) are never served; `.well-known` is the one exception.
fn is_hidden(segment: &str) -> bool {
    segment.starts_with('.') && segment != ".well-known"
}

/// Metadata of `path` (its target's, for a symlink) if it exists and the site's symlink policy
/// lets the front end follow it. The walk in [`route`] calls this for every segment, so a
/// symlinked directory on the way is checked as well as the final file.
pub fn allowed_metadata(site: &SiteSpec, path: &Path) -> Option<std::fs::Metadata> {
    allowed_metadata_and_link(site, path).0
}

/// [`allowed_metadata`], and whether `path` is a symbolic link (then the answer depends on the
/// link's target and on the symlink policy, not only on `path`'s directory).
pub(crate) fn allowed_metadata_and_link(
    site: &SiteSpec,
    path: &Path,
) -> (Option<std::fs::Metadata>, bool) {
    #[cfg(test)]
    stat_count::add();
    let Ok(link) = std::fs::symlink_metadata(path) else {
        return (None, false);
    };
    if !link.file_type().is_symlink() {
        return (Some(link), false);
    }
    (followed_link(site, path, &link), true)
}

/// The target's metadata of the symbolic link `path` (whose own is `link`), if the site's
/// symlink policy lets the front end follow it.
fn followed_link(
    site: &SiteSpec,
    path: &Path,
    link: &std::fs::Metadata,
) -> Option<std::fs::Metadata> {
    let target = std::fs::metadata(path).ok()?;
    let allowed = match site.symlinks {
        SymlinkPolicy::Always => true,
        // Apache's SymLinksIfOwnerMatch, nginx's `disable_symlinks if_not_owner`: whoever owns
        // the link also owns what it points to, so the link grants no access its owner lacked.
        SymlinkPolicy::OwnerMatch => link.uid() == target.uid(),
        SymlinkPolicy::InsideRoot => path
            .canonicalize()
            .is_ok_and(|real| real.starts_with(&site.root)),
    };
    allowed.then_some(target)
}

mod mounts;

/// How many times this thread asked the file system through [`allowed_metadata_and_link`]
/// (tests of what is answered without asking).
#[cfg(test)]
pub(crate) mod stat_count {
    use std::cell::Cell;

    thread_local! {
        static STATS: Cell<u64> = const { Cell::new(0) };
    }

    pub(crate) fn add() {
        STATS.with(|n| n.set(n.get() + 1));
    }

    pub(crate) fn get() -> u64 {
        STATS.with(Cell::get)
    }
}

#[cfg(test)]
mod tests;
