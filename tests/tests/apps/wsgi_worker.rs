//! paddock's own WSGI worker (`paddock-wsgi`) against a bare WSGI application that uses every
//! corner of PEP 3333 and breaks its rules on purpose (`tests/apps/wsgi_edges/edges.py`): the
//! environ it builds, the `write` callable, `exc_info`, `close()`, a body past its announced
//! length, a large body; and what a client gets when the application misbehaves (500 before
//! anything was sent, 502 for an answer cut short, never a header the application smuggled in),
//! with the application's traceback in paddock's log.

use harness::wsgi::{apps_dir, threaded_pool_on, WsgiServer};
use harness::{listeners_h2c, Paddock};

use crate::support::{curl_ok, json};

fn edges_site() -> (Paddock, tempfile::TempDir) {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("public");
    std::fs::create_dir(&root).unwrap();
    let pool = threaded_pool_on(
        WsgiServer::Paddock,
        &apps_dir().join("wsgi_edges"),
        "edges",
        1,
        4,
        "",
    );
    let config = format!(
        "{}\n[sites.edges]\nroot = \"{}\"\n[sites.edges.mounts.app]\nprefix = \"/\"\npool = \"edges\"\n[pools.edges]\n{pool}",
        listeners_h2c(),
        root.display()
    );
    (Paddock::start_with(&config, true), scratch)
}

/// `-i` output split into (status code, head, body).
fn answer(paddock: &Paddock, args: &[&str]) -> (u16, String, String) {
    let mut all = vec!["-s", "-i"];
    all.extend_from_slice(args);
    let output = paddock.curl(&all);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

#[test]
fn the_environ_is_the_cgi_variables_with_the_wsgi_keys() {
    let (paddock, _scratch) = edges_site();
    let seen = json(&curl_ok(
        &paddock,
        &[
            "-H",
            "X-Test: caf\u{e9}",
            "-H",
            "Content-Type: application/x-thing",
            "--data-binary",
            "body\u{1}bytes",
            &paddock.url("/environ?a=1&b=%C3%A9"),
        ],
    ));
    assert_eq!(seen["REQUEST_METHOD"], "POST", "{seen}");
    assert_eq!(seen["SCRIPT_NAME"], "", "{seen}");
    assert_eq!(seen["PATH_INFO"], "/environ", "{seen}");
    assert_eq!(seen["QUERY_STRING"], "a=1&b=%C3%A9", "{seen}");
    assert_eq!(seen["CONTENT_TYPE"], "application/x-thing", "{seen}");
    assert_eq!(seen["CONTENT_LENGTH"], "10", "{seen}");
    assert_eq!(seen["REMOTE_ADDR"], "127.0.0.1", "{seen}");
    assert_eq!(seen["SERVER_PROTOCOL"], "HTTP/1.1", "{seen}");
    // curl sends the header's UTF-8 bytes; PEP 3333 reads them as Latin-1 characters.
    assert_eq!(seen["HTTP_X_TEST"], "caf\u{c3}\u{a9}", "{seen}");
    assert_eq!(seen["wsgi.url_scheme"], "http", "{seen}");
    assert_eq!(seen["wsgi.version"], serde_json::json!([1, 0]), "{seen}");
    for flag in [
        "wsgi.multithread",
        "wsgi.multiprocess",
        "wsgi.input_terminated",
    ] {
        assert_eq!(seen[flag], true, "{flag}: {seen}");
    }
    assert_eq!(seen["wsgi.run_once"], false, "{seen}");
    assert_eq!(seen["body"], "body\u{1}bytes", "{seen}");
    assert_eq!(
        seen["more"], "",
        "reading past the body gives b\"\": {seen}"
    );
    assert_eq!(seen["errors_is_stderr"], true, "{seen}");
    // C.UTF-8, as python3 itself coerces paddock's C locale (PEP 538), not ASCII.
    assert_eq!(seen["filesystem_encoding"], "utf-8", "{seen}");

    let over_tls = json(&curl_ok(&paddock, &[&paddock.https_url("/environ")]));
    assert_eq!(over_tls["wsgi.url_scheme"], "https", "{over_tls}");
    assert_eq!(over_tls["REQUEST_METHOD"], "GET", "{over_tls}");
}

#[test]
fn write_exc_info_close_and_the_announced_length_follow_pep_3333() {
    let (paddock, scratch) = edges_site();
    let (code, _, body) = answer(&paddock, &[&paddock.url("/write-callable")]);
    assert_eq!((code, body.as_str()), (200, "hello world!"));

    let (code, _, body) = answer(&paddock, &[&paddock.url("/exc-info")]);
    assert_eq!((code, body.as_str()), (503, "replaced"));

    let (code, head, body) = answer(&paddock, &[&paddock.url("/length-over")]);
    assert_eq!((code, body.as_str()), (200, "01234"), "{head}");

    let mark = scratch.path().join("closed");
    let (code, _, body) = answer(
        &paddock,
        &[&paddock.url(&format!("/closing?mark={}", mark.display()))],
    );
    assert_eq!((code, body.as_str()), (200, "closing body"));
    harness::wait::wait_until("close() to leave its mark", || mark.exists());

    // 2 MiB in 100 kB chunks, sent before the whole is gathered, arrives whole.
    let saved = scratch.path().join("big");
    let head = curl_ok(
        &paddock,
        &[
            "-D",
            "-",
            "-o",
            saved.to_str().unwrap(),
            &paddock.url("/big"),
        ],
    );
    let data = std::fs::read(&saved).unwrap();
    assert_eq!(data.len(), 2 * 1024 * 1024, "{head}");
    let sha1 = sha1_smol::Sha1::from(&data).digest().to_string();
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("x-sha1: {sha1}")),
        "{head}"
    );
    // HEAD: the head alone, with the length the body would have.
    let (code, head, body) = answer(&paddock, &["-I", &paddock.url("/big")]);
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-length: 2097152"),
        "{head}"
    );
    assert_eq!(body, "");
}

