//! Files above the in-memory cache's limit (256 KiB). On a plain HTTP/1.1 connection a whole
//! file's GET is sent with sendfile(2) by the direct path (frontend/src/conn/http1_direct/
//! send_file.rs); pipelined requests and TLS stream the same answer's body through hyper
//! (frontend/src/static_files/file_on_disk.rs), and ranges go to tower-http. The two must be indistinguishable to
//! the client, the access log and the metrics; and a slow client, a file cut short while it is
//! sent, and the next request on the same connection must all be handled.

use std::io::Read;
use std::time::Duration;

use harness::raw::RawConn;
use harness::{observe, wait_for, Paddock};

use crate::direct_path::{comparable, start};

/// 1 MiB and a bit: not a multiple of any buffer size on the way.
const BIG: usize = (1 << 20) + 4321;

/// Bytes that differ from one position to the next, so that a misplaced chunk shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn site() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("big.bin"), pattern(BIG)).unwrap();
    (dir, root)
}

fn request(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n")
}

fn sent_bytes(paddock: &Paddock) -> f64 {
    observe::scrape(paddock.admin)
        .lines()
        .filter(|line| line.starts_with("paddock_sent_bytes_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_large_file_is_the_same_sent_by_the_kernel_or_streamed_by_hyper() {
    let (dir, root) = site();
    let log = dir.path().join("access.log");
    let paddock = start(&root, &log);
    let sent_before = sent_bytes(&paddock);
    let whole = request("/big.bin", "");
    // Alone on its connection: the direct path, with sendfile(2).
    let mut conn = RawConn::connect(paddock.http);
    conn.send(whole.as_bytes()).unwrap();
    let direct = conn.read_response().expect("an answer");
    assert_eq!(direct.status, 200);
    assert_eq!(direct.body, pattern(BIG));
    // Pipelined behind itself: hyper, streaming tower-http's body.
    let mut pipelined = RawConn::connect(paddock.http);
    pipelined
        .send(format!("{whole}{whole}").as_bytes())
        .unwrap();
    let hyper = pipelined.read_response().expect("an answer");
    assert_eq!(comparable(&direct), comparable(&hyper));
    assert_eq!(
        comparable(&pipelined.read_response().unwrap()),
        comparable(&hyper)
    );
    // The kept connection goes on: the same file again, then the parts hyper answers.
    conn.send(whole.as_bytes()).unwrap();
    assert_eq!(
        comparable(&conn.read_response().unwrap()),
        comparable(&direct)
    );
    conn.send(request("/big.bin", "Range: bytes=1048570-1048579\r\n").as_bytes())
        .unwrap();
    let range = conn.read_response().unwrap();
    assert_eq!(range.status, 206);
    assert_eq!(range.body, pattern(BIG)[1_048_570..1_048_580]);
    // The range is tower-http's answer, the whole file paddock's own: the same validators.
    for name in ["etag", "last-modified", "content-type", "accept-ranges"] {
        assert_eq!(range.header(name), direct.header(name), "{name}");
    }
    let etag = direct.header("etag").unwrap().to_owned();
    conn.send(request("/big.bin", &format!("If-None-Match: {etag}\r\n")).as_bytes())
        .unwrap();
    assert_eq!(conn.read_response().unwrap().status, 304);
    conn.send(b"HEAD /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let head = conn.read_head_response().unwrap();
    assert_eq!(head.header("content-length"), Some(&*BIG.to_string()));
    // Over TLS the file is streamed by paddock (records are made here): the same bytes.
    let tls = paddock.curl(&["--http1.1", "-s", &paddock.https_url("/big.bin")]);
    assert!(tls.stdout == pattern(BIG), "TLS body differs");

    // Four whole answers (two direct, two through hyper) and the TLS one, logged in full.
    let whole_line = format!("\"GET /big.bin HTTP/1.1\" 200 {BIG} ");
    wait_for("five whole answers in the access log", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.matches(&whole_line).count() == 5).then_some(())
    });
    // The bytes sent with sendfile(2) are counted with every other byte written.
    let sent = sent_bytes(&paddock) - sent_before;
    assert!(sent >= (4 * BIG) as f64, "{sent} bytes counted");
}

#[test]
fn a_slow_reader_gets_the_whole_file() {
    let (_dir, root) = site();
    // Larger than the socket buffers on both sides, so that the sender has to wait.
    let len = 24 << 20;
    std::fs::write(root.join("large.bin"), pattern(len)).unwrap();
    let paddock = start(&root, &root.join("../access.log"));
    let mut conn = RawConn::connect(paddock.http);
    conn.send(request("/large.bin", "").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut stream = conn.stream().try_clone().unwrap();
    let mut received = Vec::with_capacity(len + 1024);
    let mut chunk = vec![0; 256 * 1024];
    let mut body_at = None;
    let mut next_pause = 0;
    while body_at.is_none_or(|at| received.len() - at < len) {
        let n = stream.read(&mut chunk).expect("the answer keeps coming");
        assert!(n > 0, "closed after {} bytes", received.len());
        received.extend_from_slice(&chunk[..n]);
        body_at = body_at.or_else(|| {
            let end = received.windows(4).position(|w| w == b"\r\n\r\n")?;
            Some(end + 4)
        });
        // A few pauses on the way, each with the sender's buffers full.
        if received.len() >= next_pause && next_pause < len {
            next_pause += 6 << 20;
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let at = body_at.unwrap();
    assert!(received.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(received.len() - at, len, "nothing after the body");
    assert!(received[at..] == pattern(len)[..], "body differs");
}

#[test]
fn a_file_cut_short_while_it_is_sent_ends_the_connection() {
    let (_dir, root) = site();
    let len = 64 << 20;
    let path = root.join("shrinking.bin");
    std::fs::write(&path, pattern(len)).unwrap();
    let paddock = start(&root, &root.join("../access.log"));
    let mut conn = RawConn::connect(paddock.http);
    conn.send(request("/shrinking.bin", "").as_bytes()).unwrap();
    let mut stream = conn.stream().try_clone().unwrap();
    let mut first = [0u8; 4096];
    assert!(stream.read(&mut first).unwrap() > 0, "the answer starts");
    // The socket buffers hold a few MiB at most: most of the file is still to be sent.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let mut rest = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let ended = stream.read_to_end(&mut rest);
    assert!(ended.is_ok(), "closed, not left waiting: {ended:?}");
    assert!(rest.len() < len, "{} bytes after the cut", rest.len());
    // The server is fine: the next client gets a file.
    let mut next = RawConn::connect(paddock.http);
    next.get("/big.bin").unwrap();
    assert_eq!(next.read_response().unwrap().body, pattern(BIG));
}
