//! Static files: validators and 304s, ranges, content types, index files, precompressed siblings,
//! Cache-Control rules, dotfiles, the symlink policies, and traversal attempts (plain and
//! percent-encoded) that must never return a byte from outside the document root.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::raw::RawConn;
use harness::{header, split_response, Paddock};

const SECRET: &str = "TOP SECRET outside the root";

/// `<tmp>/root` (the document root) next to `<tmp>/outside` (must stay unreachable).
pub(crate) fn tree() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    for d in [&root, &root.join("assets"), &root.join("docs"), &outside] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
    std::fs::write(outside.join("foreign.txt"), SECRET).unwrap();
    std::os::unix::fs::chown(outside.join("foreign.txt"), Some(65534), Some(65534)).unwrap();
    std::fs::write(root.join("index.html"), "<h1>home</h1>\n").unwrap();
    std::fs::write(root.join("docs/index.html"), "<h1>docs</h1>\n").unwrap();
    std::fs::write(root.join("style.css"), "body { margin: 0 }\n".repeat(50)).unwrap();
    std::fs::write(root.join("app.js"), "console.log(1);\n").unwrap();
    std::fs::write(root.join("data.json"), "{}\n").unwrap();
    std::fs::write(root.join("image.svg"), "<svg/>\n").unwrap();
    std::fs::write(root.join("assets/logo.txt"), "logo\n").unwrap();
    std::fs::write(root.join(".env"), SECRET).unwrap();
    let gz = Command::new("gzip")
        .args(["-k", "-9"])
        .arg(root.join("style.css"))
        .status()
        .unwrap();
    assert!(gz.success());
    std::fs::write(root.join("style.css.br"), b"pretend-brotli").unwrap();
    symlink(root.join("style.css"), root.join("inside_link.css")).unwrap();
    symlink(outside.join("secret.txt"), root.join("outside_link.txt")).unwrap();
    symlink(outside.join("foreign.txt"), root.join("foreign_link.txt")).unwrap();
    symlink(&outside, root.join("outside_dir")).unwrap();
    (dir, root)
}

pub(crate) fn start(root: &Path, site_extra: &str) -> Paddock {
    Paddock::start(&format!(
        r#"
[sites.files]
root = "{root}"
index = ["index.html"]
{site_extra}
cache_control = [
    {{ prefix = "/assets/", value = "public, max-age=31536000, immutable" }},
    {{ prefix = "/", value = "no-cache" }},
]
"#,
        root = root.display()
    ))
}

fn get(paddock: &Paddock, path: &str, headers: &[&str]) -> (u16, String, String) {
    let mut args = vec!["-i".to_string()];
    for h in headers {
        args.push("-H".into());
        args.push(h.to_string());
    }
    args.push(paddock.url(path));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = paddock.curl(&args);
    let (status, head, body) = split_response(&String::from_utf8_lossy(&output.stdout));
    (status, head, body)
}

/// A header value from a response head (names compared without case).
#[test]
fn validators_give_304() {
    let (_dir, root) = tree();
    let paddock = start(&root, "");
    let (status, head, _) = get(&paddock, "/style.css", &[]);
    assert_eq!(status, 200);
    let etag = header(&head, "etag").expect("an ETag");
    let modified = header(&head, "last-modified").expect("a Last-Modified");
    let (status, _, body) = get(&paddock, "/style.css", &[&format!("If-None-Match: {etag}")]);
    assert_eq!((status, body.as_str()), (304, ""));
    let (status, _, _) = get(
        &paddock,
        "/style.css",
        &[&format!("If-Modified-Since: {modified}")],
    );
    assert_eq!(status, 304);
    let (status, _, _) = get(&paddock, "/style.css", &["If-None-Match: \"other\""]);
    assert_eq!(status, 200);
}

#[test]
fn ranges_give_206_or_416() {
    let (_dir, root) = tree();
    let paddock = start(&root, "");
    let (status, head, body) = get(&paddock, "/style.css", &["Range: bytes=0-3"]);
    assert_eq!(status, 206);
    assert_eq!(body, "body");
    assert_eq!(header(&head, "content-range"), Some("bytes 0-3/950"));
    let (status, head, _) = get(&paddock, "/style.css", &["Range: bytes=5000-6000"]);
    assert_eq!(status, 416);
    assert_eq!(header(&head, "content-range"), Some("bytes */950"));
    // One range per request: a multi-part range is refused rather than served piecemeal.
    let (status, _, _) = get(&paddock, "/style.css", &["Range: bytes=0-1,5-6"]);
    assert_eq!(status, 416);
}

