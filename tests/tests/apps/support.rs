//! What the tests of this theme share: a paddock serving the Flask test app (2 processes × 8
//! threads, mounted at `/`), and small curl helpers.

use std::path::PathBuf;

use harness::wsgi::{apps_dir, python_has, threaded_pool_on, WsgiServer};
use harness::{listeners_h2c, Paddock};
use serde_json::Value;

pub(crate) const WORKERS: u32 = 2;
pub(crate) const THREADS: u32 = 8;

/// A running Flask site and what the test may need from its set-up.
pub(crate) struct FlaskSite {
    pub(crate) paddock: Paddock,
    /// Lines `ORDER_ID PID` the app appends for each POST /api/orders it runs.
    pub(crate) order_log: PathBuf,
    /// Release files for held requests live here.
    pub(crate) scratch: tempfile::TempDir,
}

/// `None` (the test then does nothing, having said why) without Debian's python3-flask.
pub(crate) fn flask_site(extra_pool: &str) -> Option<FlaskSite> {
    flask_site_on(WsgiServer::Flup, extra_pool)
}

/// [`flask_site`] with the workers running `server`; `None` also when it is not installed.
pub(crate) fn flask_site_on(server: WsgiServer, extra_pool: &str) -> Option<FlaskSite> {
    flask_site_at(server, "/", extra_pool)
}

/// [`flask_site_on`] with the app mounted at `prefix`.
pub(crate) fn flask_site_at(
    server: WsgiServer,
    prefix: &str,
    extra_pool: &str,
) -> Option<FlaskSite> {
    flask_site_edited(server, prefix, extra_pool, |config| config)
}

/// [`flask_site_at`] with its configuration passed through `edit` before paddock starts.
pub(crate) fn flask_site_edited(
    server: WsgiServer,
    prefix: &str,
    extra_pool: &str,
    edit: impl FnOnce(String) -> String,
) -> Option<FlaskSite> {
    if !python_has(&["flask"], "python3-flask") || !server.available() {
        return None;
    }
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("public");
    std::fs::create_dir_all(root.join("static")).unwrap();
    std::fs::write(root.join("static/site.css"), "h1 { color: teal }\n").unwrap();
    let order_log = scratch.path().join("orders.log");
    let app_dir = apps_dir().join("flask_app");
    // A worker that gets the request over HTTP learns the client's address, scheme and mount
    // from X-Forwarded-* headers, as behind any reverse proxy.
    let target = if server.speaks_http() {
        "behind_proxy:app"
    } else {
        "app:app"
    };
    let pool = threaded_pool_on(
        server,
        &app_dir,
        target,
        WORKERS,
        THREADS,
        &format!(
            "env = {{ ORDER_LOG = \"{}\" }}\n{extra_pool}",
            order_log.display()
        ),
    );
    let config = format!(
        r#"{listeners}
[sites.flask]
root = "{root}"

[sites.flask.mounts.app]
prefix = "{prefix}"
pool = "flask"
static_first = true
unbuffered = ["/stream"]

[pools.flask]
{pool}
"#,
        listeners = listeners_h2c(),
        root = root.display(),
    );
    let paddock = Paddock::start_with(&edit(config), true);
    Some(FlaskSite {
        paddock,
        order_log,
        scratch,
    })
}

/// curl's output, failing the test (with paddock's log) when curl itself failed.
pub(crate) fn curl_ok(paddock: &Paddock, args: &[&str]) -> String {
    let output = paddock.curl(args);
    assert!(
        output.status.success(),
        "curl {args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        paddock.log()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The pids of the pool's worker processes, as `/status` lists them.
pub(crate) fn worker_pids(paddock: &Paddock) -> Vec<u64> {
    let pool = paddock.pool_status("flask");
    pool["processes"]
        .as_array()
        .map(|p| p.iter().filter_map(|w| w["pid"].as_u64()).collect())
        .unwrap_or_default()
}
