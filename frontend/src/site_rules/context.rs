//! What the rewrite engine may ask about a request: server variables and the file system under
//! the site's root (through the router's symlink policy, so a condition can never see past it).

use std::cell::RefCell;
use std::path::{Component, Path};

use http::request::Parts;
use protocol::control::SiteSpec;
use rules::rewrite::{FileKind, RewriteContext};

use super::verdict_cache::Reads;
use super::Client;
use crate::http::stat_memo::StatMemo;

pub(super) struct RequestContext<'a> {
    site: &'a SiteSpec,
    parts: &'a Parts,
    client: Client,
    /// The last URL path mapped to a file, and the last file-system path tested: rewrite
    /// conditions ask about the same name again and again (`!-f` then `!-d`), and every
    /// answer is a walk of stats.
    mapped: RefCell<Option<(String, String)>>,
    kind: RefCell<Option<(String, FileKind)>>,
    /// Every file-system answer of the request, handed on to the router.
    pub(super) stats: StatMemo,
    /// What else the evaluation read, for the verdict cache.
    reads: RefCell<Reads>,
}

impl<'a> RequestContext<'a> {
    pub(super) fn new(site: &'a SiteSpec, parts: &'a Parts, client: Client) -> Self {
        Self {
            site,
            parts,
            client,
            mapped: RefCell::new(None),
            kind: RefCell::new(None),
            stats: StatMemo::default(),
            reads: RefCell::default(),
        }
    }

    /// What the rules phase found on disk, for the router's walk, and what else it read.
    pub(super) fn into_parts(self) -> (StatMemo, Reads) {
        (self.stats, self.reads.into_inner())
    }

    /// Notes something the evaluation read outside [`RewriteContext`] (the client's address, an
    /// unwatched `.htaccess`, …).
    pub(super) fn reads(&self) -> std::cell::RefMut<'_, Reads> {
        self.reads.borrow_mut()
    }

    /// What `url_path` maps to, found by a walk the caller already made.
    pub(super) fn remember_mapped(&self, url_path: &str, file: &Path) {
        *self.mapped.borrow_mut() =
            Some((url_path.to_string(), file.to_string_lossy().into_owned()));
    }

    fn header(&self, name: &str) -> Option<String> {
        self.parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

impl RewriteContext for RequestContext<'_> {
    /// The one place rewrite conditions, templates, `SetEnvIf` and `Require env` ask about
    /// the request: each answer is recorded for the verdict cache.
    fn variable(&self, name: &str) -> Option<String> {
        let value = self.server_variable(name);
        self.reads.borrow_mut().variable(name, &value);
        value
    }

    fn file_kind(&self, path: &str) -> FileKind {
        if let Some((known, kind)) = &*self.kind.borrow() {
            if known == path {
                return *kind;
            }
        }
        let kind = self.look_up(path);
        *self.kind.borrow_mut() = Some((path.to_string(), kind));
        kind
    }

    fn is_symlink(&self, path: &str) -> bool {
        // An answer the stat memo does not hold: nothing could tell a cached verdict that the
        // link appeared or went.
        self.reads.borrow_mut().refuse("a symbolic-link test");
        std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    }

    fn file_path(&self, url_path: &str) -> Option<String> {
        if let Some((url, file)) = &*self.mapped.borrow() {
            if url == url_path {
                return Some(file.clone());
            }
        }
        let file = mapped_file(self.site, url_path, &self.stats)
            .to_string_lossy()
            .into_owned();
        *self.mapped.borrow_mut() = Some((url_path.to_string(), file.clone()));
        Some(file)
    }
}

impl RequestContext<'_> {
    /// A server variable's value, unrecorded.
    pub(super) fn server_variable(&self, name: &str) -> Option<String> {
        let parts = self.parts;
        if let Some(header) = name.strip_prefix("HTTP:") {
            return self.header(header);
        }
        match name {
            // Apache's `%{REQUEST_URI}` is `r->uri`: the path decoded and normalised, so that
            // `%{DOCUMENT_ROOT}%{REQUEST_URI} -f` names the file however the client spelled it
            // (`THE_REQUEST` keeps the spelling; PHP's REQUEST_URI does too).
            "REQUEST_URI" => Some(
                super::decoded_path(parts.uri.path())
                    .unwrap_or_else(|| parts.uri.path().to_string()),
            ),
            "QUERY_STRING" => Some(parts.uri.query().unwrap_or_default().to_string()),
            "REQUEST_METHOD" => Some(parts.method.to_string()),
            "HTTPS" => Some(if self.client.https { "on" } else { "off" }.to_string()),
            "REQUEST_SCHEME" => Some(if self.client.https { "https" } else { "http" }.to_string()),
            "HTTP_HOST" => self
                .header("host")
                .or_else(|| parts.uri.authority().map(|a| a.to_string())),
            "SERVER_NAME" => self
                .header("host")
                .map(|h| crate::http::vhost::normalize(&h)),
            "REMOTE_ADDR" => Some(self.client.ip.to_string()),
            "DOCUMENT_ROOT" => Some(self.site.root.display().to_string()),
            "REQUEST_FILENAME" | "SCRIPT_FILENAME" => self.file_path(parts.uri.path()),
            "HTTP_USER_AGENT" => self.header("user-agent"),
            "HTTP_REFERER" => self.header("referer"),
            "HTTP_COOKIE" => self.header("cookie"),
            "HTTP_ACCEPT" => self.header("accept"),
            "THE_REQUEST" => Some(format!(
                "{} {} {:?}",
                parts.method,
                parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
                parts.version
            )),
            _ => None,
        }
    }

    fn look_up(&self, path: &str) -> FileKind {
        let path = Path::new(path);
        // Only below the root, and only as the router would follow it.
        let climbs = path.components().any(|c| c == Component::ParentDir);
        if climbs || !path.starts_with(&self.site.root) {
            return FileKind::Missing;
        }
        match self.stats.allowed_metadata(self.site, path) {
            Some(meta) if meta.is_file() => FileKind::File { size: meta.len() },
            Some(meta) if meta.is_dir() => FileKind::Dir,
            _ => FileKind::Missing,
        }
    }
}

/// The file a decoded URL path maps to, as Apache's directory walk finds it (`REQUEST_FILENAME`):
/// directories are entered while they exist; the first segment that is a file, or that does
/// not exist, ends the walk, and the rest of the path is PATH_INFO. So `/uploads/x.php/y` maps
/// to `uploads/x.php`, and `<Files *.php>` and `-f` see that file.
pub(super) fn mapped_file(site: &SiteSpec, url_path: &str, stats: &StatMemo) -> std::path::PathBuf {
    let mut path = site.root.clone();
    for segment in url_path.split('/').filter(|s| !s.is_empty()) {
        path.push(segment);
        let is_dir = stats
            .allowed_metadata(site, &path)
            .is_some_and(|m| m.is_dir());
        if !is_dir {
            break;
        }
    }
    path
}
