//! Change notices for the directories whose `.htaccess` state is remembered, so that a request
//! learns about an edit from the kernel instead of asking with a `stat` per directory.
//!
//! Each directory the chain walk caches gets an inotify watch. The kernel queues an event as
//! part of the change itself (the `write`, `rename` or `unlink` has not returned before it is
//! queued), and every lookup first drains the queue, so a change made before a request started
//! is seen by that request: the same "from the next request on" that a `stat` gave, for one
//! `read` that finds the queue empty instead of a `stat` per directory level.
//!
//! The document root's own path is watched as well: the directory holding each component of
//! it hears of that name being created, removed or renamed (a deploy switching a `current`
//! symlink, a release directory moved into place), so that the root's identity needs no `stat`
//! per request either. A symlink on the way is followed and its target's path watched too.
//!
//! Where a watch cannot be had (no inotify, the watch limit reached, a network file system
//! whose other clients' edits the kernel never hears of), the caller falls back to `stat`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tracing::warn;

/// What a drained event means for the remembered state.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Notice<'a> {
    /// The directory's `.htaccess` was created, written, removed, renamed or its permissions
    /// changed.
    FileChanged(&'a Path),
    /// Another name in the directory was created, written, removed, renamed or its attributes
    /// changed: what a `stat` of it says may have changed ([`super::watched_stats`]).
    EntryChanged(&'a Path),
    /// The directory is no longer at this path (deleted or moved), or its watch ended.
    DirGone(&'a Path),
    /// What this document root's path leads to may have changed: one of the names on the way
    /// was created, removed or renamed, or a directory on the way moved.
    RootMoved(&'a Path),
    /// The kernel's queue overflowed: events were lost, nothing remembered can be trusted.
    Lost,
}

/// What a watch is for, besides the directory itself.
#[derive(Debug, PartialEq, Eq)]
enum Watched {
    /// A directory whose `.htaccess` is remembered, by one path that reaches it.
    Dir(PathBuf),
    /// A directory holding `name`, one step on the way to the document root `root`.
    OnRootPath { name: OsString, root: PathBuf },
}

/// A lookup at the document root follows at most this many symbolic links (the kernel's own
/// limit); past it the root is checked with a `stat` per request.
const MAX_ROOT_LINKS: usize = 40;

/// File systems on which a change can come from another machine, which the local kernel (and
/// so inotify) never hears of: NFS, SMB/CIFS, FUSE (sshfs, virtiofs), Ceph, AFS, Coda, 9p,
/// OCFS2, GFS2, Lustre.
const REMOTE_FILE_SYSTEMS: [i64; 13] = [
    0x6969,
    0x517B,
    0xFF53_4D42,
    0xFE53_4D42,
    0x6573_5546,
    0x00C3_6400,
    0x5346_414F,
    0x7375_7245,
    0x0102_1997,
    0x7461_636F,
    0x0116_1970,
    0x0BD0_0BD0,
    0x0000_6B41, // KAFS
];

pub(super) struct Watcher {
    inotify: Option<Inotify>,
    /// What each watch is for. One directory may be reached by several paths (through
    /// symlinks) and be on a root's path too; the kernel gives it one watch. The lock is also
    /// the drain's: see [`drain`].
    ///
    /// [`drain`]: Watcher::drain
    watches: Mutex<HashMap<WatchDescriptor, Vec<Watched>>>,
    /// Drains that may hold events taken off the queue and not yet applied.
    draining: AtomicUsize,
    limit_reported: AtomicBool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("inotify", &self.inotify.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Watcher {
    fn default() -> Self {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .inspect_err(|e| {
                warn!(error = %e, "no inotify: .htaccess files are checked with a stat per directory per request")
            })
            .ok();
        Self {
            inotify,
            watches: Mutex::default(),
            draining: AtomicUsize::new(0),
            limit_reported: AtomicBool::new(false),
        }
    }
}

/// Events that can change what a directory's `.htaccess` says, or whether the watched directory
/// is still the one at its path.
fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
}

/// Events that can change what a name in a directory on a root's path leads to. Added to
/// whatever the directory is already watched for (`IN_MASK_ADD`): a directory may be both.
fn root_path_mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
        | mask_add()
}

/// `IN_MASK_ADD`, which nix does not name: add to the watch's events rather than replace them.
fn mask_add() -> AddWatchFlags {
    AddWatchFlags::from_bits_retain(libc::IN_MASK_ADD)
}

impl Watcher {
    /// Starts watching `dir` (reached by this path); `false` when changes in it cannot be
    /// learned this way and the caller must `stat`.
    pub(super) fn watch(&self, dir: &Path) -> bool {
        if self.inotify.is_none() || is_remote(dir) {
            return false;
        }
        // With `IN_MASK_ADD` too: the directory may also be on a root's path.
        self.add(dir, mask() | mask_add(), Watched::Dir(dir.to_path_buf()))
    }

    /// Starts watching every directory whose entries decide where `root` leads; `false` when
    /// one cannot be watched and the caller must `stat` the root.
    pub(super) fn watch_root(&self, root: &Path) -> bool {
        if self.inotify.is_none() || !root.is_absolute() {
            return false;
        }
        let mut pending = vec![root.to_path_buf()];
        let mut links = 0;
        while let Some(path) = pending.pop() {
            let mut at = PathBuf::from("/");
            let mut rest = path.components();
            while let Some(component) = rest.next() {
                match component {
                    Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                    Component::ParentDir => {
                        at.pop();
                    }
                    Component::Normal(name) => {
                        if is_remote(&at) {
                            return false;
                        }
                        let entry = Watched::OnRootPath {
                            name: name.to_owned(),
                            root: root.to_path_buf(),
                        };
                        if !self.add(&at, root_path_mask(), entry) {
                            return false;
                        }
                        let next = at.join(name);
                        match std::fs::read_link(&next) {
                            // Where the link leads, then the rest of the path from there.
                            Ok(target) => {
                                links += 1;
                                if links > MAX_ROOT_LINKS {
                                    return false;
                                }
                                pending.push(at.join(target).join(rest.as_path()));
                                break;
                            }
                            Err(_) => at = next,
                        }
                    }
                }
            }
        }
        true
    }

    fn add(&self, dir: &Path, mask: AddWatchFlags, watched: Watched) -> bool {
        let Some(inotify) = &self.inotify else {
            return false;
        };
        let mut watches = self.lock();
        match inotify.add_watch(dir, mask) {
            Ok(wd) => {
                let known = watches.entry(wd).or_default();
                if !known.contains(&watched) {
                    known.push(watched);
                }
                true
            }
            Err(Errno::ENOSPC) => {
                if !self.limit_reported.swap(true, Ordering::Relaxed) {
                    warn!(dir = %dir.display(),
                        "the inotify watch limit (fs.inotify.max_user_watches) is reached: \
                         directories past it have their .htaccess checked with a stat per request");
                }
                false
            }
            Err(_) => false,
        }
    }

    /// Reads every pending event and hands what it means to `apply`; on return, every event
    /// queued before the call has been applied, so no request that started after a change can
    /// miss it.
    ///
    /// Every request of a site with `.htaccess` files calls this, and the queue is nearly
    /// always empty. So the common case asks the kernel how many bytes are queued (`FIONREAD`,
    /// which takes nothing off the queue) and takes no lock. Events are only read under the
    /// lock, by a drain counted in `draining` before it reads: a request that finds the queue
    /// empty while another drain may hold events it took waits for the lock, that is until
    /// they are applied. (A lock around every check, as before, put one runtime thread to sleep
    /// behind the other's `read` whenever the kernel switched to the load generator as that
    /// `read` returned: the lock's sleeps and wake-ups were 5 % of the front end's samples on
    /// scenario 7's site.)
    pub(super) fn drain(&self, apply: impl FnMut(Notice<'_>)) {
        let Some(inotify) = &self.inotify else {
            return;
        };
        let queued = rustix::io::ioctl_fionread(inotify);
        if queued.is_ok_and(|bytes| bytes == 0) && self.draining.load(Ordering::SeqCst) == 0 {
            return;
        }
        self.draining.fetch_add(1, Ordering::SeqCst);
        self.drain_locked(inotify, apply);
        self.draining.fetch_sub(1, Ordering::SeqCst);
    }

    fn drain_locked(&self, inotify: &Inotify, mut apply: impl FnMut(Notice<'_>)) {
        let mut watches = self.lock();
        loop {
            let events = match inotify.read_events() {
                Ok(events) => events,
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    warn!(error = %e, "reading inotify events failed; forgetting every .htaccess");
                    apply(Notice::Lost);
                    return;
                }
            };
            for event in events {
                if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    apply(Notice::Lost);
                    continue;
                }
                let gone = event.mask.intersects(
                    AddWatchFlags::IN_DELETE_SELF
                        | AddWatchFlags::IN_MOVE_SELF
                        | AddWatchFlags::IN_IGNORED,
                );
                if gone {
                    // A moved directory would go on reporting under its old path: stop the
                    // watch; a later walk that finds a directory at the path watches anew.
                    if let Some(known) = watches.remove(&event.wd) {
                        if !event.mask.contains(AddWatchFlags::IN_IGNORED) {
                            let _ = inotify.rm_watch(event.wd);
                        }
                        known.iter().for_each(|watched| match watched {
                            Watched::Dir(path) => apply(Notice::DirGone(path)),
                            Watched::OnRootPath { root, .. } => apply(Notice::RootMoved(root)),
                        });
                    }
                    continue;
                }
                let (Some(name), Some(known)) = (event.name.as_deref(), watches.get(&event.wd))
                else {
                    continue;
                };
                let renamed = event.mask.intersects(
                    AddWatchFlags::IN_CREATE
                        | AddWatchFlags::IN_DELETE
                        | AddWatchFlags::IN_MOVED_FROM
                        | AddWatchFlags::IN_MOVED_TO,
                );
                for watched in known {
                    match watched {
                        Watched::Dir(path) if name == super::htaccess_files::FILE_NAME => {
                            apply(Notice::FileChanged(path))
                        }
                        Watched::Dir(path) => apply(Notice::EntryChanged(path)),
                        Watched::OnRootPath {
                            name: on_path,
                            root,
                        } if renamed && name == on_path.as_os_str() => {
                            apply(Notice::RootMoved(root))
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<WatchDescriptor, Vec<Watched>>> {
        self.watches.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn is_remote(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir).is_ok_and(|fs| {
        // `f_type`'s width differs between architectures.
        #[allow(clippy::unnecessary_cast)]
        let kind = fs.filesystem_type().0 as i64;
        REMOTE_FILE_SYSTEMS.contains(&kind)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(watcher: &Watcher) -> Vec<String> {
        let mut seen = Vec::new();
        watcher.drain(|notice| {
            seen.push(match notice {
                Notice::FileChanged(p) => format!("changed {}", p.display()),
                Notice::EntryChanged(p) => format!("entry in {}", p.display()),
                Notice::DirGone(p) => format!("gone {}", p.display()),
                Notice::RootMoved(p) => format!("root {}", p.display()),
                Notice::Lost => "lost".to_string(),
            })
        });
        seen
    }

    #[test]
    fn an_htaccess_change_is_queued_before_the_write_returns() {
        let dir = tempfile::tempdir().unwrap();
        let watcher = Watcher::default();
        assert!(watcher.watch(dir.path()));
        assert!(drained(&watcher).is_empty());
        std::fs::write(dir.path().join(".htaccess"), "Require all denied").unwrap();
        let seen = drained(&watcher);
        assert!(!seen.is_empty());
        assert!(seen
            .iter()
            .all(|s| *s == format!("changed {}", dir.path().display())));
        assert!(
            drained(&watcher).is_empty(),
            "the queue is empty once drained"
        );
    }

    /// Other names in the directory are never an `.htaccess` change, only an entry change
    /// (which voids remembered `stat` answers, not remembered rules).
    #[test]
    fn other_files_in_the_directory_are_entry_changes() {
        let dir = tempfile::tempdir().unwrap();
        let watcher = Watcher::default();
        assert!(watcher.watch(dir.path()));
        std::fs::write(dir.path().join("upload.jpg"), "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let seen = drained(&watcher);
        assert!(!seen.is_empty());
        let entry = format!("entry in {}", dir.path().display());
        assert!(seen.iter().all(|notice| *notice == entry), "{seen:?}");
    }

    #[test]
    fn a_rename_onto_htaccess_and_a_removal_are_changes() {
        let dir = tempfile::tempdir().unwrap();
        let watcher = Watcher::default();
        assert!(watcher.watch(dir.path()));
        std::fs::write(dir.path().join("new"), "Require all granted").unwrap();
        drained(&watcher);
        std::fs::rename(dir.path().join("new"), dir.path().join(".htaccess")).unwrap();
        assert!(!drained(&watcher).is_empty());
        std::fs::remove_file(dir.path().join(".htaccess")).unwrap();
        assert!(!drained(&watcher).is_empty());
    }

    #[test]
    fn a_moved_directory_is_gone_from_its_path_and_no_longer_watched() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("a");
        std::fs::create_dir(&dir).unwrap();
        let watcher = Watcher::default();
        assert!(watcher.watch(&dir));
        std::fs::rename(&dir, parent.path().join("b")).unwrap();
        assert_eq!(drained(&watcher), [format!("gone {}", dir.display())]);
        std::fs::write(parent.path().join("b/.htaccess"), "x").unwrap();
        assert!(
            drained(&watcher).is_empty(),
            "the old path hears nothing more"
        );
    }

    /// A deploy's tree: `releases/r1` and `releases/r2`, `current` a symlink to `r1`.
    fn deploy() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        for release in ["r1", "r2"] {
            std::fs::create_dir_all(base.join("releases").join(release)).unwrap();
        }
        std::os::unix::fs::symlink("releases/r1", base.join("current")).unwrap();
        (dir, base)
    }

    /// [`deploy`], with `current` watched as a document root: the tree's base, the root, and
    /// the watcher.
    fn watched_deploy() -> (tempfile::TempDir, PathBuf, PathBuf, Watcher) {
        let (dir, base) = deploy();
        let root = base.join("current");
        let watcher = Watcher::default();
        assert!(watcher.watch_root(&root));
        (dir, base, root, watcher)
    }

    fn roots_moved(watcher: &Watcher, root: &Path) -> usize {
        let root = format!("root {}", root.display());
        drained(watcher).iter().filter(|s| **s == root).count()
    }

    #[test]
    fn a_switched_root_symlink_is_a_root_notice() {
        let (_dir, base, root, watcher) = watched_deploy();
        assert_eq!(roots_moved(&watcher, &root), 0);
        // As deploy tools switch: a new link renamed over the old one.
        std::os::unix::fs::symlink("releases/r2", base.join("next")).unwrap();
        std::fs::rename(base.join("next"), &root).unwrap();
        assert!(roots_moved(&watcher, &root) > 0);
        // And as `ln -sfn` does: removed, then created.
        std::fs::remove_file(&root).unwrap();
        assert!(roots_moved(&watcher, &root) > 0);
        std::os::unix::fs::symlink("releases/r1", &root).unwrap();
        assert!(roots_moved(&watcher, &root) > 0);
    }

    #[test]
    fn a_directory_moved_on_the_way_to_a_link_s_target_is_a_root_notice() {
        let (_dir, base, root, watcher) = watched_deploy();
        std::fs::rename(base.join("releases/r1"), base.join("releases/r1-old")).unwrap();
        std::fs::rename(base.join("releases/r2"), base.join("releases/r1")).unwrap();
        assert!(roots_moved(&watcher, &root) > 0);
        std::fs::rename(base.join("releases"), base.join("old")).unwrap();
        assert!(roots_moved(&watcher, &root) > 0);
    }

    #[test]
    fn other_names_beside_the_root_path_say_nothing() {
        let (_dir, base, root, watcher) = watched_deploy();
        std::fs::create_dir(base.join("releases/r3")).unwrap();
        std::fs::write(base.join("notes.txt"), "x").unwrap();
        std::fs::remove_file(base.join("notes.txt")).unwrap();
        // Inside the root: its own watch (for `.htaccess`) is not the root path's business.
        std::fs::write(base.join("releases/r1/index.php"), "x").unwrap();
        assert_eq!(roots_moved(&watcher, &root), 0);
    }

    #[test]
    fn one_directory_by_two_paths_notifies_both() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("real");
        let link = parent.path().join("link");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let watcher = Watcher::default();
        assert!(watcher.watch(&dir));
        assert!(watcher.watch(&link));
        std::fs::write(dir.join(".htaccess"), "x").unwrap();
        let seen = drained(&watcher);
        assert!(seen.contains(&format!("changed {}", dir.display())));
        assert!(seen.contains(&format!("changed {}", link.display())));
    }
}
