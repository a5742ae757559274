//! A static file's answer comes from an earlier request until a change notice voids it; every
//! kind of change to the file, or to what its path leads to, counts from the next request on.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use protocol::control::{SiteSpec, SymlinkPolicy};

use super::super::tests::{get, site_with_htaccess, LOCALHOST, WORDPRESS};
use super::super::{before_routing, CompiledSite, RuleFiles, Verdict};
use crate::http::router::{route_with_index, stat_count, Route};

/// What a request for `target` is served as, as the front end finds it: the rules phase, then
/// the router's walk through what the rules phase found on disk. The second value counts the
/// `stat`s both made.
fn serve(
    compiled: &CompiledSite,
    site: &SiteSpec,
    files: &RuleFiles,
    target: &str,
) -> (Route, u64) {
    let before = stat_count::get();
    let parts = get(target);
    let Verdict::Route(routing) = before_routing(compiled, site, &parts, LOCALHOST, files) else {
        panic!("{target}: answered by the rules");
    };
    let path = routing
        .rewritten
        .as_ref()
        .map_or(parts.uri.path(), |uri| uri.path())
        .to_string();
    let route = route_with_index(site, &path, &site.index, &routing.stats);
    (route, stat_count::get() - before)
}

fn size(route: &Route) -> Option<u64> {
    match route {
        Route::Static(file) => Some(file.meta.len()),
        _ => None,
    }
}

/// Serves `target` until the verdict is remembered and the answers are kept (the third time,
/// see the verdict cache's doorkeeper), and checks that the next one asks the kernel nothing.
fn warm(compiled: &CompiledSite, site: &SiteSpec, files: &RuleFiles, target: &str) -> Route {
    for _ in 0..3 {
        serve(compiled, site, files, target);
    }
    let (route, stats) = serve(compiled, site, files, target);
    assert_eq!(stats, 0, "{target}: a warm request made {stats} stats");
    route
}

#[test]
fn an_unchanged_file_is_served_without_a_stat() {
    let (_dir, site, compiled) = site_with_htaccess(WORDPRESS);
    fs::create_dir(site.root.join("css")).unwrap();
    fs::write(site.root.join("css/site.css"), "body{}").unwrap();
    fs::write(site.root.join("robots.txt"), "User-agent: *").unwrap();
    let files = RuleFiles::default();
    assert_eq!(
        size(&warm(&compiled, &site, &files, "/robots.txt")),
        Some(13)
    );
    assert_eq!(
        size(&warm(&compiled, &site, &files, "/css/site.css")),
        Some(6)
    );
    // The first file's answer survived the second file's requests.
    assert_eq!(serve(&compiled, &site, &files, "/robots.txt").1, 0);
}

#[test]
fn a_written_file_counts_from_the_next_request() {
    let (_dir, site, compiled) = site_with_htaccess(WORDPRESS);
    let file = site.root.join("robots.txt");
    fs::write(&file, "short").unwrap();
    let files = RuleFiles::default();
    assert_eq!(
        size(&warm(&compiled, &site, &files, "/robots.txt")),
        Some(5)
    );
    fs::write(&file, "a longer text").unwrap();
    let (route, stats) = serve(&compiled, &site, &files, "/robots.txt");
    assert_eq!(size(&route), Some(13));
    assert!(stats > 0);
    assert_eq!(serve(&compiled, &site, &files, "/robots.txt").1, 0);
}

#[test]
fn permissions_and_times_count_from_the_next_request() {
    let (_dir, site, compiled) = site_with_htaccess(WORDPRESS);
    let file = site.root.join("robots.txt");
    fs::write(&file, "x").unwrap();
    let files = RuleFiles::default();
    let mode = |route: &Route| match route {
        Route::Static(file) => file.meta.mode() & 0o777,
        other => panic!("{other:?}"),
    };
    let before = mode(&warm(&compiled, &site, &files, "/robots.txt"));
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    assert_ne!(before, 0o600);
    assert_eq!(
        mode(&serve(&compiled, &site, &files, "/robots.txt").0),
        0o600
    );
    let mtime = |route: &Route| match route {
        Route::Static(file) => file.meta.mtime(),
        other => panic!("{other:?}"),
    };
    let warmed = mtime(&warm(&compiled, &site, &files, "/robots.txt"));
    let earlier = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(earlier)
        .unwrap();
    let now = mtime(&serve(&compiled, &site, &files, "/robots.txt").0);
    assert_ne!(now, warmed);
    assert_eq!(now, 1_000_000);
}

