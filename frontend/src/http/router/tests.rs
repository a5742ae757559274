use std::fs;

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    site: SiteSpec,
}

fn fixture(front_controller: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    fs::create_dir_all(root.join("upload")).unwrap();
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::create_dir_all(root.join("app")).unwrap();
    fs::write(root.join("index.php"), "<?php").unwrap();
    fs::write(root.join("info.php"), "<?php").unwrap();
    fs::write(root.join("style.css"), "body{}").unwrap();
    fs::write(root.join("upload/x.jpg"), "GIF89a<?php").unwrap();
    fs::write(root.join("docs/index.html"), "<p>").unwrap();
    fs::write(root.join("app/index.php"), "<?php").unwrap();
    fs::write(root.join(".env"), "SECRET=1").unwrap();
    let site = SiteSpec {
        name: "t".into(),
        hosts: vec!["*".into()],
        root,
        index: vec!["index.php".into(), "index.html".into()],
        routes: Vec::new(),
        mounts: Vec::new(),
        script: Some(ScriptRouteSpec {
            prefix: None,
            pool: "php".into(),
            extensions: vec!["php".into()],
            front_controller: front_controller.map(String::from),
            unbuffered: Vec::new(),
            compress: true,
        }),
        symlinks: SymlinkPolicy::InsideRoot,
        precompressed: true,
        cache_control: Vec::new(),
        default: false,
        error_pages: Vec::new(),
        https_redirect: false,
        hsts: None,
        redirects: Vec::new(),
        rules: Default::default(),
        sendfile: Default::default(),
    };
    Fixture { _dir: dir, site }
}

fn script(name: &str, path_info: &str, f: &Fixture) -> Route {
    Route::Script(ScriptTarget {
        pool: "php".into(),
        filename: Some(f.site.root.join(name.trim_start_matches('/'))),
        name: name.into(),
        path_info: path_info.into(),
    })
}

#[test]
fn static_files_and_scripts() {
    let f = fixture(Some("/index.php"));
    assert_eq!(
        route(&f.site, "/style.css"),
        Route::Static(StaticFile::at(f.site.root.join("style.css")).unwrap())
    );
    assert_eq!(route(&f.site, "/info.php"), script("/info.php", "", &f));
    assert_eq!(
        route(&f.site, "/info.php/a/b"),
        script("/info.php", "/a/b", &f)
    );
    assert_eq!(route(&f.site, "/info%2Ephp"), script("/info.php", "", &f));
}

#[test]
fn non_script_file_with_trailing_path_never_executes() {
    let f = fixture(Some("/index.php"));
    assert_eq!(route(&f.site, "/upload/x.jpg/foo.php"), Route::NotFound);
    assert_eq!(route(&f.site, "/upload/x.jpg/"), Route::NotFound);
    assert_eq!(route(&f.site, "/upload/x.jpg%2Ffoo.php"), Route::NotFound);
}

#[test]
fn directories_redirect_then_use_index() {
    let f = fixture(None);
    assert_eq!(route(&f.site, "/docs"), Route::AddSlash("/docs/".into()));
    assert_eq!(
        route(&f.site, "/docs/"),
        Route::Static(StaticFile::at(f.site.root.join("docs/index.html")).unwrap())
    );
    assert_eq!(route(&f.site, "/app/"), script("/app/index.php", "", &f));
    assert_eq!(route(&f.site, "/"), script("/index.php", "", &f));
}

#[test]
fn front_controller_takes_unknown_paths_but_not_missing_scripts() {
    let f = fixture(Some("/index.php"));
    assert_eq!(
        route(&f.site, "/blog/2024/hello"),
        script("/index.php", "", &f)
    );
    assert_eq!(route(&f.site, "/missing.php"), Route::NotFound);
    let without = fixture(None);
    assert_eq!(route(&without.site, "/blog/2024/hello"), Route::NotFound);
    assert_eq!(route(&without.site, "/missing.css"), Route::NotFound);
}

