//! The Flask test app through a threaded pool (2 processes × 8 threads, mounted at `/` with static
//! files first), over HTTP/1.1, TLS, HTTP/2 over TLS and h2c: a rendered page with a session, a
//! form POST, a JSON API, a file upload, a login cookie, a streamed response, a slow view, and a
//! view that raises.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use harness::Paddock;

use harness::wsgi::WsgiServer;

use crate::support::{curl_ok, flask_site_at, flask_site_on, json, worker_pids};

/// A way to reach the site: its base URL, curl's protocol option, and the HTTP version curl must
/// report.
struct Transport {
    name: &'static str,
    base: String,
    option: &'static str,
    version: &'static str,
}

fn transports(paddock: &Paddock) -> Vec<Transport> {
    vec![
        Transport {
            name: "HTTP/1.1",
            base: paddock.url(""),
            option: "--http1.1",
            version: "1.1",
        },
        Transport {
            name: "h2c",
            base: paddock.url(""),
            option: "--http2-prior-knowledge",
            version: "2",
        },
        Transport {
            name: "TLS HTTP/1.1",
            base: paddock.https_url(""),
            option: "--http1.1",
            version: "1.1",
        },
        Transport {
            name: "TLS HTTP/2",
            base: paddock.https_url(""),
            option: "--http2",
            version: "2",
        },
    ]
}

#[test]
fn a_flask_app_works_end_to_end_over_every_transport() {
    end_to_end(WsgiServer::Flup);
}

/// The same with Debian's uWSGI as the workers' FastCGI server instead of flup.
#[test]
fn a_flask_app_works_end_to_end_in_uwsgi_workers() {
    end_to_end(WsgiServer::Uwsgi);
}

/// The same with uWSGI speaking its own protocol to a pool with `protocol = "uwsgi"`.
#[test]
fn a_flask_app_works_end_to_end_over_the_uwsgi_protocol() {
    end_to_end(WsgiServer::UwsgiNative);
}

/// The same with uWSGI speaking HTTP/1.1 to a pool with `protocol = "http"`.
#[test]
fn a_flask_app_works_end_to_end_over_http() {
    end_to_end(WsgiServer::UwsgiHttp);
}

/// The same with granian (deploy/examples/wsgi/granian_serve.py) speaking HTTP/1.1.
#[test]
fn a_flask_app_works_end_to_end_in_granian_workers() {
    end_to_end(WsgiServer::Granian);
}

/// The same with paddock's own WSGI worker (`paddock-wsgi`), the CGI variables as its environ.
#[test]
fn a_flask_app_works_end_to_end_in_paddocks_wsgi_worker() {
    end_to_end(WsgiServer::Paddock);
}

/// The same with paddock-wsgi named by the pool's `command`, as any FastCGI program.
#[test]
fn a_flask_app_works_end_to_end_in_paddock_wsgi_run_as_a_command() {
    end_to_end(WsgiServer::PaddockCommand);
}

