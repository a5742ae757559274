//! Small static files kept in memory: their bytes and validators, shared by every connection.
//!
//! Why: tower-http's `ServeFile` works through `tokio::fs`, which hands the open, the stat and
//! every read to tokio's blocking thread pool and back. For a 1 KiB file that hand-off was about
//! half of the front end's CPU in the static benchmark (docs/benchmarks.md). A cached file is
//! served from the event loop with no file-system call beyond the stat the router already makes.
//!
//! Never stale: an entry is used only while the file's identity (device, inode, size, mtime and
//! ctime, to the nanosecond) equals what a fresh stat of the path says, so an edited, replaced or
//! renamed-over file is read again on its next request. Bounded: files above `max_file` bytes are
//! never cached, and when the total would pass `capacity` the cache is emptied and refills with
//! what is asked for next (a crude generation scheme; the capacity is meant to hold the working
//! set, and refilling costs one read per file).
//!
//! Precompressed siblings (`file.br`, `file.gz`) are looked up once per [`SIBLING_RECHECK`] and
//! file version instead of on every request, as nginx's `open_file_cache_valid` does for its
//! lookups: a sibling added or removed is seen within that time, a change of the file itself at
//! once (deploy tools write both together).

use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dashmap::DashMap;
use http::header::HeaderValue;
use protocol::control::SymlinkPolicy;

/// How long a lookup of precompressed siblings is trusted.
pub(crate) const SIBLING_RECHECK: Duration = Duration::from_secs(1);
/// Sibling lookups remembered at most; past it the memo starts over.
const SIBLING_MEMO_ENTRIES: usize = 16_384;

#[derive(Debug)]
pub(crate) struct FileCache {
    entries: DashMap<PathBuf, Arc<CachedFile>>,
    siblings: DashMap<PathBuf, Arc<Siblings>>,
    /// Sum of the cached files' sizes.
    bytes: AtomicU64,
    capacity: u64,
    max_file: u64,
}

/// What identifies one version of a file's contents without reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    pub(crate) fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The precompressed siblings paddock looks for, in the order it prefers them: the
/// `Content-Encoding` and the file name extension.
pub(crate) const SIBLING_ENCODINGS: [(&str, &str); 2] = [("br", "br"), ("gzip", "gz")];

/// The usable siblings of one version of a file.
#[derive(Debug)]
pub(crate) struct Siblings {
    of: Identity,
    /// The site rule the lookup applied (two sites may share files but not rules).
    policy: SymlinkPolicy,
    checked: Instant,
    pub variants: Vec<Sibling>,
}

#[derive(Debug)]
pub(crate) struct Sibling {
    pub coding: &'static str,
    pub path: PathBuf,
    pub meta: Metadata,
}

/// One file's contents with the headers that describe them.
#[derive(Debug)]
pub(crate) struct CachedFile {
    identity: Identity,
    pub bytes: Bytes,
    pub validators: Validators,
    /// The `Content-Type` of the file's own name, found once rather than per answer (a
    /// precompressed sibling is served with its original's, not this).
    pub content_type: HeaderValue,
}

/// The validators of one version of a file, in the formats tower-http's `ServeFile` uses, so a
/// client's cached copy validates whichever path answers.
#[derive(Debug, Clone)]
pub(crate) struct Validators {
    /// Strong, from size and mtime.
    pub etag: HeaderValue,
    pub last_modified: HeaderValue,
    /// Modification time in whole seconds, as `Last-Modified` and `If-Modified-Since` carry it.
    pub modified_secs: u64,
}

impl Validators {
    pub(crate) fn of(meta: &Metadata) -> Option<Self> {
        let since_epoch = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        let etag = format!(
            "\"{:x}.{:08x}-{:x}\"",
            since_epoch.as_secs(),
            since_epoch.subsec_nanos(),
            meta.len()
        );
        let whole_seconds = UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs());
        Some(Self {
            etag: HeaderValue::from_str(&etag).ok()?,
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(whole_seconds)).ok()?,
            modified_secs: since_epoch.as_secs(),
        })
    }
}

impl FileCache {
    /// `capacity` 0 turns the cache off.
    pub(crate) fn new(capacity: u64, max_file: u64) -> Self {
        Self {
            entries: DashMap::new(),
            siblings: DashMap::new(),
            bytes: AtomicU64::new(0),
            capacity,
            max_file: max_file.min(capacity),
        }
    }