#[test]
fn a_removed_renamed_or_new_file_counts_from_the_next_request() {
    let (_dir, site, compiled) = site_with_htaccess(WORDPRESS);
    let root = site.root.clone();
    fs::create_dir(root.join("img")).unwrap();
    fs::write(root.join("img/a.png"), "aa").unwrap();
    let files = RuleFiles::default();
    assert_eq!(size(&warm(&compiled, &site, &files, "/img/a.png")), Some(2));
    // Missing: the front controller's, remembered as missing too.
    let missing = warm(&compiled, &site, &files, "/img/b.png");
    assert!(matches!(missing, Route::Script(_)), "{missing:?}");
    fs::rename(root.join("img/a.png"), root.join("img/b.png")).unwrap();
    assert!(matches!(
        serve(&compiled, &site, &files, "/img/a.png").0,
        Route::Script(_)
    ));
    assert_eq!(
        size(&serve(&compiled, &site, &files, "/img/b.png").0),
        Some(2)
    );
    fs::remove_file(root.join("img/b.png")).unwrap();
    assert!(matches!(
        serve(&compiled, &site, &files, "/img/b.png").0,
        Route::Script(_)
    ));
    // A directory moved away with the file in it: the parent's notice.
    fs::write(root.join("img/c.png"), "ccc").unwrap();
    assert_eq!(size(&warm(&compiled, &site, &files, "/img/c.png")), Some(3));
    fs::rename(root.join("img"), root.join("old-img")).unwrap();
    assert!(matches!(
        serve(&compiled, &site, &files, "/img/c.png").0,
        Route::Script(_)
    ));
}

#[test]
fn a_symlinked_file_is_asked_every_time() {
    let (_dir, mut site, _) = site_with_htaccess(WORDPRESS);
    site.symlinks = SymlinkPolicy::Always;
    let compiled = CompiledSite::new(rules::site::SiteRules::compile(&site.rules).unwrap());
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("shared.css");
    fs::write(&target, "one").unwrap();
    std::os::unix::fs::symlink(&target, site.root.join("shared.css")).unwrap();
    let files = RuleFiles::default();
    for _ in 0..4 {
        let (route, stats) = serve(&compiled, &site, &files, "/shared.css");
        assert_eq!(size(&route), Some(3));
        assert!(
            stats > 0,
            "the link's target is not watched: asked each time"
        );
    }
    // Written where no watch of the site sees it.
    fs::write(&target, "three").unwrap();
    assert_eq!(
        size(&serve(&compiled, &site, &files, "/shared.css").0),
        Some(5)
    );
    assert!(!Path::new(&site.root.join("shared.css")).is_dir());
}

#[test]
fn a_site_without_htaccess_keeps_nothing() {
    let (_dir, mut site, _) = site_with_htaccess("");
    site.rules.htaccess = false;
    let compiled = CompiledSite::new(rules::site::SiteRules::compile(&site.rules).unwrap());
    fs::write(site.root.join("robots.txt"), "x").unwrap();
    let files = RuleFiles::default();
    for _ in 0..4 {
        assert!(serve(&compiled, &site, &files, "/robots.txt").1 > 0);
    }
    assert_eq!(super::held(), 0);
}

/// A change no notice reports (a write through a hard link in a directory the site does not
/// watch) counts once the answer is [`super::MAX_AGE`] old.
#[test]
fn an_unreported_change_counts_within_a_second() {
    let (_dir, site, compiled) = site_with_htaccess(WORDPRESS);
    let outside = tempfile::tempdir().unwrap();
    let elsewhere = outside.path().join("alias.txt");
    fs::write(&elsewhere, "one").unwrap();
    fs::hard_link(&elsewhere, site.root.join("robots.txt")).unwrap();
    let files = RuleFiles::default();
    assert_eq!(
        size(&warm(&compiled, &site, &files, "/robots.txt")),
        Some(3)
    );
    fs::write(&elsewhere, "three").unwrap();
    std::thread::sleep(super::MAX_AGE + std::time::Duration::from_millis(50));
    let (route, stats) = serve(&compiled, &site, &files, "/robots.txt");
    assert_eq!(size(&route), Some(5));
    assert!(stats > 0);
}
