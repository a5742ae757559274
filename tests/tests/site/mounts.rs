//! Application mounts (`[sites.NAME.mounts.MOUNT]`): every request under a prefix goes to a pool
//! with no script file, as nginx's `location /app { fastcgi_pass … }` does, for prefork, threaded
//! and external pools alike. `fcgi-echo` answers with the parameters it received, so the test
//! reads SCRIPT_NAME, PATH_INFO and SCRIPT_FILENAME as the application saw them.

use std::path::Path;

use harness::peers::FcgiApp;
use harness::Paddock;
use serde_json::Value;

fn echo() -> &'static str {
    env!("CARGO_BIN_EXE_fcgi-echo")
}

/// A site with a static file and a directory, the whole site mounted to pool `app` with static
/// files first, and `/api` mounted to pool `api` (its SCRIPT_FILENAME configured).
fn config(root: &Path, app_pool: &str, api_pool: &str) -> String {
    format!(
        r#"
[sites.app]
root = "{root}"

[sites.app.mounts.site]
prefix = "/"
pool = "app"
static_first = true

[sites.app.mounts.api]
prefix = "/api/"
pool = "api"
script_filename = "/srv/api/main.fcgi"

[pools.app]
{app_pool}

[pools.api]
{api_pool}
"#,
        root = root.display()
    )
}

fn site_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("static")).unwrap();
    std::fs::write(root.path().join("static/app.css"), "body { color: teal }").unwrap();
    std::fs::write(root.path().join("static/index.html"), "an index").unwrap();
    root
}

/// The parameters the application received for `path` (GET), with the pid that answered.
fn params(paddock: &Paddock, path: &str) -> Value {
    let output = paddock.curl(&["-sS", "--fail-with-body", &paddock.url(path)]);
    let body = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{path}: {body} {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        paddock.log()
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"))
}

fn param<'a>(answer: &'a Value, name: &str) -> Option<&'a str> {
    answer["params"][name].as_str()
}

/// What every pool kind must show: the split, the absent or configured SCRIPT_FILENAME, the
/// static file served by the front end, the raw REQUEST_URI.
fn check_mounts(paddock: &Paddock) {
    let root = params(paddock, "/");
    assert_eq!(param(&root, "SCRIPT_NAME"), Some(""));
    assert_eq!(param(&root, "PATH_INFO"), Some("/"));
    assert_eq!(param(&root, "SCRIPT_FILENAME"), None, "{root}");

    let page = params(paddock, "/users/42/edit?tab=a%20b");
    assert_eq!(param(&page, "SCRIPT_NAME"), Some(""));
    assert_eq!(param(&page, "PATH_INFO"), Some("/users/42/edit"));
    assert_eq!(param(&page, "QUERY_STRING"), Some("tab=a%20b"));
    assert_eq!(
        param(&page, "REQUEST_URI"),
        Some("/users/42/edit?tab=a%20b")
    );

    let api = params(paddock, "/api/items/a%20b/");
    assert_eq!(param(&api, "SCRIPT_NAME"), Some("/api"));
    assert_eq!(param(&api, "PATH_INFO"), Some("/items/a b/"));
    assert_eq!(param(&api, "SCRIPT_FILENAME"), Some("/srv/api/main.fcgi"));
    let bare = params(paddock, "/api");
    assert_eq!(param(&bare, "SCRIPT_NAME"), Some("/api"));
    assert_eq!(param(&bare, "PATH_INFO"), None, "{bare}");
    // Not under /api: a path segment must match whole.
    let apiary = params(paddock, "/apiary");
    assert_eq!(param(&apiary, "SCRIPT_NAME"), Some(""));
    assert_eq!(param(&apiary, "PATH_INFO"), Some("/apiary"));

    // static_first: an existing file is the front end's; its directory is the application's.
    let css = paddock.curl(&["-sS", "-i", &paddock.url("/static/app.css")]);
    let css = String::from_utf8_lossy(&css.stdout);
    assert!(css.contains("body { color: teal }"), "{css}");
    assert!(!css.to_ascii_lowercase().contains("x-fcgi-echo"), "{css}");
    let dir = params(paddock, "/static/");
    assert_eq!(param(&dir, "PATH_INFO"), Some("/static/"));
    let missing = params(paddock, "/static/missing.css");
    assert_eq!(param(&missing, "PATH_INFO"), Some("/static/missing.css"));

    // A POST body reaches the application whole.
    let output = paddock.curl(&[
        "-sS",
        "--fail-with-body",
        "--data-binary",
        "name=paddock&kind=front",
        &paddock.url("/api/form"),
    ]);
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["stdin_len"], 23, "{answer}");
    assert_eq!(param(&answer, "REQUEST_METHOD"), Some("POST"));
}

#[test]
fn prefork_and_threaded_pools_serve_mounted_applications() {
    let root = site_root();
    let prefork = format!(
        "mode = \"prefork\"\ncommand = [\"{}\"]\nworkers = 2",
        echo()
    );
    let threaded = format!(
        "mode = \"threaded\"\nthreads = 4\ncommand = [\"{}\", \"--threads\", \"4\"]\nworkers = 1",
        echo()
    );
    let paddock = Paddock::start(&config(root.path(), &prefork, &threaded));
    check_mounts(&paddock);
}

#[test]
fn an_external_server_serves_a_mounted_application() {
    let root = site_root();
    let sockets = tempfile::tempdir().unwrap();
    let app = FcgiApp::start(
        Path::new(echo()),
        &["--threads", "4"],
        &sockets.path().join("app.sock"),
    );
    let api = FcgiApp::start(Path::new(echo()), &[], &sockets.path().join("api.sock"));
    let external =
        |socket: &Path| format!("mode = \"external\"\nsocket = \"{}\"", socket.display());
    let paddock = Paddock::start(&config(
        root.path(),
        &external(&app.socket),
        &external(&api.socket),
    ));
    check_mounts(&paddock);
    let answer = params(&paddock, "/anything");
    assert_eq!(answer["pid"], app.pid(), "{answer}");
}
