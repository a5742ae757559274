//! `.htaccess` files as the request path meets them: the document root's and each directory's on
//! the way to the file, parsed once per file version and validated with one `stat` per
//! directory per request, so an edited, new or removed file counts from the next request on,
//! with no reload (the static file cache works the same way).
//!
//! Only directories the router would enter are looked at (the site's symlink policy applies), and
//! a file's notes (directives paddock ignores or does not know) are logged once per version,
//! with the file and line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dashmap::DashMap;
use protocol::control::SiteSpec;
use rules::htaccess::{DirRules, NoteKind};
use tracing::{debug, warn};

use crate::file_cache::Identity;
use crate::router;

const FILE_NAME: &str = ".htaccess";
/// A larger file is refused (fail closed) rather than read into memory.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Parsed files by directory.
#[derive(Debug, Default)]
pub struct HtaccessFiles {
    files: DashMap<PathBuf, (Identity, Arc<DirRules>)>,
}

impl HtaccessFiles {
    /// The chain for the decoded, normalised `path`: the rules of the root and of every
    /// directory the path goes through, root first (only directories that have a file).
    pub fn chain(&self, site: &SiteSpec, path: &str) -> Vec<Arc<DirRules>> {
        let mut chain = Vec::new();
        let mut dir = site.root.clone();
        let mut url = String::from("/");
        self.push(&mut chain, &dir, &url);
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            let candidate = dir.join(segment);
            let is_dir = router::allowed_metadata(site, &candidate).is_some_and(|m| m.is_dir());
            if !is_dir {
                break;
            }
            dir = candidate;
            url.push_str(segment);
            url.push('/');
            self.push(&mut chain, &dir, &url);
        }
        chain
    }

    fn push(&self, chain: &mut Vec<Arc<DirRules>>, dir: &Path, url: &str) {
        if let Some(rules) = self.get(dir, url) {
            chain.push(rules);
        }
    }

    /// The directory's rules as its file is now; `None` when it has no file.
    fn get(&self, dir: &Path, url: &str) -> Option<Arc<DirRules>> {
        let file = dir.join(FILE_NAME);
        let meta = match std::fs::metadata(&file) {
            Ok(meta) if meta.is_file() => meta,
            _ => {
                self.files.remove(dir);
                return None;
            }
        };
        let identity = Identity::of(&meta);
        if let Some(entry) = self.files.get(dir) {
            if entry.0 == identity {
                return Some(entry.1.clone());
            }
        }
        let rules = Arc::new(read(&file, &meta, url));
        self.files
            .insert(dir.to_path_buf(), (identity, rules.clone()));
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