fn end_to_end(server: WsgiServer) {
    let Some(site) = flask_site_on(server, "") else {
        return;
    };
    let paddock = &site.paddock;
    let expected = server.process_name();
    let pids = harness::wait::wait_for("both workers on /status", || {
        Some(worker_pids(paddock)).filter(|pids| pids.len() == 2)
    });
    for pid in pids {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert_eq!(comm.trim(), expected, "worker {pid} runs {server:?}");
    }
    for t in transports(paddock) {
        let jar = site
            .scratch
            .path()
            .join(format!("{}.cookies", t.name.replace(['/', ' '], "_")));
        let jar = jar.to_str().unwrap();
        let curl = |args: &[&str]| {
            let mut all = vec![t.option, "-b", jar, "-c", jar];
            all.extend_from_slice(args);
            curl_ok(paddock, &all)
        };
        let url = |path: &str| format!("{}{path}", t.base);
        let what = t.name;

        // The version really spoken, and a rendered page whose session cookie counts visits.
        let first = curl(&["-w", "\n%{http_version} %{http_code}", &url("/")]);
        assert!(first.contains("visits: 1"), "{what}: {first}");
        assert!(first.contains("script root: []"), "{what}: {first}");
        assert!(
            first.ends_with(&format!("\n{} 200", t.version)),
            "{what}: {first}"
        );
        let second = curl(&[&url("/")]);
        assert!(second.contains("visits: 2"), "{what}: {second}");

        // What the app was told about the client, whichever way it was told.
        let https = t.base.starts_with("https:");
        assert_client_seen(
            &curl(&[CLIENT_AND_ID, &url("/api/client")]),
            "",
            https,
            what,
        );

        // A static file is the front end's (no session cookie from the app).
        let css = curl(&["-i", &url("/static/site.css")]);
        assert!(css.contains("h1 { color: teal }"), "{what}: {css}");
        assert!(
            !css.to_ascii_lowercase().contains("set-cookie"),
            "{what}: {css}"
        );

        // A form POST, escaped by the template.
        let thanks = curl(&[
            "--data-urlencode",
            "name=Ana & <Bo>",
            "-d",
            "colour=red",
            "-d",
            "colour=blue",
            &url("/form"),
        ]);
        assert!(
            thanks.contains("Thanks, Ana &amp; &lt;Bo&gt;!"),
            "{what}: {thanks}"
        );
        assert!(thanks.contains("red,blue"), "{what}: {thanks}");

        // A JSON API both ways.
        let sent = r#"{"items":[1,2,3],"name":"caf\u00e9","nested":{"ok":true}}"#;
        let echoed = json(&curl(&[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            sent,
            &url("/api/echo"),
        ]));
        assert_eq!(echoed["received"], json(sent), "{what}");
        assert_eq!(echoed["length"], sent.len(), "{what}");
        let item = json(&curl(&[&url("/api/items/42")]));
        assert_eq!(item["name"], "item 42", "{what}");

        // A 300 KiB upload arrives intact (multipart, spooled by the front end on the way).
        let upload = site.scratch.path().join("upload.bin");
        let data: Vec<u8> = (0..300 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&upload, &data).unwrap();
        let stored = json(&curl(&[
            "-F",
            &format!("file=@{}", upload.display()),
            "-F",
            "note=holiday",
            &url("/upload"),
        ]));
        assert_eq!(stored["size"], data.len(), "{what}: {stored}");
        assert_eq!(
            stored["sha1"],
            sha1_smol::Sha1::from(&data).digest().to_string(),
            "{what}"
        );
        assert_eq!(stored["note"], "holiday", "{what}");

        // A login sets the session and a cookie of its own; both come back.
        let login = json(&curl(&["-d", "user=grace", &url("/login")]));
        assert_eq!(login["user"], "grace", "{what}");
        let me = json(&curl(&[&url("/me")]));
        assert_eq!(
            (&me["user"], &me["theme"]),
            (&"grace".into(), &"dark".into()),
            "{what}"
        );

        // A deliberately slow view, and one that raises: the app's own 500, not a gateway error.
        let slow = json(&curl(&[&url("/slow?ms=300")]));
        assert!(slow["pid"].as_u64().is_some(), "{what}: {slow}");
        let boom = curl(&["-o", "/dev/null", "-w", "%{http_code}", &url("/boom")]);
        assert_eq!(boom, "500", "{what}");
    }
    // The traceback reaches paddock's log (through the worker's stderr and the master).
    paddock.wait_for_log("RuntimeError: a bug in a view");
}

/// The streamed view's first chunks reach the client while its last is still being produced
/// (it waits for a file the test writes only after reading them), over HTTP/1.1 and HTTP/2.
#[test]
fn a_streamed_response_arrives_as_the_app_writes_it() {
    streams(WsgiServer::Flup);
}

#[test]
fn a_streamed_response_arrives_as_the_app_writes_it_from_uwsgi() {
    streams(WsgiServer::Uwsgi);
}

#[test]
fn a_streamed_response_arrives_as_the_app_writes_it_over_the_uwsgi_protocol() {
    streams(WsgiServer::UwsgiNative);
}

/// A streamed answer has no length: over HTTP it ends when the worker closes the connection,
/// which paddock's half-close makes it do at once (uWSGI would otherwise wait for a next request).
#[test]
fn a_streamed_response_arrives_as_the_app_writes_it_over_http() {
    streams(WsgiServer::UwsgiHttp);
}

/// granian sends an answer without a length chunked, and keeps the connection.
#[test]
fn a_streamed_response_arrives_as_the_app_writes_it_from_granian() {
    streams(WsgiServer::Granian);
}

/// paddock's WSGI worker sends an answer without a length chunk by chunk, each in its own write,
/// and ends it when the app's iterable ends.
#[test]
fn a_streamed_response_arrives_as_the_app_writes_it_from_paddocks_wsgi_worker() {
    streams(WsgiServer::Paddock);
}

