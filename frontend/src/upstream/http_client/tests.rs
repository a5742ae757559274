//! The HTTP client against a small worker of the test's own that answers as uWSGI's
//! `--protocol http11` does: it keeps the connection after every answer, framed or not, until
//! the client closes or shuts its side.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protocol::control::WorkerProtocol;
use protocol::fcgi::encode_name_value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::http::body::BufferedBody;
use crate::upstream::worker_connection::{
    ExchangeError, StdoutSink, WorkerConnection, WorkerReply,
};

/// What the worker sent, as CGI output.
#[derive(Default)]
struct Collected(Vec<u8>);

impl StdoutSink for Collected {
    async fn write(&mut self, data: &[u8]) -> Result<(), ExchangeError> {
        self.0.extend_from_slice(data);
        Ok(())
    }
    fn started(&self) -> bool {
        !self.0.is_empty()
    }
    fn restart(&mut self) -> bool {
        self.0.clear();
        true
    }
}

/// A worker on a socket in `dir`, answering each request by its path; counts its connections.
struct Worker {
    socket: std::path::PathBuf,
    connections: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

fn answer(path: &str, body: &[u8]) -> Vec<u8> {
    match path {
        "/length" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n\
            3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\nTrailer-Sum: 9\r\n\r\n"
            .to_vec(),
        "/close" => b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        "/unframed" => b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstreamed".to_vec(),
        "/continue" => {
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
                .to_vec()
        }
        "/echo" => {
            let mut out =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            out.extend_from_slice(body);
            out
        }
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    }
}

/// Serves one connection: request after request until the client's side ends.
async fn serve(stream: UnixStream) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await.unwrap();
            if header == "\r\n" {
                break;
            }
            if let Some(value) = header.strip_prefix("content-length: ") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.unwrap();
        writer.write_all(&answer(&path, &body)).await.unwrap();
        if path == "/close" {
            return;
        }
    }
}

fn worker() -> Worker {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("http.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream));
        }
    });
    Worker {
        socket,
        connections,
        _dir: dir,
    }
}

fn params(method: &str, uri: &str, body_len: usize) -> impl Fn(&mut Vec<u8>) + Sync {
    let pairs = [
        ("REQUEST_METHOD", method.to_string()),
        ("REQUEST_URI", uri.to_string()),
        ("SCRIPT_NAME", String::new()),
        ("REMOTE_ADDR", "127.0.0.1".to_string()),
        ("CONTENT_LENGTH", body_len.to_string()),
        ("HTTP_HOST", "test".to_string()),
    ];
    move |out: &mut Vec<u8>| {
        for (name, value) in &pairs {
            encode_name_value(out, name.as_bytes(), value.as_bytes());
        }
    }
}

/// One exchange, failing the test rather than waiting for ever on an answer whose end is
/// missed.
async fn exchange(
    connection: &mut WorkerConnection,
    method: &str,
    uri: &str,
    body: &[u8],
) -> (Result<WorkerReply, ExchangeError>, String) {
    let mut sink = Collected::default();
    let body = BufferedBody::Memory(Bytes::copy_from_slice(body));
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        connection.exchange(
            1,
            &params(method, uri, body.len() as usize),
            &body,
            &mut sink,
            |_| {},
        ),
    )
    .await
    .expect("the answer's end was seen");
    (result, String::from_utf8(sink.0).unwrap())
}

#[tokio::test]
async fn framed_answers_keep_the_connection_for_the_next_request() {
    let worker = worker();
    let mut connection =
        WorkerConnection::connect(&worker.socket, WorkerProtocol::Http, true, None).unwrap();
    for round in 0..3 {
        let (reply, out) = exchange(&mut connection, "GET", "/length", b"").await;
        assert!(reply.unwrap().reusable, "round {round}");
        assert_eq!(out, "Status: 200 OK\r\nContent-Length: 5\r\n\r\nhello");

        let (reply, out) = exchange(&mut connection, "GET", "/chunked", b"").await;
        assert!(reply.unwrap().reusable, "round {round}");
        assert!(out.ends_with("\r\n\r\nhello"), "decoded: {out:?}");
        assert!(out.starts_with("Status: 200 OK\r\n"), "{out:?}");

        let sent = vec![b'p'; 40_000];
        let (reply, out) = exchange(&mut connection, "POST", "/echo", &sent).await;
        assert!(reply.unwrap().reusable, "round {round}");
        assert!(out.ends_with(std::str::from_utf8(&sent).unwrap()));

        let (reply, out) = exchange(&mut connection, "POST", "/continue", b"x").await;
        assert!(reply.unwrap().reusable, "round {round}");
        assert!(out.starts_with("Status: 201 Created\r\n"), "{out:?}");

        let (reply, out) = exchange(&mut connection, "HEAD", "/length", b"").await;
        assert!(reply.unwrap().reusable, "round {round}");
        assert_eq!(
            out, "Status: 200 OK\r\nContent-Length: 5\r\n\r\n",
            "no body"
        );
        assert!(!connection.is_stale());
    }
    assert_eq!(worker.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_answer_ended_by_the_connection_ends_without_waiting_for_the_worker() {
    let worker = worker();
    let mut connection =
        WorkerConnection::connect(&worker.socket, WorkerProtocol::Http, true, None).unwrap();
    let (reply, out) = exchange(&mut connection, "GET", "/unframed", b"").await;
    assert!(!reply.unwrap().reusable);
    assert!(out.ends_with("\r\n\r\nstreamed"), "{out:?}");
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let worker = worker();
    let mut connection =
        WorkerConnection::connect(&worker.socket, WorkerProtocol::Http, true, None).unwrap();
    let (reply, out) = exchange(&mut connection, "GET", "/close", b"").await;
    assert!(!reply.unwrap().reusable);
    assert!(out.ends_with("\r\n\r\nok"), "{out:?}");
}