#[test]
fn traversal_and_hidden_files() {
    let f = fixture(Some("/index.php"));
    assert!(matches!(
        route(&f.site, "/../etc/passwd"),
        Route::BadRequest(_)
    ));
    assert!(matches!(
        route(&f.site, "/%2e%2e/etc/passwd"),
        Route::BadRequest(_)
    ));
    assert!(matches!(
        route(&f.site, "/a/..%2f..%2fetc"),
        Route::BadRequest(_)
    ));
    assert_eq!(
        route(&f.site, "/docs/../style.css"),
        Route::Static(StaticFile::at(f.site.root.join("style.css")).unwrap())
    );
    assert_eq!(route(&f.site, "/.env"), Route::NotFound);
    assert!(matches!(route(&f.site, "/a%00.php"), Route::BadRequest(_)));
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_root_are_not_followed() {
    let f = fixture(None);
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        f.site.root.join("link.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        f.site.root.join("style.css"),
        f.site.root.join("inside.css"),
    )
    .unwrap();
    assert_eq!(route(&f.site, "/link.txt"), Route::NotFound);
    assert_eq!(
        route(&f.site, "/inside.css"),
        Route::Static(StaticFile::at(f.site.root.join("inside.css")).unwrap())
    );
}

#[test]
fn prefix_routes_send_their_scripts_to_their_pool() {
    let mut f = fixture(Some("/index.php"));
    fs::create_dir_all(f.site.root.join("cgi-bin")).unwrap();
    fs::write(f.site.root.join("cgi-bin/env.sh"), "#!/bin/sh").unwrap();
    fs::write(f.site.root.join("cgi-bin/page.php"), "<?php").unwrap();
    f.site.routes.push(ScriptRouteSpec {
        prefix: Some("/cgi-bin/".into()),
        pool: "cgi".into(),
        extensions: vec!["sh".into()],
        front_controller: None,
        compress: false,
        unbuffered: Vec::new(),
    });
    let Route::Script(target) = route(&f.site, "/cgi-bin/env.sh/extra") else {
        panic!()
    };
    assert_eq!(
        (target.pool.as_str(), target.path_info.as_str()),
        ("cgi", "/extra")
    );
    // Under the prefix only the route's extensions run; a .php file there is just a file.
    assert_eq!(
        route(&f.site, "/cgi-bin/page.php"),
        Route::Static(StaticFile::at(f.site.root.join("cgi-bin/page.php")).unwrap())
    );
    assert_eq!(route(&f.site, "/cgi-bin/missing.sh"), Route::NotFound);
    assert_eq!(route(&f.site, "/info.php"), script("/info.php", "", &f));
}

fn mount(prefix: &str, pool: &str, static_first: bool) -> protocol::control::MountSpec {
    protocol::control::MountSpec {
        prefix: prefix.into(),
        pool: pool.into(),
        script_filename: None,
        static_first,
        unbuffered: Vec::new(),
        compress: true,
    }
}

fn app(pool: &str, name: &str, path_info: &str) -> Route {
    Route::App(ScriptTarget {
        pool: pool.into(),
        filename: None,
        name: name.into(),
        path_info: path_info.into(),
    })
}

#[test]
fn a_mount_takes_every_path_under_its_prefix_without_a_file() {
    let mut f = fixture(Some("/index.php"));
    // Longest first, as the config sorts them.
    f.site.mounts = vec![mount("/api/v1", "api", false), mount("/app", "wsgi", false)];
    assert_eq!(route(&f.site, "/app"), app("wsgi", "/app", ""));
    assert_eq!(route(&f.site, "/app/"), app("wsgi", "/app", "/"));
    // A file (app/index.php) under the mount is not run: the application owns the prefix.
    assert_eq!(
        route(&f.site, "/app/index.php"),
        app("wsgi", "/app", "/index.php")
    );
    assert_eq!(
        route(&f.site, "/app/a%20b/./c/"),
        app("wsgi", "/app", "/a b/c/")
    );
    assert_eq!(
        route(&f.site, "/api/v1/items"),
        app("api", "/api/v1", "/items")
    );
    // Segment-wise: /apple is not under /app, /api/v2 not under /api/v1.
    assert_eq!(route(&f.site, "/apple"), script("/index.php", "", &f));
    assert_eq!(route(&f.site, "/api/v2"), script("/index.php", "", &f));
    assert!(matches!(
        route(&f.site, "/app/../../x"),
        Route::BadRequest(_)
    ));
    // Dotfiles are the application's business under a mount: nothing on disk is read.
    assert_eq!(route(&f.site, "/app/.env"), app("wsgi", "/app", "/.env"));
}

#[test]
fn a_root_mount_has_an_empty_script_name_and_its_file_when_configured() {
    let mut f = fixture(None);
    let mut whole = mount("", "wsgi", false);
    whole.script_filename = Some("/srv/app/wsgi.py".into());
    f.site.mounts = vec![whole];
    let Route::App(target) = route(&f.site, "/style.css") else {
        panic!("a root mount without static_first takes files too")
    };
    assert_eq!(
        (target.name.as_str(), target.path_info.as_str()),
        ("", "/style.css")
    );
    assert_eq!(
        target.filename.as_deref(),
        Some(Path::new("/srv/app/wsgi.py"))
    );
    let Route::App(target) = route(&f.site, "/") else {
        panic!()
    };
    assert_eq!((target.name.as_str(), target.path_info.as_str()), ("", "/"));
}

#[test]
fn static_first_serves_existing_files_and_sends_the_rest_to_the_app() {
    let mut f = fixture(None);
    f.site.script = None;
    f.site.mounts = vec![mount("", "wsgi", true)];
    assert_eq!(
        route(&f.site, "/style.css"),
        Route::Static(StaticFile::at(f.site.root.join("style.css")).unwrap())
    );
    // Directories, their index files, missing files, dotfiles: the application's.
    assert_eq!(route(&f.site, "/"), app("wsgi", "", "/"));
    assert_eq!(route(&f.site, "/docs/"), app("wsgi", "", "/docs/"));
    assert_eq!(route(&f.site, "/docs"), app("wsgi", "", "/docs"));
    assert_eq!(route(&f.site, "/login"), app("wsgi", "", "/login"));
    assert_eq!(route(&f.site, "/.env"), app("wsgi", "", "/.env"));
    // A file followed by more path is not that file.
    assert_eq!(
        route(&f.site, "/style.css/more"),
        app("wsgi", "", "/style.css/more")
    );
    assert!(matches!(route(&f.site, "/%00"), Route::BadRequest(_)));
}