#[test]
fn content_types_and_index_files() {
    let (_dir, root) = tree();
    let paddock = start(&root, "");
    for (path, expected) in [
        ("/style.css", "text/css"),
        ("/app.js", "text/javascript"),
        ("/data.json", "application/json"),
        ("/image.svg", "image/svg+xml"),
        ("/", "text/html"),
    ] {
        let (status, head, _) = get(&paddock, path, &[]);
        assert_eq!(status, 200, "{path}");
        let content_type = header(&head, "content-type").unwrap_or_default();
        assert!(content_type.starts_with(expected), "{path}: {content_type}");
    }
    assert_eq!(get(&paddock, "/", &[]).2, "<h1>home</h1>\n");
    assert_eq!(get(&paddock, "/docs/", &[]).2, "<h1>docs</h1>\n");
    let (status, head, _) = get(&paddock, "/docs", &[]);
    assert_eq!(status, 301);
    assert_eq!(header(&head, "location"), Some("/docs/"));
}

#[test]
fn precompressed_siblings_by_accept_encoding() {
    let (_dir, root) = tree();
    let paddock = start(&root, "");
    let gz = std::fs::read(root.join("style.css.gz")).unwrap();
    let output = paddock.curl(&[
        "-i",
        "-H",
        "Accept-Encoding: gzip",
        &paddock.url("/style.css"),
    ]);
    let raw = output.stdout;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("vary: accept-encoding"), "{head}");
    assert_eq!(&raw[split + 4..], &gz[..]);
    let (_, head, body) = get(&paddock, "/style.css", &["Accept-Encoding: br, gzip"]);
    assert_eq!(header(&head, "content-encoding"), Some("br"), "{head}");
    assert_eq!(body, "pretend-brotli");
    let (_, head, body) = get(&paddock, "/style.css", &[]);
    assert_eq!(header(&head, "content-encoding"), None, "{head}");
    assert!(body.starts_with("body { margin: 0 }"));
    // Off for a site that says so.
    let paddock = start(&root, "precompressed = false");
    let (_, head, _) = get(&paddock, "/style.css", &["Accept-Encoding: gzip"]);
    assert_eq!(header(&head, "content-encoding"), None, "{head}");
}

