//! `.htaccess` files as the request path meets them: the document root's and each directory's on
//! the way to the file, parsed once per file version, so an edited, new or removed file counts
//! from the next request on, with no reload.
//!
//! What each directory holds is remembered and kept true by inotify notices
//! ([`htaccess_watch`](super::htaccess_watch)): a request drains the notices, then uses what is
//! remembered with no file-system call of its own. Where a directory cannot be watched the
//! file is validated with a `stat` on every request, as the static file cache does. Each
//! remembered directory is tied to the directory's device and inode, which the walk learns
//! anyway, so a different directory at the same path (a deploy's symlink switched to a new
//! release, a directory replaced) is looked at afresh. The document root's own path is watched
//! too ([`HtaccessFiles::version`]), so that what depends on which directory the root is needs
//! no `stat` of it per request either.
//!
//! Only directories the router would enter are looked at (the site's symlink policy applies), and
//! a file's notes (directives paddock ignores or does not know) are logged once per version,
//! with the file and line.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use protocol::control::SiteSpec;
use rules::htaccess::{DirRules, NoteKind};
use tracing::{debug, warn};

use super::htaccess_watch::{Notice, Watcher};
use super::watched_stats::StatValidity;
use crate::http::stat_memo::StatMemo;
use crate::static_files::file_cache::Identity;

pub(super) const FILE_NAME: &str = ".htaccess";
/// A larger file is refused (fail closed) rather than read into memory.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Parsed files by directory.
#[derive(Debug)]
pub struct HtaccessFiles {
    /// Keyed by the path's bytes: hashing a `Path` parses it into components.
    files: DashMap<OsString, Entry>,
    watcher: Watcher,
    /// Counts the notices applied. A look at a directory that overlapped one stores what it
    /// found as unchecked: it may have read the file just before the change. A thread's copy of
    /// a watched directory's rules is used while the count has not moved.
    notices: AtomicU64,
    /// Names this cache for the threads' copies.
    id: u64,
    /// Document roots by path: `true` while their path is watched and has not moved since (a
    /// switch to another directory is then a notice), `false` where it cannot be watched.
    roots: Mutex<HashMap<PathBuf, bool>>,
    /// Counts the roots' moves applied (and losses of notices).
    root_moves: AtomicU64,
    /// Counts every notice applied, those about names other than `.htaccess` too: while it
    /// stays the same, a `stat` in a watched directory would say what it said before
    /// ([`super::watched_stats`]). Kept apart from `notices`, which a write to any file in a
    /// watched directory would otherwise move, voiding every remembered verdict.
    entry_changes: AtomicU64,
}

impl Default for HtaccessFiles {
    fn default() -> Self {
        Self {
            files: DashMap::default(),
            watcher: Watcher::default(),
            notices: AtomicU64::new(0),
            id: super::replica::next_id(),
            roots: Mutex::default(),
            root_moves: AtomicU64::new(0),
            entry_changes: AtomicU64::new(0),
        }
    }
}

thread_local! {
    static LOCAL: RefCell<LocalDirs> = RefCell::default();
    /// The roots this thread found watched, and the notice count then: while it has not moved,
    /// no root has moved either (a move is a notice).
    static LOCAL_ROOTS: RefCell<(u64, u64, Vec<PathBuf>)> = RefCell::default();
}

/// One runtime thread's copies of the rules it used, so that a request reads no memory the
/// other thread writes: no lock of the shared map, no shared reference count, no shared regex
/// cache pool (see [`replica`](super::replica)).
#[derive(Default)]
struct LocalDirs {
    /// The [`HtaccessFiles`] these copies are of.
    owner: u64,
    dirs: HashMap<OsString, LocalDir>,
}

struct LocalDir {
    dir: (u64, u64),
    /// The notice count when this was last checked against the shared map.
    checked_at: u64,
    watched: bool,
    /// The shared rules the copy was made from: the copy is reused while they are the same.
    source: Option<Arc<DirRules>>,
    copy: Option<Rc<DirRules>>,
}

/// Past this many directories a thread's copies start again.
const MAX_LOCAL_DIRS: usize = 1 << 16;

impl LocalDirs {
    /// This thread's copy, if it is known to be current without asking the shared map.
    fn recall(
        &mut self,
        owner: u64,
        notices: u64,
        dir: &Path,
        id: (u64, u64),
    ) -> Option<Option<Rc<DirRules>>> {
        if self.owner != owner {
            return None;
        }
        let local = self.dirs.get(dir.as_os_str())?;
        (local.watched && local.checked_at == notices && local.dir == id)
            .then(|| local.copy.clone())
    }

