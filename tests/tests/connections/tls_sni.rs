//! TLS: certificates chosen by SNI with a default, TLS 1.2 and 1.3 only, and certificate reload on
//! SIGHUP without dropping open connections (a bad new certificate keeps the old one).
//! Checked with the real `openssl s_client`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use harness::{tls_client, wait_until, Paddock};

/// Writes a self-signed EC certificate for `name` to `<stem>.pem` / `<stem>.key` under `dir`.
fn make_cert(dir: &Path, stem: &str, name: &str) {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .arg("-keyout")
        .arg(dir.join(format!("{stem}.key")))
        .arg("-out")
        .arg(dir.join(format!("{stem}.pem")))
        .stderr(Stdio::null())
        .status()
        .expect("openssl (apt-get install openssl)");
    assert!(status.success());
}

fn start(dir: &Path) -> Paddock {
    let site = dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("hello.txt"), "hello\n").unwrap();
    Paddock::start_with(
        &format!(
            r#"
[listeners.https]
kind = "https"
address = "127.0.0.1:0"
certificate = "{d}/default.pem"
key = "{d}/default.key"
sni_certificates = [
    {{ certificate = "{d}/a.pem", key = "{d}/a.key" }},
    {{ certificate = "{d}/b.pem", key = "{d}/b.key" }},
]

[listeners.admin]
kind = "admin"
address = "127.0.0.1:0"

[sites.main]
root = "{site}"
"#,
            d = dir.display(),
            site = site.display()
        ),
        true,
    )
}

/// The subject CN the server presents for `servername` (None: no SNI), with extra s_client args.
fn presented(paddock: &Paddock, servername: Option<&str>, extra: &[&str]) -> Option<String> {
    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-connect", &paddock.https.to_string()])
        .args(extra)
        .stdin(Stdio::null());
    match servername {
        Some(name) => command.args(["-servername", name]),
        None => command.arg("-noservername"),
    };
    let output = command.output().expect("openssl s_client");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("subject=CN = "))
        .map(str::to_owned)
}

fn certs(dir: &Path) {
    make_cert(dir, "default", "default.test");
    make_cert(dir, "a", "a.test");
    make_cert(dir, "b", "b.test");
}

#[test]
fn certificate_is_chosen_by_sni_with_a_default() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path());
    let paddock = start(dir.path());
    assert_eq!(
        presented(&paddock, Some("a.test"), &[]).as_deref(),
        Some("a.test")
    );
    assert_eq!(
        presented(&paddock, Some("b.test"), &[]).as_deref(),
        Some("b.test")
    );
    assert_eq!(
        presented(&paddock, Some("other.test"), &[]).as_deref(),
        Some("default.test")
    );
    assert_eq!(
        presented(&paddock, None, &[]).as_deref(),
        Some("default.test")
    );
}

#[test]
fn only_tls_1_2_and_1_3_are_offered() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path());
    let paddock = start(dir.path());
    assert!(presented(&paddock, Some("a.test"), &["-tls1_3"]).is_some());
    assert!(presented(&paddock, Some("a.test"), &["-tls1_2"]).is_some());
    // OpenSSL 3 may refuse TLS 1.1 itself at its default security level; either way no session.
    assert!(presented(
        &paddock,
        Some("a.test"),
        &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]
    )
    .is_none());
}

#[test]
fn sighup_reloads_certificates_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path());
    let paddock = start(dir.path());
    assert_eq!(
        presented(&paddock, Some("a.test"), &[]).as_deref(),
        Some("a.test")
    );

    // A keep-alive TLS connection, open across the reload.
    let mut open = tls_client(paddock.https, "a.test");
    let request = b"GET /hello.txt HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let mut stdin = open.stdin.take().unwrap();
    let answers = {
        let mut stdout = open.stdout.take().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        move || seen.lock().unwrap().matches("HTTP/1.1 200").count()
    };
    stdin.write_all(request).unwrap();
    wait_until("the answer before the reload", || answers() == 1);

    // New certificate for a.test (a different subject to tell them apart), then SIGHUP.
    make_cert(dir.path(), "a", "a.test");
    std::fs::copy(dir.path().join("b.pem"), dir.path().join("b-old.pem")).unwrap();
    make_cert(dir.path(), "default", "renewed.test");
    harness::signal(paddock.pid(), "HUP");
    wait_until("the renewed certificate", || {
        presented(&paddock, None, &[]).as_deref() == Some("renewed.test")
    });
    assert_eq!(
        presented(&paddock, Some("b.test"), &[]).as_deref(),
        Some("b.test")
    );

    // The connection from before still serves.
    stdin.write_all(request).unwrap();
    wait_until("the answer on the connection from before", || {
        answers() == 2
    });
    drop(stdin);
    let _ = open.kill();
    let _ = open.wait();

    // A broken certificate file: the reload fails, says why, and the previous one stays.
    std::fs::write(dir.path().join("default.pem"), "not a certificate\n").unwrap();
    harness::signal(paddock.pid(), "HUP");
    // The master validates certificates before applying a reload, so the whole reload is refused
    // with the file's problem.
    wait_until("the failed reload in the log", || {
        let log = paddock.log();
        log.contains("configuration reload failed") && log.contains("default.pem")
    });
    assert_eq!(
        presented(&paddock, None, &[]).as_deref(),
        Some("renewed.test")
    );
}

/// Runs one `openssl s_client` request with `args` (a session file in, out) and returns its
/// output: the session line tells a full handshake (`New,`) from a resumed one (`Reused,`).
fn session(paddock: &Paddock, args: &[&str]) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &paddock.https.to_string()])
        .args(["-servername", "a.test", "-ign_eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    // A whole request and its answer: the TLS 1.3 ticket arrives after the handshake.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /hello.txt HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn sessions_resume_with_tls_1_3_tickets_and_tls_1_2_sessions() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path());
    let paddock = start(dir.path());
    for version in ["-tls1_3", "-tls1_2"] {
        let file = dir.path().join(format!("session{version}"));
        let file = file.to_str().unwrap();
        let first = session(&paddock, &[version, "-sess_out", file]);
        assert!(first.contains("hello"), "{version}: {first}");
        // A stateless ticket (TLS 1.2 gets one only from a server with ticket keys).
        assert!(
            first.contains("TLS session ticket lifetime hint"),
            "{version}: a ticket: {first}"
        );
        assert!(
            first.contains("\nNew, "),
            "{version}: a full handshake first: {first}"
        );
        let again = session(&paddock, &[version, "-sess_in", file]);
        assert!(again.contains("hello"), "{version}: {again}");
        assert!(again.contains("\nReused, "), "{version}: resumed: {again}");
    }
}
