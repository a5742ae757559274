//! Virtual hosts by Host and SNI with a default site, custom error pages, and the per-site
//! HTTP → HTTPS redirect with HSTS.

use std::io::Write;
use std::path::Path;

use harness::{header, split_response, tls_client, Paddock};

fn site_dir(base: &Path, name: &str) -> std::path::PathBuf {
    let root = base.join(name);
    std::fs::create_dir_all(root.join("errors")).unwrap();
    std::fs::write(root.join("index.html"), format!("site {name}\n")).unwrap();
    std::fs::write(
        root.join("errors/404.html"),
        format!("<p>{name}: not here</p>\n"),
    )
    .unwrap();
    root
}

fn start() -> (tempfile::TempDir, Paddock) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let config = format!(
        r#"
[sites.a]
hosts = ["a.test"]
root = "{a}"

[sites.b]
hosts = ["*.b.test"]
root = "{b}"

[sites.c]
hosts = ["c.test"]
root = "{c}"
default = true
error_pages = {{ "404" = "/errors/404.html" }}

[sites.r]
hosts = ["r.test"]
root = "{r}"
https_redirect = true
hsts = "max-age=600"

[sites.old]
hosts = ["old.test"]
root = "{a}"
redirects = [
    {{ from = "/blog/", to = "https://blog.example.org/", status = 308 }},
    {{ from = "/", to = "http://a.test/" }},
]
"#,
        a = site_dir(base, "a").display(),
        b = site_dir(base, "b").display(),
        c = site_dir(base, "c").display(),
        r = site_dir(base, "r").display(),
    );
    let paddock = Paddock::start(&config);
    (dir, paddock)
}

fn get(paddock: &Paddock, host: &str, path: &str, extra: &[&str]) -> (u16, String, String) {
    let mut args = vec!["-i", "-H"];
    let host_header = format!("Host: {host}");
    args.push(&host_header);
    args.extend_from_slice(extra);
    let url = paddock.url(path);
    args.push(&url);
    let output = paddock.curl(&args);
    split_response(&String::from_utf8_lossy(&output.stdout))
}

#[test]
fn host_picks_the_site_with_wildcards_and_a_default() {
    let (_dir, paddock) = start();
    assert_eq!(get(&paddock, "a.test", "/", &[]).2, "site a\n");
    assert_eq!(get(&paddock, "A.Test.:80", "/", &[]).2, "site a\n");
    assert_eq!(get(&paddock, "www.b.test", "/", &[]).2, "site b\n");
    assert_eq!(get(&paddock, "unknown.test", "/", &[]).2, "site c\n");
}

#[test]
fn sni_picks_the_site_when_no_host_is_sent() {
    let (_dir, paddock) = start();
    let mut client = tls_client(paddock.https, "a.test");
    // HTTP/1.0 needs no Host header.
    client
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .unwrap();
    let output = client.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.ends_with("site a\n"), "{text}");
}

#[test]
fn custom_error_page_replaces_paddocks_own() {
    let (_dir, paddock) = start();
    let (status, head, body) = get(&paddock, "unknown.test", "/missing", &[]);
    assert_eq!(status, 404);
    assert_eq!(body, "<p>c: not here</p>\n");
    assert!(header(&head, "content-type")
        .unwrap()
        .starts_with("text/html"));
    // Sites without one keep paddock's page.
    let (status, _, body) = get(&paddock, "a.test", "/missing", &[]);
    assert_eq!(status, 404);
    assert!(body.contains("404 Not Found"), "{body}");
}

#[test]
fn https_redirect_and_hsts() {
    let (_dir, paddock) = start();
    let port = paddock.https.port();
    let (status, head, _) = get(&paddock, "r.test", "/page?x=1", &[]);
    assert_eq!(status, 301);
    assert_eq!(
        header(&head, "location"),
        Some(format!("https://r.test:{port}/page?x=1").as_str())
    );
    assert_eq!(
        header(&head, "strict-transport-security"),
        None,
        "never over HTTP"
    );
    let (status, _, _) = get(&paddock, "r.test", "/form", &["--data", "a=1"]);
    assert_eq!(status, 308, "a POST keeps its method");
    // Over HTTPS the site is served, with HSTS.
    let output = paddock.curl(&[
        "-i",
        "--resolve",
        &format!("r.test:{port}:127.0.0.1"),
        &format!("https://r.test:{port}/"),
    ]);
    let (status, head, body) = split_response(&String::from_utf8_lossy(&output.stdout));
    assert_eq!((status, body.as_str()), (200, "site r\n"));
    assert_eq!(
        header(&head, "strict-transport-security"),
        Some("max-age=600")
    );
    // Other sites get no redirect.
    assert_eq!(get(&paddock, "a.test", "/", &[]).0, 200);
}

#[test]
fn redirect_rules_keep_the_rest_of_the_path_and_the_query() {
    let (_dir, paddock) = start();
    let (status, head, _) = get(&paddock, "old.test", "/blog/2024/post?x=1", &[]);
    assert_eq!(status, 308);
    assert_eq!(
        header(&head, "location"),
        Some("https://blog.example.org/2024/post?x=1")
    );
    let (status, head, _) = get(&paddock, "old.test", "/about", &[]);
    assert_eq!(status, 301);
    assert_eq!(header(&head, "location"), Some("http://a.test/about"));
}