fn streams(server: WsgiServer) {
    let Some(site) = flask_site_on(server, "") else {
        return;
    };
    let paddock = &site.paddock;
    for t in transports(paddock) {
        let release = site
            .scratch
            .path()
            .join(format!("stream-{}", t.name.replace(['/', ' '], "_")));
        let url = format!("{}/stream?chunks=3&until={}", t.base, release.display());
        let mut child = paddock
            .curl_command(&["-N", t.option, &url])
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for i in 0..2 {
            let line = lines.next().expect("a chunk before the release").unwrap();
            assert_eq!(line, format!("chunk {i} of 3"), "{}", t.name);
        }
        std::fs::write(&release, b"").unwrap();
        let last = lines.next().expect("the last chunk").unwrap();
        assert_eq!(last, "chunk 2 of 3", "{}", t.name);
        assert!(lines.next().is_none(), "{}", t.name);
        assert!(child.wait().unwrap().success(), "{}", t.name);
    }
}

/// curl's `-w` for [`assert_client_seen`]: the answer, then paddock's `X-Request-Id`.
const CLIENT_AND_ID: &str = "-w\n%header{x-request-id}";

/// The answer of `/api/client` (with [`CLIENT_AND_ID`]): the client's address and scheme, the
/// mount, and the request id paddock logged.
fn assert_client_seen(answer: &str, mount: &str, https: bool, what: &str) {
    let (body, id) = answer.rsplit_once('\n').expect("the request id line");
    let seen = json(body);
    assert_eq!(seen["remote_addr"], "127.0.0.1", "{what}: {seen}");
    let scheme = if https { "https" } else { "http" };
    assert_eq!(seen["scheme"], scheme, "{what}: {seen}");
    assert_eq!(seen["script_root"], mount, "{what}: {seen}");
    assert_eq!(seen["path"], "/api/client", "{what}: {seen}");
    assert!(!id.is_empty(), "{what}: no X-Request-Id");
    assert_eq!(seen["request_id"], id, "{what}: {seen}");
}

/// Mounted below the site's root, the app sees its prefix as its root (`SCRIPT_NAME`, or
/// `X-Forwarded-Prefix` over HTTP) and the rest as its path, and builds its links with it.
#[test]
fn a_mounted_flask_app_sees_its_prefix_as_its_root() {
    for server in [
        WsgiServer::Flup,
        WsgiServer::UwsgiHttp,
        WsgiServer::Granian,
        WsgiServer::Paddock,
    ] {
        let Some(site) = flask_site_at(server, "/shop", "") else {
            continue;
        };
        let paddock = &site.paddock;
        let what = format!("{server:?}");
        let answer = curl_ok(paddock, &[CLIENT_AND_ID, &paddock.url("/shop/api/client")]);
        assert_client_seen(&answer, "/shop", false, &what);
        let home = curl_ok(paddock, &[&paddock.url("/shop/")]);
        assert!(home.contains("script root: [/shop]"), "{what}: {home}");
        // Outside the mount, nothing reaches the app.
        let outside = curl_ok(
            paddock,
            &[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &paddock.url("/api/client"),
            ],
        );
        assert_eq!(outside, "404", "{what}");
    }
}

/// uWSGI refuses a request whose variables pass its `--buffer-size` (4096 bytes by default) by
/// closing the connection: the client gets 502, and paddock's log names the option to raise.
#[test]
fn a_request_past_uwsgis_buffer_size_is_a_bad_gateway_naming_the_option() {
    past_buffer_size(WsgiServer::UwsgiNative);
}

/// The same over HTTP, where the limit is on the request head (uWSGI resets the connection).
#[test]
fn a_request_past_uwsgis_buffer_size_over_http_is_a_bad_gateway_naming_the_option() {
    past_buffer_size(WsgiServer::UwsgiHttp);
}

fn past_buffer_size(server: WsgiServer) {
    let Some(site) = flask_site_on(server, "") else {
        return;
    };
    let paddock = &site.paddock;
    let cookie = format!("Cookie: big={}", "x".repeat(5000));
    let status = curl_ok(
        paddock,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &cookie,
            &paddock.url("/api/items/1"),
        ],
    );
    assert_eq!(status, "502");
    paddock.wait_for_log("--buffer-size");
    // The workers were not at fault: the next request is answered.
    let item = json(&curl_ok(paddock, &[&paddock.url("/api/items/2")]));
    assert_eq!(item["name"], "item 2");
}
