//! Files a worker hands back for the front end to send (`X-Accel-Redirect`, `X-Sendfile`): the
//! worker is free at once, the file goes out as a static file (ranges, conditional requests),
//! with the worker's download headers, and never from anywhere the site did not allow.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::client::{Connection, Response};
use harness::{php_site, require_php_cgi, Paddock};

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        fs::create_dir_all(root.join("protected")).unwrap();
        fs::create_dir_all(base.join("downloads")).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(
            root.join("accel.php"),
            "<?php header('Content-Type: application/octet-stream');\n\
             header('Content-Disposition: attachment; filename=\"' . $_GET['f'] . '\"');\n\
             setcookie('downloaded', '1');\n\
             header('X-Accel-Redirect: /protected/' . $_GET['f']);\n",
        )
        .unwrap();
        fs::write(
            root.join("sendfile.php"),
            "<?php header('Content-Disposition: attachment');\n\
             header('X-Sendfile: ' . $_GET['f']);\n",
        )
        .unwrap();
        fs::write(
            root.join("type.php"),
            "<?php echo ($_SERVER['HTTP_X_SENDFILE_TYPE'] ?? '-'), '|', \
             ($_SERVER['HTTP_X_ACCEL_MAPPING'] ?? '-');\n",
        )
        .unwrap();
        fs::write(root.join("hello.php"), "<?php echo 'hello';\n").unwrap();
        fs::write(root.join("protected/small.txt"), "hello accel").unwrap();
        // 100 MiB, sparse: the test reads its head only.
        fs::File::create(root.join("protected/big.bin"))
            .unwrap()
            .set_len(100 << 20)
            .unwrap();
        fs::write(base.join("downloads/report.txt"), "hello sendfile").unwrap();
        fs::write(base.join("outside/secret.txt"), "the secret").unwrap();
        std::os::unix::fs::symlink(
            base.join("outside/secret.txt"),
            base.join("downloads/link.txt"),
        )
        .unwrap();
        Site { dir }
    }

    fn base(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    fn start(&self, workers: u32, sendfile: &str) -> Paddock {
        require_php_cgi();
        let config = format!(
            "{}\n[sites.test.sendfile]\n{sendfile}\n",
            php_site(&self.base().join("root"), workers, "")
        );
        Paddock::start(&config)
    }

    fn roots(&self) -> String {
        format!(
            "internal = [\"/protected/\"]\nroots = [\"{}\"]",
            self.base().join("downloads").display()
        )
    }
}

fn get(paddock: &Paddock, path: &str, headers: &[(&str, &str)]) -> Response {
    Connection::open(paddock.http)
        .unwrap()
        .request("GET", path, headers, b"")
        .unwrap()
}

#[test]
fn x_accel_redirect_sends_the_internal_file_with_the_worker_s_download_headers() {
    let site = Site::new();
    let paddock = site.start(2, "internal = [\"/protected/\"]");
    let file = get(&paddock, "/accel.php?f=small.txt", &[]);
    assert_eq!(file.status, 200, "{}", file.text());
    assert_eq!(file.text(), "hello accel");
    assert_eq!(
        file.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        file.header("content-disposition"),
        Some("attachment; filename=\"small.txt\"")
    );
    assert!(file
        .header("set-cookie")
        .is_some_and(|c| c.starts_with("downloaded=1")));
    assert_eq!(file.header("x-accel-redirect"), None);
    // As a static file: ranges and conditional requests.
    let range = get(
        &paddock,
        "/accel.php?f=small.txt",
        &[("Range", "bytes=0-4")],
    );
    assert_eq!((range.status, range.text().as_str()), (206, "hello"));
    let etag = file.header("etag").expect("an ETag").to_string();
    let again = get(
        &paddock,
        "/accel.php?f=small.txt",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304);
    // Clients never reach the internal prefix themselves, however they spell it.
    for path in [
        "/protected/small.txt",
        "/%70rotected/small.txt",
        "//protected/./small.txt",
        "/protected",
    ] {
        assert_eq!(get(&paddock, path, &[]).status, 404, "{path}");
    }
    // A missing file is a 404, not the worker's empty body.
    assert_eq!(get(&paddock, "/accel.php?f=none.txt", &[]).status, 404);
    // The application is told it may use it, and how URIs map to files; a client cannot say so.
    let told = get(&paddock, "/type.php", &[("X-Sendfile-Type", "X-Sendfile")]);
    let root = site.base().join("root");
    assert_eq!(
        told.text(),
        format!("X-Accel-Redirect|{}/protected/=/protected/", root.display())
    );
}

#[test]
fn x_sendfile_sends_only_files_under_its_roots() {
    let site = Site::new();
    let paddock = site.start(2, &site.roots());
    let base = site.base();
    let url = |path: &Path| format!("/sendfile.php?f={}", path.display());
    let report = get(&paddock, &url(&base.join("downloads/report.txt")), &[]);
    assert_eq!(
        (report.status, report.text().as_str()),
        (200, "hello sendfile")
    );
    assert_eq!(report.header("content-disposition"), Some("attachment"));
    for outside in [
        base.join("outside/secret.txt"),
        base.join("downloads/../outside/secret.txt"),
        base.join("downloads/link.txt"),
        PathBuf::from("/etc/passwd"),
    ] {
        let refused = get(&paddock, &url(&outside), &[]);
        assert_eq!(refused.status, 403, "{}", outside.display());
        assert!(!refused.text().contains("secret"));
    }
    let told = get(
        &paddock,
        "/type.php",
        &[("X-Sendfile-Type", "X-Accel-Redirect")],
    );
    assert_eq!(told.text(), "X-Sendfile|-");
    paddock.wait_for_log("a worker named a file the front end does not send");
}

#[test]
fn x_sendfile_without_roots_is_dropped_never_shown() {
    let site = Site::new();
    let paddock = site.start(1, "internal = []");
    let base = site.base();
    let answer = get(
        &paddock,
        &format!(
            "/sendfile.php?f={}",
            base.join("downloads/report.txt").display()
        ),
        &[],
    );
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("x-sendfile"),
        None,
        "a server path shown to the client"
    );
    assert!(answer.body.is_empty());
    assert_eq!(get(&paddock, "/type.php", &[]).text(), "-|-");
    paddock.wait_for_log("the site has no sendfile.roots");
}

#[test]
fn a_large_download_leaves_its_worker_free_at_once() {
    let site = Site::new();
    let paddock = site.start(1, "internal = [\"/protected/\"]");
    // A client that reads the head and a little of 100 MiB, then stops reading.
    let mut slow = TcpStream::connect(paddock.http).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    slow.write_all(b"GET /accel.php?f=big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(slow.read(&mut byte).unwrap(), 1, "the connection closed");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-length: 104857600"), "{head}");
    let mut some = [0u8; 4096];
    slow.read_exact(&mut some).unwrap();
    // The pool's only worker is idle while the download waits on its client, and serves others.
    paddock.wait_pool("php", "the worker free again", |p| {
        p["idle_slots"] == 1 && p["busy_slots"] == 0
    });
    assert_eq!(get(&paddock, "/hello.php", &[]).text(), "hello");
    drop(slow);
}
