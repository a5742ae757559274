//! The walking skeleton end to end: static files and PHP over HTTP and HTTPS, what PHP sees of the
//! request, bodies, cookies, uploads, limits, and the routing rules.

use harness::{php_site, require_php_cgi, split_response, test_site, Paddock};
use serde_json::Value;

fn start(workers: u32) -> Paddock {
    require_php_cgi();
    Paddock::start(&php_site(&test_site(), workers, ""))
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(paddock: &Paddock, args: &[&str]) -> Value {
    let body = stdout(&paddock.curl(args));
    serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {body}\n{}", paddock.log()))
}

#[test]
fn static_file_and_php_over_https() {
    let paddock = start(2);
    let css = stdout(&paddock.curl(&["-i", &paddock.https_url("/static/site.css")]));
    let (status, head, body) = split_response(&css);
    assert_eq!(status, 200, "{css}");
    assert!(
        head.to_ascii_lowercase().contains("content-type: text/css"),
        "{head}"
    );
    assert_eq!(body, "body { color: #333; }\n");

    let seen = json(&paddock, &[&paddock.https_url("/echo.php")]);
    assert_eq!(seen["server"]["HTTPS"], "on");
    assert_eq!(seen["server"]["REQUEST_SCHEME"], "https");
    assert_eq!(seen["server"]["SCRIPT_NAME"], "/echo.php");
    assert_eq!(
        seen["server"]["HTTP_HOST"],
        format!("localhost:{}", paddock.https.port())
    );
    let root = test_site().canonicalize().unwrap();
    assert_eq!(
        seen["server"]["SCRIPT_FILENAME"],
        root.join("echo.php").to_str().unwrap()
    );
    assert_eq!(seen["server"]["DOCUMENT_ROOT"], root.to_str().unwrap());
    assert_eq!(seen["server"]["PHP_FCGI_CHILDREN"], "0");
    assert!(paddock
        .log()
        .contains("generated a self-signed certificate"));
}

#[test]
fn query_string_reaches_get() {
    let paddock = start(1);
    let seen = json(
        &paddock,
        &[&paddock.url("/echo.php?a=1&b=two%20words&list[]=x&list[]=y&plus=a+b")],
    );
    assert_eq!(seen["get"]["a"], "1");
    assert_eq!(seen["get"]["b"], "two words");
    assert_eq!(seen["get"]["list"], serde_json::json!(["x", "y"]));
    assert_eq!(seen["get"]["plus"], "a b");
    assert_eq!(
        seen["server"]["QUERY_STRING"],
        "a=1&b=two%20words&list[]=x&list[]=y&plus=a+b"
    );
    assert_eq!(
        seen["server"]["REQUEST_URI"],
        "/echo.php?a=1&b=two%20words&list[]=x&list[]=y&plus=a+b"
    );
    assert_eq!(seen["server"]["REQUEST_METHOD"], "GET");
    assert_eq!(seen["server"]["HTTPS"], Value::Null);
    assert_eq!(seen["server"]["REMOTE_ADDR"], "127.0.0.1");
}

#[test]
fn form_post_reaches_post() {
    let paddock = start(1);
    let seen = json(
        &paddock,
        &[
            &paddock.url("/echo.php"),
            "--data",
            "name=Ada&message=hello+world&n[]=1",
        ],
    );
    assert_eq!(seen["server"]["REQUEST_METHOD"], "POST");
    assert_eq!(
        seen["server"]["CONTENT_TYPE"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(seen["server"]["CONTENT_LENGTH"], "34");
    assert_eq!(seen["post"]["name"], "Ada");
    assert_eq!(seen["post"]["message"], "hello world");
    assert_eq!(seen["post"]["n"], serde_json::json!(["1"]));
}

#[test]
fn multipart_upload_reaches_files_even_when_spooled_to_disk() {
    let paddock = start(1);
    // 300 KiB: larger than the in-memory threshold (64 KiB), so the body goes through a temp file.
    let upload = paddock.dir.path().join("upload.bin");
    let data: Vec<u8> = (0..300 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&upload, &data).unwrap();
    let field = format!("attachment=@{}", upload.display());
    let seen = json(
        &paddock,
        &[
            &paddock.url("/echo.php"),
            "-F",
            "title=report",
            "-F",
            &field,
        ],
    );
    assert_eq!(seen["post"]["title"], "report");
    let file = &seen["files"]["attachment"];
    assert_eq!(file["error"], 0);
    assert_eq!(file["size"], data.len());
    assert_eq!(file["name"], "upload.bin");
    let sha1 = Command_sha1(&upload);
    assert_eq!(file["sha1"], sha1);
}

#[test]
fn bodies_of_every_size_reach_the_script_intact_on_a_reused_connection() {
    // One worker, so every request travels over the same kept FastCGI connection: empty, small
    // (sent with the request head in one write), 40 KiB (in memory, in records of its own) and
    // 300 KiB (spooled to a file), in turns, each followed by a GET.
    let paddock = start(1);
    for (i, len) in [0usize, 700, 40 * 1024, 300 * 1024, 700]
        .into_iter()
        .enumerate()
    {
        let path = paddock.dir.path().join(format!("body-{i}.bin"));
        let data: Vec<u8> = (0..len).map(|n| (n * 13 % 256) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let seen = json(
            &paddock,
            &[
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &format!("@{}", path.display()),
                &paddock.url("/echo.php"),
            ],
        );
        assert_eq!(
            seen["input_sha1"],
            Command_sha1(&path),
            "body of {len} bytes"
        );
        assert_eq!(seen["server"]["CONTENT_LENGTH"], len.to_string());
        let after = json(&paddock, &[&paddock.url("/echo.php?after")]);
        assert_eq!(after["server"]["QUERY_STRING"], "after");
        assert_eq!(after["pid"], seen["pid"], "one worker served both");
    }
}

#[allow(non_snake_case)]
fn Command_sha1(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha1sum")
        .arg(path)
        .output()
        .expect("sha1sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn cookies_in_and_out() {
    let paddock = start(1);
    let seen = json(
        &paddock,
        &[&paddock.url("/echo.php"), "-H", "Cookie: a=1; b=two"],
    );
    assert_eq!(seen["cookie"]["a"], "1");
    assert_eq!(seen["cookie"]["b"], "two");
    let raw = stdout(&paddock.curl(&["-i", &paddock.url("/headers.php?case=cookies")]));
    let (status, head, _) = split_response(&raw);
    assert_eq!(status, 200);
    let cookies: Vec<&str> = head
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .collect();
    assert_eq!(cookies.len(), 2, "{head}");
}

#[test]
fn status_and_location_from_php_are_honoured() {
    let paddock = start(1);
    let raw = stdout(&paddock.curl(&["-i", &paddock.url("/headers.php?case=status")]));
    assert!(raw.starts_with("HTTP/1.1 403 Login failed\r\n"), "{raw}");
    let raw = stdout(&paddock.curl(&["-i", &paddock.url("/headers.php?case=redirect")]));
    let (status, head, _) = split_response(&raw);
    assert_eq!(status, 302, "{raw}");
    assert!(head.contains("https://example.test/elsewhere"), "{head}");
    let raw = stdout(&paddock.curl(&["-i", &paddock.url("/headers.php?case=created")]));
    let (status, head, _) = split_response(&raw);
    assert_eq!(status, 201, "{raw}");
    assert!(
        head.to_ascii_lowercase().contains("location: /items/7"),
        "{head}"
    );
}

fn status_of(paddock: &Paddock, url: &str) -> u16 {
    let out = stdout(&paddock.curl(&["-o", "/dev/null", "-w", "%{http_code}", url]));
    out.trim().parse().unwrap()
}

#[test]
fn missing_files_and_scripts_are_404_and_front_controller_takes_the_rest() {
    let paddock = start(1);
    assert_eq!(
        status_of(&paddock, &paddock.url("/static/missing.css")),
        200,
        "front controller"
    );
    assert_eq!(status_of(&paddock, &paddock.url("/missing.php")), 404);
    assert_eq!(
        status_of(&paddock, &paddock.url("/static/nope/../../missing.php")),
        404
    );
    let body = stdout(&paddock.curl(&[&paddock.url("/blog/2024/hello?x=1")]));
    assert_eq!(body, "front controller: /blog/2024/hello\n");

    // Without a front controller, a missing file is a 404 too.
    let plain = Paddock::start(&format!(
        "[sites.static]\nroot = \"{}\"\n",
        test_site().display()
    ));
    assert_eq!(status_of(&plain, &plain.url("/static/missing.css")), 404);
    assert_eq!(status_of(&plain, &plain.url("/static/hello.txt")), 200);
}

#[test]
fn script_hidden_behind_an_upload_never_runs() {
    let paddock = start(1);
    for path in [
        "/upload/x.jpg/foo.php",
        "/upload/x.jpg/",
        "/upload/x.jpg%2Ffoo.php",
        "/upload/x.jpg/index.php/a",
    ] {
        let raw = stdout(&paddock.curl(&["-i", &paddock.url(path)]));
        let (status, _, body) = split_response(&raw);
        assert_eq!(status, 404, "{path}: {raw}");
        assert!(
            !body.contains("this must never run") && !body.contains("GIF89a"),
            "{path}: {body}"
        );
    }
    // Served as a plain file, it is just bytes.
    let body = stdout(&paddock.curl(&[&paddock.url("/upload/x.jpg")]));
    assert!(body.starts_with("GIF89a<?php"), "{body}");
}

#[test]
fn path_info_and_directory_index() {
    let paddock = start(1);
    let seen = json(&paddock, &[&paddock.url("/echo.php/extra/path?q=1")]);
    assert_eq!(seen["server"]["SCRIPT_NAME"], "/echo.php");
    assert_eq!(seen["server"]["PATH_INFO"], "/extra/path");
    assert_eq!(seen["server"]["REQUEST_URI"], "/echo.php/extra/path?q=1");
    let raw = stdout(&paddock.curl(&["-i", &paddock.url("/app")]));
    let (status, head, _) = split_response(&raw);
    assert_eq!(status, 301);
    assert!(
        head.to_ascii_lowercase().contains("location: /app/"),
        "{head}"
    );
    assert_eq!(stdout(&paddock.curl(&[&paddock.url("/app/")])), "app index");
}

#[test]
fn oversized_body_is_413_without_reaching_a_worker() {
    require_php_cgi();
    let paddock = Paddock::start(&format!(
        "[limits]\nmax_body = \"100KiB\"\nbody_memory = \"16KiB\"\n{}",
        php_site(&test_site(), 1, "")
    ));
    let big = paddock.dir.path().join("big.bin");
    std::fs::write(&big, vec![b'x'; 200 * 1024]).unwrap();
    let data = format!("@{}", big.display());
    // Declared length over the limit: refused before the body is read.
    let code = stdout(&paddock.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--data-binary",
        &data,
        &paddock.url("/echo.php"),
    ]));
    assert_eq!(code.trim(), "413");
    // Chunked (no declared length): refused once the limit is crossed.
    let code = stdout(&paddock.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data,
        &paddock.url("/echo.php"),
    ]));
    assert_eq!(code.trim(), "413");
    // Just under the limit passes.
    std::fs::write(&big, vec![b'y'; 100 * 1024]).unwrap();
    let seen = json(
        &paddock,
        &[
            "--data-binary",
            &data,
            "-H",
            "Content-Type: application/octet-stream",
            &paddock.url("/echo.php"),
        ],
    );
    assert_eq!(seen["server"]["CONTENT_LENGTH"], "102400");
    // The worker saw exactly one request: the accepted one.
    let dispatched = paddock.log().matches("status=413").count();
    assert_eq!(dispatched, 2, "{}", paddock.log());
}

#[test]
fn several_requests_share_one_keep_alive_connection() {
    let paddock = start(1);
    let out = stdout(&paddock.curl(&[
        "-w",
        "%{num_connects}\n",
        "-o",
        "/dev/null",
        &paddock.url("/echo.php"),
        "-o",
        "/dev/null",
        &paddock.url("/static/hello.txt"),
        "-o",
        "/dev/null",
        &paddock.https_url("/echo.php"),
        "-o",
        "/dev/null",
        &paddock.https_url("/echo.php?again"),
    ]));
    let connects: Vec<&str> = out.lines().collect();
    assert_eq!(
        connects,
        ["1", "0", "1", "0"],
        "new connections per request: {out}"
    );
}

#[test]
fn an_error_page_that_is_a_script_answers_with_the_errors_status() {
    require_php_cgi();
    let config = php_site(&test_site(), 1, "").replace("front_controller = \"/index.php\"\n", "")
        + "[sites.test.error_pages]\n\"404\" = \"/echo.php?page=404\"\n\"400\" = \"/echo.php\"\n";
    let paddock = Paddock::start(&config);
    let output = stdout(&paddock.curl(&["-i", &paddock.url("/missing.php?x=2")]));
    let (status, head, body) = split_response(&output);
    assert_eq!(status, 404, "{output}");
    assert!(head.contains("application/json"), "{head}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["server"]["REDIRECT_STATUS"], "404");
    assert_eq!(seen["server"]["REDIRECT_URL"], "/missing.php");
    assert_eq!(seen["server"]["REDIRECT_QUERY_STRING"], "x=2");
    assert_eq!(seen["server"]["REQUEST_URI"], "/missing.php?x=2");
    assert_eq!(seen["get"]["page"], "404");

    // A malformed request never reaches a worker, not even for its error page.
    let refused = harness::client::Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/echo.php", &[("Host", "b.test")], b"")
        .unwrap();
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("400 Bad Request"),
        "{}",
        refused.text()
    );
}
