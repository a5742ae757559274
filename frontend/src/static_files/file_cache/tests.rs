use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;

fn write(path: &Path, contents: &[u8], mtime_secs: u64) {
    std::fs::write(path, contents).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime_secs))
        .unwrap();
}

fn meta(path: &Path) -> Metadata {
    std::fs::metadata(path).unwrap()
}

#[tokio::test]
async fn a_loaded_file_is_served_until_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.txt");
    write(&path, b"first", 1_700_000_000);
    let cache = FileCache::new(1 << 20, 1 << 10);
    assert!(cache.get(&path, &meta(&path)).is_none());
    let loaded = cache.load(&path).await.unwrap();
    assert_eq!(&loaded.bytes[..], b"first");
    assert_eq!(loaded.validators.modified_secs, 1_700_000_000);
    assert_eq!(
        loaded.validators.last_modified,
        "Tue, 14 Nov 2023 22:13:20 GMT"
    );
    assert_eq!(loaded.validators.etag, "\"6553f100.00000000-5\"");
    let hit = cache.get(&path, &meta(&path)).unwrap();
    assert!(Arc::ptr_eq(&hit, &loaded));

    // Same size, same mtime: only the ctime (and the bytes) differ, and that is enough.
    std::thread::sleep(Duration::from_millis(20));
    write(&path, b"again", 1_700_000_000);
    assert!(cache.get(&path, &meta(&path)).is_none());
    let reloaded = cache.load(&path).await.unwrap();
    assert_eq!(&reloaded.bytes[..], b"again");
    assert_eq!(cache.cached_bytes(), 5);
}

#[tokio::test]
async fn a_file_replaced_by_rename_is_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("page.html");
    write(&path, b"old page", 1_700_000_000);
    let cache = FileCache::new(1 << 20, 1 << 10);
    cache.load(&path).await.unwrap();
    let next = dir.path().join("page.html.tmp");
    write(&next, b"new page", 1_700_000_000);
    std::fs::rename(&next, &path).unwrap();
    assert!(cache.get(&path, &meta(&path)).is_none());
    assert_eq!(&cache.load(&path).await.unwrap().bytes[..], b"new page");
}

#[tokio::test]
async fn large_files_and_directories_are_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    write(&big, &[7u8; 2048], 1_700_000_000);
    let cache = FileCache::new(1 << 20, 1024);
    assert!(!cache.accepts(&meta(&big)));
    assert!(cache.load(&big).await.is_none());
    assert!(!cache.accepts(&meta(dir.path())));
    assert!(cache.load(dir.path()).await.is_none());
    assert_eq!(cache.cached_bytes(), 0);
}

#[tokio::test]
async fn the_cache_never_holds_more_than_its_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(3000, 1024);
    for i in 0..10 {
        let path = dir.path().join(format!("{i}.txt"));
        write(&path, &[b'x'; 1000], 1_700_000_000);
        let loaded = cache.load(&path).await.unwrap();
        assert_eq!(loaded.bytes.len(), 1000);
        assert!(cache.cached_bytes() <= 3000, "{}", cache.cached_bytes());
        assert!(cache.get(&path, &meta(&path)).is_some());
    }
}

#[test]
fn capacity_zero_turns_the_cache_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny");
    write(&path, b"1", 1_700_000_000);
    assert!(!FileCache::new(0, 1024).accepts(&meta(&path)));
}

#[test]
fn http_dates_parse_to_seconds() {
    let value = HeaderValue::from_static("Tue, 14 Nov 2023 22:13:20 GMT");
    assert_eq!(http_date_secs(&value), Some(1_700_000_000));
    assert_eq!(http_date_secs(&HeaderValue::from_static("yesterday")), None);
}

#[test]
fn sibling_lookups_are_remembered_per_file_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.js");
    write(&path, b"let a;", 1_700_000_000);
    write(&dir.path().join("app.js.gz"), b"gz", 1_700_000_000);
    let cache = FileCache::new(1 << 20, 1 << 10);
    let lookups = std::cell::Cell::new(0);
    let lookup = |p: &Path| {
        lookups.set(lookups.get() + 1);
        std::fs::metadata(p).ok()
    };
    let policy = SymlinkPolicy::InsideRoot;
    let found = cache.siblings(&path, &meta(&path), policy, lookup);
    let codings: Vec<_> = found.variants.iter().map(|v| v.coding).collect();
    assert_eq!(codings, ["gzip"]);
    assert_eq!(lookups.get(), 2, "br and gz looked up");
    cache.siblings(&path, &meta(&path), policy, lookup);
    assert_eq!(lookups.get(), 2, "remembered");
    cache.siblings(&path, &meta(&path), SymlinkPolicy::Always, lookup);
    assert_eq!(lookups.get(), 4, "another site's rules look again");
    // A new version of the file looks again at once.
    write(&dir.path().join("app.js.br"), b"br", 1_700_000_000);
    write(&path, b"let b;", 1_700_000_001);
    let found = cache.siblings(&path, &meta(&path), SymlinkPolicy::Always, lookup);
    let codings: Vec<_> = found.variants.iter().map(|v| v.coding).collect();
    assert_eq!(codings, ["br", "gzip"]);
}