    /// Whether a file of this size may be cached.
    pub(crate) fn accepts(&self, meta: &Metadata) -> bool {
        meta.is_file() && meta.len() <= self.max_file
    }

    /// The cached contents of `path`, if they are still the file `meta` describes.
    pub(crate) fn get(&self, path: &Path, meta: &Metadata) -> Option<Arc<CachedFile>> {
        let entry = self.entries.get(path)?;
        (entry.identity == Identity::of(meta)).then(|| entry.clone())
    }

    /// Reads `path` on the blocking pool and caches it. `None` when it cannot be read, is too
    /// large, or changed while it was read (the caller then serves it the slow way).
    pub(crate) async fn load(&self, path: &Path) -> Option<Arc<CachedFile>> {
        let owned = path.to_path_buf();
        let max_file = self.max_file;
        let file = tokio::task::spawn_blocking(move || read_stable(&owned, max_file))
            .await
            .ok()??;
        let file = Arc::new(file);
        self.insert(path.to_path_buf(), file.clone());
        Some(file)
    }

    /// The usable precompressed siblings of `path` (whose metadata is `meta`), from the memo
    /// while it is fresh, else from `lookup` (which applies the site's rules).
    pub(crate) fn siblings(
        &self,
        path: &Path,
        meta: &Metadata,
        policy: SymlinkPolicy,
        lookup: impl Fn(&Path) -> Option<Metadata>,
    ) -> Arc<Siblings> {
        let of = Identity::of(meta);
        if let Some(memo) = self.siblings.get(path) {
            if memo.of == of && memo.policy == policy && memo.checked.elapsed() < SIBLING_RECHECK {
                return memo.clone();
            }
        }
        let variants = SIBLING_ENCODINGS
            .iter()
            .filter_map(|&(coding, ext)| {
                let mut name = path.as_os_str().to_owned();
                name.push(".");
                name.push(ext);
                let sibling = PathBuf::from(name);
                let meta = lookup(&sibling).filter(|m| m.is_file())?;
                Some(Sibling {
                    coding,
                    path: sibling,
                    meta,
                })
            })
            .collect();
        let memo = Arc::new(Siblings {
            of,
            policy,
            checked: Instant::now(),
            variants,
        });
        if self.siblings.len() >= SIBLING_MEMO_ENTRIES {
            self.siblings.clear();
        }
        self.siblings.insert(path.to_path_buf(), memo.clone());
        memo
    }

    fn insert(&self, path: PathBuf, file: Arc<CachedFile>) {
        let size = file.bytes.len() as u64;
        if self.bytes.load(Ordering::Relaxed) + size > self.capacity {
            self.entries.retain(|_, old| {
                self.bytes
                    .fetch_sub(old.bytes.len() as u64, Ordering::Relaxed);
                false
            });
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
        if let Some(old) = self.entries.insert(path, file) {
            self.bytes
                .fetch_sub(old.bytes.len() as u64, Ordering::Relaxed);
        }
    }

    #[cfg(test)]
    fn cached_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Reads a regular file of at most `max_file` bytes whose identity is the same before and after
/// the read, so the bytes belong to the validators computed from it.
fn read_stable(path: &Path, max_file: u64) -> Option<CachedFile> {
    let mut file = std::fs::File::open(path).ok()?;
    let before = file.metadata().ok()?;
    if !before.is_file() || before.len() > max_file {
        return None;
    }
    let mut contents = Vec::with_capacity(before.len() as usize);
    file.by_ref()
        .take(max_file + 1)
        .read_to_end(&mut contents)
        .ok()?;
    let identity = Identity::of(&before);
    let after = file.metadata().ok()?;
    if Identity::of(&after) != identity || contents.len() as u64 != before.len() {
        return None;
    }
    Some(CachedFile {
        identity,
        bytes: Bytes::from(contents),
        validators: Validators::of(&before)?,
        content_type: super::content_type(path),
    })
}

/// Seconds since the epoch of an HTTP date, for `If-Modified-Since`.
pub(crate) fn http_date_secs(value: &HeaderValue) -> Option<u64> {
    let time = httpdate::parse_http_date(value.to_str().ok()?).ok()?;
    time.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests;
