//! The uwsgi protocol (`protocol = "uwsgi"`) against a worker that shows what it received and
//! answers rightly and wrongly on purpose (`tests/apps/uwsgi_wire/worker.py`): the variables and
//! body arrive as a FastCGI worker would get them, status lines and repeated headers come back,
//! and a broken answer never reaches the client as if it were whole.

use harness::wsgi::{apps_dir, SYSTEM_PYTHON};
use harness::{listeners_h2c, Paddock};

use crate::support::curl_ok;

fn wire_site() -> Paddock {
    let config = format!(
        r#"{listeners}
[sites.wire]
root = "{root}"

[sites.wire.mounts.app]
prefix = "/app"
pool = "wire"

[pools.wire]
mode = "threaded"
workers = 2
threads = 4
command = ["{SYSTEM_PYTHON}", "{worker}"]
protocol = "uwsgi"
"#,
        listeners = listeners_h2c(),
        root = apps_dir().join("uwsgi_wire").display(),
        worker = apps_dir().join("uwsgi_wire/worker.py").display(),
    );
    Paddock::start_with(&config, true)
}

#[test]
fn the_worker_gets_the_request_as_variables_and_the_body_intact() {
    let paddock = wire_site();
    // 100 KiB: past the size sent in the same write as the variables.
    let body: Vec<u8> = (0..100 * 1024u32).map(|i| (i % 253) as u8).collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    for option in ["--http1.1", "--http2-prior-knowledge"] {
        let answer = curl_ok(
            &paddock,
            &[
                option,
                "-H",
                "X-Custom: one two",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &format!("@{}", file.path().display()),
                &paddock.url("/app/vars/deeper?q=1&r=%20"),
            ],
        );
        let seen: serde_json::Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("{option}: not JSON ({e}): {answer}\n{}", paddock.log()));
        let vars = &seen["vars"];
        assert_eq!(vars["REQUEST_METHOD"], "POST", "{option}: {seen}");
        assert_eq!(vars["SCRIPT_NAME"], "/app", "{option}");
        assert_eq!(vars["PATH_INFO"], "/vars/deeper", "{option}");
        assert_eq!(vars["QUERY_STRING"], "q=1&r=%20", "{option}");
        assert_eq!(
            vars["REQUEST_URI"], "/app/vars/deeper?q=1&r=%20",
            "{option}"
        );
        assert_eq!(vars["HTTP_X_CUSTOM"], "one two", "{option}");
        assert_eq!(vars["CONTENT_TYPE"], "application/octet-stream", "{option}");
        assert_eq!(vars["CONTENT_LENGTH"], body.len().to_string(), "{option}");
        assert!(vars["PADDOCK_REQUEST_ID"].as_str().is_some(), "{option}");
        assert_eq!(seen["body_length"], body.len(), "{option}");
        assert_eq!(
            seen["body_sha1"],
            sha1_smol::Sha1::from(&body).digest().to_string(),
            "{option}"
        );
    }
}

#[test]
fn status_lines_headers_and_unsized_bodies_come_back_as_sent() {
    let paddock = wire_site();
    for option in ["--http1.1", "--http2-prior-knowledge"] {
        let teapot = curl_ok(&paddock, &[option, "-i", &paddock.url("/app/teapot")]);
        let status = teapot.lines().next().unwrap();
        assert!(status.contains("418"), "{option}: {teapot}");
        if option == "--http1.1" {
            assert!(status.contains("I'm a teapot"), "{option}: {teapot}");
        }
        let lower = teapot.to_ascii_lowercase();
        assert!(lower.contains("set-cookie: a=1"), "{option}: {teapot}");
        assert!(lower.contains("set-cookie: b=2"), "{option}: {teapot}");
        assert!(teapot.ends_with("\r\n\r\nshort"), "{option}: {teapot}");

        // Its end is the connection's end.
        let parts = curl_ok(&paddock, &[option, &paddock.url("/app/no-length")]);
        assert_eq!(parts, "part 0\npart 1\npart 2\n", "{option}");

        // HEAD: the length of a body that is not sent.
        let head = curl_ok(&paddock, &[option, "-I", &paddock.url("/app/teapot")]);
        assert!(
            head.to_ascii_lowercase().contains("content-length: 5"),
            "{option}: {head}"
        );
    }
}

/// A body shorter than its Content-Length is a worker that died mid-answer, and an answer that
/// is not HTTP is a broken worker: the client gets 502, never the pieces.
#[test]
fn a_cut_or_garbled_answer_is_a_bad_gateway() {
    let paddock = wire_site();
    for path in ["/app/truncated", "/app/garbage"] {
        let output = paddock.curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &paddock.url(path),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "502",
            "{path}: {}",
            paddock.log()
        );
    }
    // The front end's log reaches the file through the master, maybe after the answer.
    paddock.wait_for_log("worker closed the connection before ending the request");
    paddock.wait_for_log("not an HTTP status line");
}
