//! Change notices for the directories whose `.htaccess` state is remembered, so that a request
//! learns about an edit from the kernel instead of asking with a `stat` per directory.
//!
//! Each directory the chain walk caches gets an inotify watch. The kernel queues an event as
//! part of the change itself (the `write`, `rename` or `unlink` has not returned before it is
//! queued), and every lookup first drains the queue, so a change made before a request started
//! is seen by that request: the same "from the next request on" that a `stat` gave, for one
//! `read` that finds the queue empty instead of a `stat` per directory level.
//!
//! Where a watch cannot be had (no inotify, the watch limit reached, a network file system
//! whose other clients' edits the kernel never hears of), the caller falls back to `stat`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tracing::warn;

/// What a drained event means for the remembered state.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Notice<'a> {
    /// The directory's `.htaccess` was created, written, removed, renamed or its permissions
    /// changed.
    FileChanged(&'a Path),
    /// The directory is no longer at this path (deleted or moved), or its watch ended.
    DirGone(&'a Path),
    /// The kernel's queue overflowed: events were lost, nothing remembered can be trusted.
    Lost,
}

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
    /// Watched directories by watch. One directory may be reached by several paths (through
    /// symlinks); the kernel gives them one watch. The lock is also the drain's: see [`drain`].
    ///
    /// [`drain`]: Watcher::drain
    watches: Mutex<HashMap<WatchDescriptor, Vec<PathBuf>>>,
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

impl Watcher {
    /// Starts watching `dir` (reached by this path); `false` when changes in it cannot be
    /// learned this way and the caller must `stat`.
    pub(super) fn watch(&self, dir: &Path) -> bool {
        let Some(inotify) = &self.inotify else {
            return false;
        };
        if is_remote(dir) {
            return false;
        }
        let mut watches = self.lock();
        match inotify.add_watch(dir, mask()) {
            Ok(wd) => {
                let paths = watches.entry(wd).or_default();
                if !paths.iter().any(|p| p == dir) {
                    paths.push(dir.to_path_buf());
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

    /// Reads every pending event and hands what it means to `apply`. The whole drain holds the
    /// lock: a request that drains after another thread took an event off the queue waits
    /// until that event has been applied, so no request that started after a change can miss
    /// it.
    pub(super) fn drain(&self, mut apply: impl FnMut(Notice<'_>)) {
        let Some(inotify) = &self.inotify else {
            return;
        };
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
                    if let Some(paths) = watches.remove(&event.wd) {
                        if !event.mask.contains(AddWatchFlags::IN_IGNORED) {
                            let _ = inotify.rm_watch(event.wd);
                        }
                        paths.iter().for_each(|p| apply(Notice::DirGone(p)));
                    }
                    continue;
                }
                if event.name.as_deref() != Some(OsStr::new(super::htaccess_files::FILE_NAME)) {
                    continue;
                }
                if let Some(paths) = watches.get(&event.wd) {
                    paths.iter().for_each(|p| apply(Notice::FileChanged(p)));
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WatchDescriptor, Vec<PathBuf>>> {
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
                Notice::DirGone(p) => format!("gone {}", p.display()),
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

    #[test]
    fn other_files_in_the_directory_say_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let watcher = Watcher::default();
        assert!(watcher.watch(dir.path()));
        std::fs::write(dir.path().join("upload.jpg"), "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(drained(&watcher).is_empty());
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
