//! `.htaccess` files as the request path meets them: the document root's and each directory's on
//! the way to the file, parsed once per file version and validated with one `stat` per
//! directory per request, so an edited, new or removed file counts from the next request on,
//! with no reload (the static file cache works the same way).
//!
//! Only directories the router would enter are looked at (the site's symlink policy applies), and
//! a file's notes (directives paddock ignores or does not know) are logged once per version,
//! with the file and line.
//!
//! A directory without a file costs no stat of its own beyond the directory's: creating,
//! removing or renaming an entry changes the directory's modification time, so "no `.htaccess`
//! here" is remembered with that time and believed while it holds. A file that exists is
//! stat-checked on every request (an edit in place changes only the file).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dashmap::DashMap;
use protocol::control::SiteSpec;
use rules::htaccess::{DirRules, NoteKind};
use tracing::{debug, warn};

use crate::http::router;
use crate::static_files::file_cache::Identity;

const FILE_NAME: &str = ".htaccess";
/// A larger file is refused (fail closed) rather than read into memory.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Parsed files by directory.
#[derive(Debug, Default)]
pub struct HtaccessFiles {
    files: DashMap<PathBuf, Entry>,
}

#[derive(Debug, Clone)]
enum Entry {
    /// The directory had no file when its modification time was this.
    Absent {
        dir_mtime: (i64, i64),
    },
    Present(Identity, Arc<DirRules>),
}

/// Within a second of a directory's last change its modification time is not trusted: the
/// kernel stamps it from a coarse clock (a few milliseconds), so two changes close together can
/// leave the same time, and a file created by the second would go unseen.
fn recently_changed(meta: &std::fs::Metadata) -> bool {
    meta.modified()
        .ok()
        .and_then(|m| std::time::SystemTime::now().duration_since(m).ok())
        .is_none_or(|age| age < std::time::Duration::from_secs(1))
}

fn mtime(meta: &std::fs::Metadata) -> (i64, i64) {
    use std::os::unix::fs::MetadataExt;
    (meta.mtime(), meta.mtime_nsec())
}

impl HtaccessFiles {
    /// The chain for the decoded, normalised `path`: the rules of the root and of every
    /// directory the path goes through, root first (only directories that have a file); and
    /// the file the path maps to, as [`super::context::mapped_file`] finds it (the same walk).
    pub fn chain(&self, site: &SiteSpec, path: &str) -> (Vec<Arc<DirRules>>, PathBuf) {
        let mut chain = Vec::new();
        let Ok(root) = std::fs::metadata(&site.root) else {
            return (chain, site.root.clone());
        };
        let mut dir = site.root.clone();
        let mut url = String::from("/");
        chain.extend(self.get(&dir, &url, &root));
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            let candidate = dir.join(segment);
            let Some(meta) = router::allowed_metadata(site, &candidate).filter(|m| m.is_dir())
            else {
                return (chain, candidate);
            };
            dir = candidate;
            url.push_str(segment);
            url.push('/');
            chain.extend(self.get(&dir, &url, &meta));
        }
        (chain, dir)
    }

    /// The directory's rules as its file is now; `None` when it has no file.
    fn get(&self, dir: &Path, url: &str, dir_meta: &std::fs::Metadata) -> Option<Arc<DirRules>> {
        if let Some(entry) = self.files.get(dir) {
            if let Entry::Absent { dir_mtime } = *entry {
                if dir_mtime == mtime(dir_meta) && !recently_changed(dir_meta) {
                    return None;
                }
            }
        }
        let file = dir.join(FILE_NAME);
        let meta = match std::fs::metadata(&file) {
            Ok(meta) if meta.is_file() => meta,
            _ => {
                let absent = Entry::Absent {
                    dir_mtime: mtime(dir_meta),
                };
                self.files.insert(dir.to_path_buf(), absent);
                return None;
            }
        };
        let identity = Identity::of(&meta);
        if let Some(entry) = self.files.get(dir) {
            if let Entry::Present(known, rules) = &*entry {
                if *known == identity {
                    return Some(rules.clone());
                }
            }
        }
        let rules = Arc::new(read(&file, &meta, url));
        self.files
            .insert(dir.to_path_buf(), Entry::Present(identity, rules.clone()));
        Some(rules)
    }
}

/// Reads and compiles one file; a file that cannot be read denies (as Apache answers 500 for an
/// unreadable `.htaccess`, never serving what it might have protected).
fn read(file: &Path, meta: &std::fs::Metadata, url: &str) -> DirRules {
    let text = if meta.len() > MAX_FILE_BYTES {
        Err(format!("larger than {MAX_FILE_BYTES} bytes"))
    } else {
        std::fs::read(file)
            .map_err(|e| e.to_string())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    };
    let rules = match text {
        Ok(text) => DirRules::compile(&text, url),
        Err(reason) => {
            warn!(file = %file.display(), %reason, "cannot read an .htaccess file; its directory is closed");
            DirRules::compile("Require all denied", url)
        }
    };
    if let Some(denial) = rules.denial() {
        warn!(file = %file.display(), line = denial.line, status = denial.status,
            reason = %denial.reason, "an .htaccess file closes its directory");
    }
    for note in rules.notes() {
        match &note.kind {
            NoteKind::Ignored => debug!(file = %file.display(), line = note.line,
                directive = %note.text, "an .htaccess directive paddock ignores (no effect on what is served)"),
            NoteKind::Unknown => warn!(file = %file.display(), line = note.line,
                directive = %note.text, "an .htaccess directive paddock does not honour"),
            NoteKind::Invalid(reason) => warn!(file = %file.display(), line = note.line,
                directive = %note.text, %reason, "an .htaccess directive paddock cannot use"),
        }
    }
    rules
}
