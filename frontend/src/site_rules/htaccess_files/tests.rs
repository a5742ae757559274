//! What is remembered follows the files: every kind of change is seen by the next chain.

use std::fs;
use std::path::{Path, PathBuf};

use protocol::control::{SiteSpec, SymlinkPolicy};

use super::*;

fn site(root: PathBuf) -> SiteSpec {
    SiteSpec {
        name: "t".into(),
        hosts: vec!["*".into()],
        root,
        index: Vec::new(),
        routes: Vec::new(),
        script: None,
        symlinks: SymlinkPolicy::Always,
        precompressed: false,
        cache_control: Vec::new(),
        default: true,
        error_pages: Vec::new(),
        https_redirect: false,
        hsts: None,
        redirects: Vec::new(),
        rules: Default::default(),
        sendfile: Default::default(),
        mounts: Vec::new(),
    }
}

/// The unknown directives of each file on the chain to `path`, root first: a file's version
/// shows as the directive it holds.
fn versions(files: &HtaccessFiles, site: &SiteSpec, path: &str) -> Vec<String> {
    let chain = files.chain(site, path, &StatMemo::default()).rules;
    chain
        .iter()
        .flat_map(|rules| rules.notes().iter().map(|n| n.text.clone()))
        .collect()
}

/// Overwrites the file in place, keeping its inode (truncate, then write).
fn overwrite(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn tree() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::write(root.join("a/b/page.txt"), "x").unwrap();
    (dir, root)
}

#[test]
fn an_edit_in_place_a_new_file_and_a_removal_count_from_the_next_chain() {
    let (_dir, root) = tree();
    let site = site(root.clone());
    let files = HtaccessFiles::default();
    assert!(versions(&files, &site, "/a/b/page.txt").is_empty());
    // Created just after the directory was looked at (its mtime may not have moved).
    fs::write(root.join("a/.htaccess"), "Bogus one\n").unwrap();
    assert_eq!(versions(&files, &site, "/a/b/page.txt"), ["Bogus one"]);
    // Same size, same inode, possibly the same mtime tick.
    overwrite(&root.join("a/.htaccess"), "Bogus two\n");
    assert_eq!(versions(&files, &site, "/a/b/page.txt"), ["Bogus two"]);
    fs::write(root.join(".htaccess"), "Bogus root\n").unwrap();
    fs::write(root.join("a/b/.htaccess"), "Bogus deep\n").unwrap();
    assert_eq!(
        versions(&files, &site, "/a/b/page.txt"),
        ["Bogus root", "Bogus two", "Bogus deep"]
    );
    fs::remove_file(root.join("a/.htaccess")).unwrap();
    assert_eq!(
        versions(&files, &site, "/a/b/page.txt"),
        ["Bogus root", "Bogus deep"]
    );
}

#[test]
fn an_unchanged_directory_is_believed_from_its_watch() {
    let (_dir, root) = tree();
    let site = site(root.clone());
    let files = HtaccessFiles::default();
    fs::write(root.join("a/.htaccess"), "Bogus one\n").unwrap();
    versions(&files, &site, "/a/b/page.txt");
    for dir in [root.clone(), root.join("a"), root.join("a/b")] {
        let entry = files.files.get(dir.as_os_str()).unwrap();
        assert!(entry.watched, "{} is watched", dir.display());
        assert!(!matches!(entry.state, State::Unchecked));
    }
    // Uploads and other files beside it leave what is remembered alone.
    fs::write(root.join("a/upload.jpg"), "x").unwrap();
    versions(&files, &site, "/a/b/page.txt");
    assert!(files
        .files
        .get(root.join("a").as_os_str())
        .is_some_and(|e| matches!(e.state, State::Present(..))));
}

#[test]
fn a_deploy_switching_the_root_symlink_is_a_new_tree() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    for (release, text) in [("r1", "Bogus one\n"), ("r2", "Bogus two\n")] {
        fs::create_dir_all(base.join(release).join("a")).unwrap();
        fs::write(base.join(release).join("a/.htaccess"), text).unwrap();
    }
    std::os::unix::fs::symlink(base.join("r1"), base.join("current")).unwrap();
    let site = site(base.join("current"));
    let files = HtaccessFiles::default();
    assert_eq!(versions(&files, &site, "/a/x"), ["Bogus one"]);
    // Switched atomically, as deploy tools do: a new link renamed over the old one.
    std::os::unix::fs::symlink(base.join("r2"), base.join("next")).unwrap();
    fs::rename(base.join("next"), base.join("current")).unwrap();
    assert_eq!(versions(&files, &site, "/a/x"), ["Bogus two"]);
}