#[test]
fn a_misbehaving_application_gets_the_client_a_clean_error_and_its_traceback_logged() {
    let (paddock, _scratch) = edges_site();
    for (path, logged) in [
        (
            "/raise-before",
            "RuntimeError: raised before start_response",
        ),
        ("/no-start", "without calling start_response"),
        ("/str-body", "yielded a str, not bytes"),
        ("/injection", "a value without control characters"),
        ("/bad-status", "expected three digits"),
    ] {
        let (code, head, body) = answer(&paddock, &[&paddock.url(path)]);
        assert_eq!(code, 500, "{path}: {head}\n{body}");
        assert!(
            !head.to_ascii_lowercase().contains("evil"),
            "{path}: {head}"
        );
        paddock.wait_for_log(&format!("the application failed on {path}"));
        paddock.wait_for_log(logged);
    }
    // An answer of unknown length cut short after its first chunk went out: the front end
    // had not sent anything to the client yet (it buffers), so the client gets 502.
    let (code, head, _) = answer(&paddock, &[&paddock.url("/raise-midstream")]);
    assert_eq!(code, 502, "{head}");
    paddock.wait_for_log("RuntimeError: raised after the first chunk");
    // The worker lives on: the same process answers the next request.
    let (code, _, _) = answer(&paddock, &[&paddock.url("/pid")]);
    assert_eq!(code, 200);
}

/// `builtin = "wsgi"` with no paddock-wsgi next to `paddock` (a copy of `paddock` alone in a
/// directory): the pool fails with the way to build it, and the client gets 503 saying so.
#[test]
fn builtin_wsgi_without_paddock_wsgi_answers_503_naming_the_build_step() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("paddock");
    std::fs::copy(harness::paddock_bin(), &binary).unwrap();
    let root = dir.path().join("public");
    std::fs::create_dir(&root).unwrap();
    let config = format!(
        "{}\n[sites.app]\nroot = \"{}\"\n[sites.app.mounts.app]\nprefix = \"/\"\npool = \"app\"\n\
         [pools.app]\nmode = \"threaded\"\nthreads = 2\nworkers = 1\nbuiltin = \"wsgi\"\nwsgi_app = \"app:app\"\n",
        listeners_h2c(),
        root.display()
    );
    let paddock = Paddock::start_binary(&binary, &config, false);
    let hint = "cargo build --release -p paddock-wsgi";
    paddock.wait_for_log(hint);
    let (code, _, body) = answer(&paddock, &[&paddock.url("/")]);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains(hint), "{body}");
}

/// paddock-wsgi carries the interpreter linked in, position-dependent, as Debian's `python3` does
/// (wsgi-worker/build.rs: the shared library's calls through the PLT cost the page view 7 %): the
/// executable is not position-independent and does not load libpython3.X.so, and the extension
/// modules an application imports, which are not linked against libpython, still find the
/// interpreter's symbols in it.
#[test]
fn paddock_wsgi_has_libpython_linked_in_and_extension_modules_load() {
    let bin = harness::wsgi::wsgi_worker_bin();
    let version = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.contains("(Python 3.") && version.contains("libpython linked static"),
        "{version} (built with PADDOCK_WSGI_LIBPYTHON=shared? the default links it in)"
    );
    let readelf = |flag: &str| {
        let output = std::process::Command::new("readelf")
            .args([flag, "-W"])
            .arg(&bin)
            .output()
            .expect("readelf (binutils) runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(readelf("-h").contains("EXEC (Executable file)"));
    let needed = readelf("-d");
    assert!(needed.contains("(NEEDED)"), "{needed}");
    assert!(!needed.contains("libpython"), "{needed}");

    let (paddock, _scratch) = edges_site();
    let loaded = json(&curl_ok(&paddock, &[&paddock.url("/extensions")]));
    for module in [
        "_json",
        "_hashlib",
        "_ssl",
        "_decimal",
        "_ctypes",
        "_sqlite3",
        "markupsafe._speedups",
    ] {
        let file = loaded[module].as_str().unwrap_or_default();
        assert!(file.ends_with(".so"), "{module}: {file}");
    }
    assert_eq!(
        loaded["sha256"],
        "d627f3a0a778774753eae251755b3961156c8803fca94bb3c9c6088c53a92024"
    );
}