    /// Remembers what the shared map said, reusing the copy of the same shared rules.
    fn update(
        &mut self,
        owner: u64,
        notices: u64,
        dir: &Path,
        id: (u64, u64),
        shared: Option<Arc<DirRules>>,
        watched: bool,
    ) -> Option<Rc<DirRules>> {
        if self.owner != owner || self.dirs.len() >= MAX_LOCAL_DIRS {
            self.owner = owner;
            self.dirs.clear();
        }
        let reused =
            self.dirs
                .get(dir.as_os_str())
                .and_then(|local| match (&local.source, &shared) {
                    (Some(old), Some(new)) if Arc::ptr_eq(old, new) => Some(local.copy.clone()),
                    (None, None) => Some(None),
                    _ => None,
                });
        let copy =
            reused.unwrap_or_else(|| shared.as_deref().map(|rules| Rc::new(rules.thread_copy())));
        self.dirs.insert(
            dir.as_os_str().to_owned(),
            LocalDir {
                dir: id,
                checked_at: notices,
                watched,
                source: shared,
                copy: copy.clone(),
            },
        );
        copy
    }
}

/// Whether this thread last found `dir` watched, with no `.htaccess` notice applied since (a
/// watch that ended is such a notice), in the cache `owner`.
pub(super) fn watched_on_this_thread(owner: u64, notices: u64, dir: &Path) -> bool {
    LOCAL.with(|local| {
        let local = local.borrow();
        local.owner == owner
            && local
                .dirs
                .get(dir.as_os_str())
                .is_some_and(|d| d.watched && d.checked_at == notices)
    })
}

/// A request path's `.htaccess` files, as [`HtaccessFiles::chain`] finds them.
pub(crate) struct Chain {
    /// Root first; only directories that have a file.
    pub rules: Vec<Rc<DirRules>>,
    /// What the path maps to (`REQUEST_FILENAME`).
    pub file: PathBuf,
    /// Every directory's state is kept true by change notices: none was checked with a `stat`
    /// (only then may an outcome that depends on the files be remembered past the request).
    pub all_watched: bool,
    /// [`HtaccessFiles::version`] before any directory was looked at.
    pub version: (u64, u64),
    /// The document root's identity (`None`: it is not there).
    pub root: Option<RootIdentity>,
}

/// How an outcome found in one document root is known to be still about the same directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RootIdentity {
    /// The root's path is watched: a switch is a notice, which moves the version.
    Watched,
    /// Its device and inode, to compare with a `stat`.
    Stat(u64, u64),
}

impl RootIdentity {
    pub(crate) fn new(watched: bool, meta: &std::fs::Metadata) -> Self {
        if watched {
            Self::Watched
        } else {
            Self::Stat(meta.dev(), meta.ino())
        }
    }
}

impl Chain {
    fn push(&mut self, (rules, watched): (Option<Rc<DirRules>>, bool)) {
        self.rules.extend(rules);
        self.all_watched &= watched;
    }
}

#[derive(Debug, Clone)]
struct Entry {
    /// The directory it was learned from (device, inode).
    dir: (u64, u64),
    /// Whether changes arrive as notices; if not, every use checks with a `stat`.
    watched: bool,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    /// A notice said the file changed: look again.
    Unchecked,
    /// The directory had no file when its modification time was this.
    Absent {
        dir_mtime: (i64, i64),
    },
    Present(Identity, Arc<DirRules>),
}

impl State {
    fn rules(&self) -> Option<Arc<DirRules>> {
        match self {
            State::Present(_, rules) => Some(rules.clone()),
            _ => None,
        }
    }
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
    (meta.mtime(), meta.mtime_nsec())
}