#[test]
fn a_directory_replaced_by_another_is_looked_at_afresh() {
    let (_dir, root) = tree();
    let site = site(root.clone());
    let files = HtaccessFiles::default();
    fs::write(root.join("a/b/.htaccess"), "Bogus old\n").unwrap();
    assert_eq!(versions(&files, &site, "/a/b/page.txt"), ["Bogus old"]);
    fs::rename(root.join("a/b"), root.join("b-old")).unwrap();
    fs::create_dir(root.join("a/b")).unwrap();
    fs::write(root.join("a/b/.htaccess"), "Bogus new\n").unwrap();
    assert_eq!(versions(&files, &site, "/a/b/page.txt"), ["Bogus new"]);
    // And moved back: the old directory, with its own file, at its old path.
    fs::rename(root.join("a/b"), root.join("b-new")).unwrap();
    fs::rename(root.join("b-old"), root.join("a/b")).unwrap();
    assert_eq!(versions(&files, &site, "/a/b/page.txt"), ["Bogus old"]);
    overwrite(&root.join("a/b/.htaccess"), "Bogus edited\n");
    assert_eq!(versions(&files, &site, "/a/b/page.txt"), ["Bogus edited"]);
}

#[test]
fn a_symlinked_htaccess_is_checked_on_every_use() {
    let (_dir, root) = tree();
    let site = site(root.clone());
    let files = HtaccessFiles::default();
    fs::write(root.join("shared-rules"), "Bogus one\n").unwrap();
    std::os::unix::fs::symlink(root.join("shared-rules"), root.join("a/.htaccess")).unwrap();
    assert_eq!(versions(&files, &site, "/a/b/page.txt"), ["Bogus one"]);
    assert!(!files.files.get(root.join("a").as_os_str()).unwrap().watched);
    // The target is edited where the directory's watch cannot see it.
    fs::write(root.join("shared-rules"), "Bogus two, longer\n").unwrap();
    assert_eq!(
        versions(&files, &site, "/a/b/page.txt"),
        ["Bogus two, longer"]
    );
}

#[test]
fn every_thread_s_copy_follows_an_edit() {
    let (_dir, root) = tree();
    let site = site(root.clone());
    let files = HtaccessFiles::default();
    fs::write(root.join("a/.htaccess"), "Bogus one\n").unwrap();
    let step = std::sync::Barrier::new(3);
    std::thread::scope(|scope| {
        let runtime_thread = || {
            // Each thread makes its own copy, then must drop it for the edited file.
            assert_eq!(versions(&files, &site, "/a/b/page.txt"), ["Bogus one"]);
            assert_eq!(versions(&files, &site, "/a/b/page.txt"), ["Bogus one"]);
            step.wait();
            step.wait();
            assert_eq!(versions(&files, &site, "/a/b/page.txt"), ["Bogus two"]);
        };
        let threads = [scope.spawn(runtime_thread), scope.spawn(runtime_thread)];
        step.wait();
        overwrite(&root.join("a/.htaccess"), "Bogus two\n");
        step.wait();
        for thread in threads {
            thread.join().unwrap();
        }
    });
    fs::write(root.join("a/b/.htaccess"), "Bogus deep\n").unwrap();
    assert_eq!(
        versions(&files, &site, "/a/b/page.txt"),
        ["Bogus two", "Bogus deep"]
    );
}

#[test]
fn a_copy_is_reused_while_its_source_is_unchanged() {
    let (_dir, root) = tree();
    let site = site(root.clone());
    let files = HtaccessFiles::default();
    fs::write(root.join("a/.htaccess"), "Bogus one\n").unwrap();
    let first = files
        .chain(&site, "/a/b/page.txt", &StatMemo::default())
        .rules;
    // A notice about another directory moves the count; this directory's copy stays.
    fs::write(root.join(".htaccess"), "Bogus root\n").unwrap();
    let second = files
        .chain(&site, "/a/b/page.txt", &StatMemo::default())
        .rules;
    assert_eq!(second.len(), 2);
    assert!(Rc::ptr_eq(&first[0], &second[1]));
}