#[test]
fn cache_control_by_path_prefix() {
    let (_dir, root) = tree();
    let paddock = start(&root, "");
    let (_, head, _) = get(&paddock, "/assets/logo.txt", &[]);
    assert_eq!(
        header(&head, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let (_, head, _) = get(&paddock, "/style.css", &[]);
    assert_eq!(header(&head, "cache-control"), Some("no-cache"));
}

/// Raw requests (curl would normalise the paths) that try to leave the root.
const ATTEMPTS: &[&str] = &[
    "/../outside/secret.txt",
    "/docs/../../outside/secret.txt",
    "/%2e%2e/outside/secret.txt",
    "/%2E%2E/outside/secret.txt",
    "/docs/..%2f..%2foutside/secret.txt",
    "/docs/%2e%2e%2f%2e%2e%2foutside%2fsecret.txt",
    "/%252e%252e/outside/secret.txt",
    "/..%5c..%5coutside/secret.txt",
    "/%c0%ae%c0%ae/outside/secret.txt",
    "/style.css%00.txt",
    "/outside_link.txt",
    "/outside_dir/secret.txt",
    "/foreign_link.txt",
    "/.env",
    "/%2eenv",
    "/docs/%2e%2e/.env",
];

fn raw_get(paddock: &Paddock, path: &str) -> (u16, String) {
    let mut conn = RawConn::connect(paddock.http);
    conn.get(path).unwrap();
    let response = conn.read_response().expect("a response");
    (response.status, response.text())
}

#[test]
fn traversal_attempts_never_leave_the_root() {
    let (_dir, root) = tree();
    let paddock = start(&root, "");
    for path in ATTEMPTS {
        let (status, body) = raw_get(&paddock, path);
        assert!(!body.contains(SECRET), "{path} leaked: {status}");
        assert!(matches!(status, 400 | 404), "{path}: {status}");
    }
    // A symlink that stays inside the root is followed.
    assert_eq!(raw_get(&paddock, "/inside_link.css").0, 200);
}

#[test]
fn symlink_policy_owner_match_and_always() {
    let (_dir, root) = tree();
    // owner_match: the root-owned link to a root-owned file outside is followed; the link to
    // a file owned by someone else is not.
    let paddock = start(&root, "symlinks = \"owner_match\"");
    let (status, body) = raw_get(&paddock, "/outside_link.txt");
    assert_eq!((status, body.as_str()), (200, SECRET));
    assert_eq!(raw_get(&paddock, "/outside_dir/secret.txt").0, 200);
    assert_eq!(raw_get(&paddock, "/foreign_link.txt").0, 404);
    // Traversal is still refused: the policy is about links, not about `..`.
    assert_eq!(raw_get(&paddock, "/%2e%2e/outside/secret.txt").0, 400);
    drop(paddock);
    let paddock = start(&root, "symlinks = \"always\"");
    assert_eq!(raw_get(&paddock, "/foreign_link.txt").0, 200);
    assert_eq!(raw_get(&paddock, "/.env").0, 404, "dotfiles stay hidden");
}

/// `start` with a `[limits]` section before the site.
fn start_with_limits(root: &Path, limits: &str) -> Paddock {
    Paddock::start(&format!(
        "[limits]\n{limits}\n[sites.files]\nroot = \"{}\"\n",
        root.display()
    ))
}

/// Every answer for `path` over `times` requests: enough for each runtime thread to remember
/// the file's verdict and its metadata (the third request of a path on a thread uses both).
fn gets(paddock: &Paddock, path: &str, times: usize) -> Vec<(u16, String)> {
    (0..times)
        .map(|_| {
            let (status, _, body) = get(paddock, path, &[]);
            (status, body)
        })
        .collect()
}

/// Edits count from the next request, also once the file's contents, its verdict and its
/// metadata are all remembered (many requests before each change): the memory cache checks the
/// file's identity, and the remembered metadata is voided by the directory's change notice.
#[test]
fn the_memory_cache_serves_edits_at_once() {
    let (_dir, root) = tree();
    let paddock = start(&root, "");
    let body = |text: &str| (200, text.to_string());
    assert!(gets(&paddock, "/app.js", 8)
        .iter()
        .all(|answer| *answer == body("console.log(1);\n")));
    // Same size: only the identity the cache checks (mtime, ctime) tells the versions apart.
    std::fs::write(root.join("app.js"), "console.log(2);\n").unwrap();
    assert!(gets(&paddock, "/app.js", 8)
        .iter()
        .all(|answer| *answer == body("console.log(2);\n")));
    // Replaced by a rename, as deploy tools do.
    std::fs::write(root.join("app.js.new"), "console.log('new');\n").unwrap();
    std::fs::rename(root.join("app.js.new"), root.join("app.js")).unwrap();
    assert!(gets(&paddock, "/app.js", 8)
        .iter()
        .all(|answer| *answer == body("console.log('new');\n")));
    std::fs::remove_file(root.join("app.js")).unwrap();
    assert!(gets(&paddock, "/app.js", 8).iter().all(|a| a.0 == 404));
    // Created again where a missing answer was remembered.
    std::fs::write(root.join("app.js"), "back").unwrap();
    assert!(gets(&paddock, "/app.js", 8)
        .iter()
        .all(|answer| *answer == body("back")));
    // HEAD: the length of the body it would get, and no body.
    let output = paddock.curl(&["-sI", &paddock.url("/style.css")]);
    let head = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(header(&head, "content-length"), Some("950"));
}

#[test]
fn cached_and_uncached_answers_carry_the_same_validators() {
    let (_dir, root) = tree();
    let cached = start(&root, "");
    let uncached = start_with_limits(&root, "static_cache_size = 0");
    let too_big = start_with_limits(&root, "static_cache_max_file = \"100B\"");
    let answers: Vec<(u16, String, String)> = [&cached, &uncached, &too_big]
        .iter()
        .map(|p| get(p, "/style.css", &["Accept-Encoding: identity"]))
        .collect();
    for (status, head, body) in &answers {
        assert_eq!(*status, 200);
        assert_eq!(body.len(), 950);
        for name in ["etag", "last-modified", "content-type", "content-length"] {
            assert_eq!(
                header(head, name),
                header(&answers[0].1, name),
                "{name}: {head}"
            );
        }
    }
    // A validator from one path gives a 304 on the other.
    let etag = header(&answers[1].1, "etag").unwrap();
    let (status, _, _) = get(
        &cached,
        "/style.css",
        &[&format!("If-None-Match: W/{etag}")],
    );
    assert_eq!(status, 304);
    let modified = header(&answers[0].1, "last-modified").unwrap();
    let (status, _, _) = get(
        &uncached,
        "/style.css",
        &[&format!("If-Modified-Since: {modified}")],
    );
    assert_eq!(status, 304);
}
