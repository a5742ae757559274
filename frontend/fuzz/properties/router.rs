//! The property of the `router_path` fuzz target, shared with the corpus replay in
//! frontend/tests/fuzz_corpus.rs.
//!
//! A document root with files, directories, a dotfile, and symlinks pointing inside and outside
//! it (plus a sibling directory whose name starts like the root's) is built once. For any request
//! path, `route` must not panic, and whatever it resolves to — a static file or a script — must,
//! with every symlink resolved, lie under the root, be a regular file, never be a dotfile, and for
//! a script have one of the route's extensions. Redirects stay on the site (a path, not a URL).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use frontend::router::{route, Route};
use protocol::control::{ScriptRouteSpec, SiteSpec};

struct Fixture {
    _dir: tempfile::TempDir,
    site: SiteSpec,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = dir.path().canonicalize().expect("canonical temp dir");
        let root = base.join("site");
        let outside = base.join("site-evil");
        for d in [
            "upload",
            "app",
            "sub/deeper",
            "cgi-bin",
            ".git",
            ".well-known",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::create_dir_all(&outside).unwrap();
        for (file, text) in [
            ("index.php", "<?php"),
            ("info.php", "<?php"),
            ("style.css", "body{}"),
            ("upload/x.jpg", "GIF89a<?php"),
            ("app/index.php", "<?php"),
            ("sub/deeper/page.html", "<p>"),
            ("cgi-bin/run.sh", "#!/bin/sh"),
            (".env", "SECRET=1"),
            (".git/config", "[core]"),
            (".well-known/security.txt", "Contact: x"),
        ] {
            fs::write(root.join(file), text).unwrap();
        }
        fs::write(outside.join("secret.php"), "<?php").unwrap();
        fs::write(outside.join("secret.txt"), "secret").unwrap();
        let links: [(&str, &Path); 6] = [
            ("link_out_dir", &outside),
            ("link_out_file.php", &outside.join("secret.php")),
            ("link_etc", Path::new("/etc")),
            ("link_in_dir", &root.join("sub")),
            ("link_in_file.php", &root.join("index.php")),
            ("sub/deeper/up", &root),
        ];
        for (name, target) in links {
            std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        }
        let script =
            |prefix: Option<&str>, pool: &str, ext: &[&str], front: Option<&str>| ScriptRouteSpec {
                prefix: prefix.map(String::from),
                pool: pool.into(),
                extensions: ext.iter().map(|e| e.to_string()).collect(),
                front_controller: front.map(String::from),
                compress: false,
                unbuffered: Vec::new(),
            };
        let site = SiteSpec {
            name: "fuzz".into(),
            hosts: vec!["*".into()],
            root,
            index: vec!["index.php".into(), "index.html".into()],
            routes: vec![script(Some("/cgi-bin/"), "cgi", &["sh"], None)],
            mounts: Vec::new(),
            script: Some(script(None, "php", &["php"], Some("/index.php"))),
            // The default policy: a resolved path never leaves the root (the property checked).
            symlinks: protocol::control::SymlinkPolicy::InsideRoot,
            precompressed: false,
            cache_control: Vec::new(),
            default: true,
            error_pages: Vec::new(),
            https_redirect: false,
            hsts: None,
            redirects: Vec::new(),
            rules: Default::default(),
            sendfile: Default::default(),
        };
        Fixture { _dir: dir, site }
    })
}

/// Checks one input (bytes that are not UTF-8 cannot be a request path: hyper rejects them).
pub(crate) fn check(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let site = &fixture().site;
    match route(site, path) {
        Route::Static(file) => assert_served_file(site, &file.path, path),
        Route::Script(target) => {
            let filename = target.filename.as_deref().expect("a script has a file");
            assert_served_file(site, filename, path);
            let extension = filename.extension().and_then(|e| e.to_str()).unwrap_or("");
            let allowed = site
                .routes
                .iter()
                .chain(site.script.iter())
                .any(|r| r.pool == target.pool && r.extensions.iter().any(|e| e == extension));
            assert!(
                allowed,
                "{path:?} runs {target:?}, not a script of its pool"
            );
            assert!(
                target.name.starts_with('/'),
                "{path:?}: SCRIPT_NAME {:?}",
                target.name
            );
        }
        Route::AddSlash(location) => assert!(
            location.starts_with('/') && !location.starts_with("//"),
            "{path:?} redirects off the site: {location:?}"
        ),
        Route::NotFound | Route::BadRequest(_) | Route::App(_) => {}
    }
}

fn assert_served_file(site: &SiteSpec, file: &Path, path: &str) {
    let real: PathBuf = file
        .canonicalize()
        .unwrap_or_else(|e| panic!("{path:?} resolved to {file:?}, which does not resolve: {e}"));
    assert!(
        real.starts_with(&site.root),
        "{path:?} escapes the document root: {file:?} is {real:?}"
    );
    assert!(real.is_file(), "{path:?} resolved to {real:?}, not a file");
    let relative = real.strip_prefix(&site.root).unwrap();
    assert!(
        !relative
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.')
                && c.as_os_str() != ".well-known"),
        "{path:?} serves the dotfile {real:?}"
    );
}
