//! What the tests of this theme share: a paddock serving the Flask test app (2 processes × 8
//! threads, mounted at `/`), and small curl helpers.

use std::io;
use std::path::PathBuf;
use std::thread::JoinHandle;

use harness::client::Response;
use harness::peers::Process;
use harness::wsgi::{apps_dir, python_has, threaded_pool_on, WsgiServer};
use harness::{children_of, listeners_h2c, Paddock};
use serde_json::Value;

pub(crate) const WORKERS: u32 = 2;
pub(crate) const THREADS: u32 = 8;
/// A pool's lines that send requests ahead to its busy granian workers whatever the requests'
/// length (the default bound, 500 µs on average, depends on the machine's speed).
pub(crate) const SEND_AHEAD: &str = "send_ahead = true\nsend_ahead_below = \"1h\"";
/// The bound alone, for a `builtin = "wsgi"` pool, which sends requests ahead by default.
pub(crate) const SEND_AHEAD_BELOW: &str = "send_ahead_below = \"1h\"";
/// A `builtin = "wsgi"` pool's line that keeps every request in the front end's queue until a
/// thread is free.
pub(crate) const NO_SEND_AHEAD: &str = "send_ahead = false";

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

/// paddock in front of an application server it does not start (`server`, already listening on
/// `socket`, with two worker processes): every path goes to the external pool `name`, spoken to
/// in `protocol`. Returns paddock and the pids of the server's workers.
pub(crate) fn external_site(
    server: &Process,
    name: &str,
    socket: &std::path::Path,
    protocol: &str,
    root: &std::path::Path,
) -> (Paddock, Vec<u64>) {
    let config = format!(
        r#"{listeners}
[sites.app]
root = "{root}"

[sites.app.mounts.app]
prefix = "/"
pool = "{name}"
unbuffered = ["/stream"]

[pools.{name}]
mode = "external"
socket = "{socket}"
connections = 8
protocol = "{protocol}"
"#,
        listeners = listeners_h2c(),
        root = root.display(),
        socket = socket.display(),
    );
    let paddock = Paddock::start_with(&config, true);
    let workers = harness::wait::wait_for(&format!("{name}'s two workers"), || {
        Some(children_of(server.pid()))
            .filter(|children| children.len() == 2)
            .map(|children| children.iter().map(|&(pid, _)| u64::from(pid)).collect())
    });
    (paddock, workers)
}

/// Starts an application server of the test's own (`command`, its stderr to `log`) and waits
/// until it accepts on `socket`.
pub(crate) fn start_listening(
    name: &'static str,
    command: &mut std::process::Command,
    socket: &std::path::Path,
    log: &std::path::Path,
) -> Process {
    let mut server = Process::spawn(
        name,
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap()),
    );
    harness::peers::wait_until(
        &mut server,
        || std::os::unix::net::UnixStream::connect(socket).is_ok(),
        || std::fs::read_to_string(log).unwrap_or_default(),
    );
    server
}

/// What any external server of the Flask app must do behind paddock, with curl's `option`
/// (`--http1.1` or `--http2-prior-knowledge`): a JSON answer from one of its `workers`, and a
/// form POST escaped by the template (`log`: the server's, for the failure message).
pub(crate) fn assert_serves_the_app(
    paddock: &Paddock,
    workers: &[u64],
    option: &str,
    log: &std::path::Path,
) {
    let item = json(&curl_ok(paddock, &[option, &paddock.url("/api/items/42")]));
    assert_eq!(item["name"], "item 42", "{option}");
    let pid = item["pid"].as_u64().unwrap();
    assert!(
        workers.contains(&pid),
        "{option}: answered by {pid}, not one of the server's workers {workers:?}"
    );
    let thanks = curl_ok(
        paddock,
        &[
            option,
            "--data-urlencode",
            "name=Ana & <Bo>",
            "-d",
            "colour=red",
            &paddock.url("/form"),
        ],
    );
    assert!(
        thanks.contains("Thanks, Ana &amp; &lt;Bo&gt;!"),
        "{option}: {thanks}\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The answer to a request made in the background (`get_in_background`), which must be a 200
/// (with paddock's log when it is not).
pub(crate) fn answered_ok(
    paddock: &Paddock,
    request: JoinHandle<io::Result<Response>>,
) -> Response {
    let response = request.join().unwrap().expect("an answer");
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.text(),
        paddock.log()
    );
    response
}