impl HtaccessFiles {
    /// The chain for the decoded, normalised `path`: the rules of the root and of every
    /// directory the path goes through, root first (only directories that have a file); and
    /// the file the path maps to, as [`super::context::mapped_file`] finds it (the same walk,
    /// through the request's `stats`, which the router reads again).
    pub(crate) fn chain(&self, site: &SiteSpec, path: &str, stats: &StatMemo) -> Chain {
        let (version, root_watched) = self.version(&site.root);
        stats.validate(self.stat_validity());
        let mut chain = Chain {
            rules: Vec::new(),
            file: site.root.clone(),
            all_watched: true,
            version,
            root: None,
        };
        let Ok(root) = std::fs::metadata(&site.root) else {
            chain.all_watched = false;
            return chain;
        };
        chain.root = Some(RootIdentity::new(root_watched, &root));
        let mut url = String::from("/");
        chain.push(self.get(&site.root, &url, &root));
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            let candidate = chain.file.join(segment);
            let Some(meta) = stats
                .allowed_metadata(site, &candidate)
                .filter(|m| m.is_dir())
            else {
                chain.file = candidate;
                return chain;
            };
            chain.file = candidate;
            url.push_str(segment);
            url.push('/');
            chain.push(self.get(&chain.file, &url, &meta));
        }
        chain
    }

    /// This cache's id and the count of change notices applied, after applying those the
    /// kernel has queued: while both stay the same, no watched directory's `.htaccess` changed.
    /// Also whether the same holds for what the document root `root` is: `true` when its path
    /// is watched, so that a switch to another directory counts as a notice; `false` when the
    /// caller must compare the root's device and inode itself.
    pub(crate) fn version(&self, root: &Path) -> ((u64, u64), bool) {
        self.apply_notices();
        let notices = self.notices.load(Ordering::SeqCst);
        let known = LOCAL_ROOTS.with(|local| {
            let (owner, at, roots) = &*local.borrow();
            // Compared as bytes: `Path` equality parses both into components, per request.
            let root = root.as_os_str();
            *owner == self.id && *at == notices && roots.iter().any(|r| r.as_os_str() == root)
        });
        if known {
            return ((self.id, notices), true);
        }
        let watched = self.root_watched(root);
        let notices = self.notices.load(Ordering::SeqCst);
        if watched {
            LOCAL_ROOTS.with(|local| {
                let (owner, at, roots) = &mut *local.borrow_mut();
                if (*owner, *at) != (self.id, notices) {
                    (*owner, *at) = (self.id, notices);
                    roots.clear();
                }
                roots.push(root.to_path_buf());
            });
        }
        ((self.id, notices), watched)
    }

    /// What a request's file-system answers may be remembered under and checked against
    /// ([`super::watched_stats`]). Call it right after [`HtaccessFiles::version`], which
    /// drained the notices: the counts are then those of every change made before the request.
    pub(crate) fn stat_validity(&self) -> StatValidity {
        StatValidity {
            owner: self.id,
            notices: self.notices.load(Ordering::SeqCst),
            changes: self.entry_changes.load(Ordering::SeqCst),
        }
    }

    /// Whether `root`'s path is watched, watching it if it has not been tried yet.
    fn root_watched(&self, root: &Path) -> bool {
        if let Some(&known) = self.lock_roots().get(root) {
            return known;
        }
        // Not under the roots' lock: a drain holds the watcher's lock while it takes this one.
        let moves = self.root_moves.load(Ordering::SeqCst);
        let watched = self.watcher.watch_root(root);
        let mut roots = self.lock_roots();
        if self.root_moves.load(Ordering::SeqCst) != moves {
            // A move while the watches were being set up may have removed one: try again.
            return false;
        }
        roots.insert(root.to_path_buf(), watched);
        // What was found before the watches were in place may predate a switch that no notice
        // told of: it counts as changed.
        self.notices.fetch_add(1, Ordering::SeqCst);
        watched
    }

    fn lock_roots(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, bool>> {
        self.roots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Brings what is remembered up to date with the changes the kernel reported.
    fn apply_notices(&self) {
        self.watcher.drain(|notice| {
            // Counted before it is applied: see `look`.
            self.entry_changes.fetch_add(1, Ordering::SeqCst);
            if !matches!(notice, Notice::EntryChanged(_)) {
                self.notices.fetch_add(1, Ordering::SeqCst);
            }
            match notice {
                // Nothing remembered here is about names other than `.htaccess`.
                Notice::EntryChanged(_) => {}
                Notice::FileChanged(dir) => {
                    if let Some(mut entry) = self.files.get_mut(dir.as_os_str()) {
                        entry.state = State::Unchecked;
                    }
                }
                Notice::DirGone(dir) => self
                    .files
                    .retain(|path, _| !Path::new(path).starts_with(dir)),
                Notice::RootMoved(root) => {
                    self.root_moves.fetch_add(1, Ordering::SeqCst);
                    self.lock_roots().remove(root);
                }
                Notice::Lost => {
                    self.files.clear();
                    self.root_moves.fetch_add(1, Ordering::SeqCst);
                    self.lock_roots().clear();
                }
            }
        });
    }

    /// The directory's rules as its file is now, as this thread's copy (`None` when it has
    /// no file), and whether changes to them arrive as notices.
    fn get(
        &self,
        dir: &Path,
        url: &str,
        dir_meta: &std::fs::Metadata,
    ) -> (Option<Rc<DirRules>>, bool) {
        let id = (dir_meta.dev(), dir_meta.ino());
        // Read before the shared map: a notice applied after this makes the copy stale.
        let notices = self.notices.load(Ordering::SeqCst);
        let owner = self.id;
        if let Some(copy) = LOCAL.with(|local| local.borrow_mut().recall(owner, notices, dir, id)) {
            // Only a watched directory's copy is recalled.
            return (copy, true);
        }
        let (shared, watched) = self.get_shared(dir, url, dir_meta, id);
        let copy = LOCAL.with(|local| {
            local
                .borrow_mut()
                .update(owner, notices, dir, id, shared, watched)
        });
        (copy, watched)
    }

    /// The shared map's rules for the directory, and whether changes to them arrive as notices.
    fn get_shared(
        &self,
        dir: &Path,
        url: &str,
        dir_meta: &std::fs::Metadata,
        id: (u64, u64),
    ) -> (Option<Arc<DirRules>>, bool) {
        // The map's guard ends with this statement: `look` may take the watcher's lock, and a
        // drain holding that lock takes the map's.
        let known = match self.files.get(dir.as_os_str()) {
            Some(entry) if entry.dir == id => match &entry.state {
                State::Absent { .. } | State::Present(..) if entry.watched => {
                    return (entry.state.rules(), true)
                }
                State::Absent { dir_mtime }
                    if *dir_mtime == mtime(dir_meta) && !recently_changed(dir_meta) =>
                {
                    return (None, false)
                }
                // Unchecked, or unwatched and present: `look` checks the file and keeps its
                // parse if it is the same version.
                _ => Some(entry.clone()),
            },
            _ => None,
        };
        let watch = known.is_none();
        self.look(dir, url, dir_meta, id, known.as_ref(), watch)
    }

    /// Looks at the directory's file and remembers what it found; also says whether changes
    /// to it arrive as notices.
    fn look(
        &self,
        dir: &Path,
        url: &str,
        dir_meta: &std::fs::Metadata,
        id: (u64, u64),
        known: Option<&Entry>,
        watch: bool,
    ) -> (Option<Arc<DirRules>>, bool) {
        let notices = self.notices.load(Ordering::SeqCst);
        // Watch first, then read: a change after the read is then a notice to come.
        let watched = match known {
            // An unwatched directory stays so (the watch limit, a network file system): no
            // `inotify_add_watch` per request.
            Some(entry) if !watch => entry.watched,
            _ => self.watcher.watch(dir),
        };
        let file = dir.join(FILE_NAME);
        let link = std::fs::symlink_metadata(&file);
        // A symlinked file changes where the directory's watch cannot see it: stat it each time.
        let is_link = link.as_ref().is_ok_and(|m| m.file_type().is_symlink());
        let meta = if is_link {
            std::fs::metadata(&file)
        } else {
            link
        };
        let state = match meta {
            Ok(meta) if meta.is_file() => {
                let identity = Identity::of(&meta);
                let same = known.and_then(|entry| match &entry.state {
                    State::Present(known, rules) if *known == identity => Some(rules.clone()),
                    _ => None,
                });
                let rules = same.unwrap_or_else(|| Arc::new(read(&file, &meta, url)));
                State::Present(identity, rules)
            }
            _ => State::Absent {
                dir_mtime: mtime(dir_meta),
            },
        };
        let rules = state.rules();
        let watched = watched && !is_link;
        self.files.insert(
            dir.as_os_str().to_owned(),
            Entry {
                dir: id,
                watched,
                state,
            },
        );
        if self.notices.load(Ordering::SeqCst) != notices {
            if let Some(mut entry) = self.files.get_mut(dir.as_os_str()) {
                entry.state = State::Unchecked;
            }
        }
        (rules, watched)
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

#[cfg(test)]
mod tests;
