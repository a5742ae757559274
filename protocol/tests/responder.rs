//! The responder against a raw FastCGI client built on the codec: every protocol duty (GET_VALUES,
//! CANT_MPX_CONN, UNKNOWN_ROLE, ABORT_REQUEST, FCGI_KEEP_CONN, UNKNOWN_TYPE) on a real Unix socket.
#![cfg(feature = "responder")]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use protocol::fcgi::{self, Decoded, ProtocolStatus, Record, RecordType, Role};
use protocol::responder::{Request, Responder, Response};

/// Starts `responder` (configured by `configure`) on a fresh socket; the serving thread lives as
/// long as the test process.
#[allow(
    clippy::disallowed_methods,
    reason = "a test serving its own responder on a thread; no process forks here"
)]
fn start<H>(configure: impl FnOnce(Responder) -> Responder, handler: H) -> Socket
where
    H: Fn(&Request, &mut Response<'_>) -> u32 + Send + Sync + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.sock");
    let responder = configure(Responder::new(UnixListener::bind(&path).unwrap()));
    std::thread::spawn(move || responder.serve(handler));
    Socket { _dir: dir, path }
}

struct Socket {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Socket {
    fn connect(&self) -> Client {
        let stream = UnixStream::connect(&self.path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }
}

/// A record from the application, owned.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Stdout(u16, Vec<u8>),
    Stderr(u16, Vec<u8>),
    End(u16, u32, ProtocolStatus),
    Values(Vec<(String, String)>),
    UnknownType(u8),
    Closed,
}

struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
}

/// What one request produced.
#[derive(Debug)]
struct Reply {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    app_status: u32,
    status: ProtocolStatus,
}

impl Client {
    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// BEGIN_REQUEST, PARAMS and STDIN of a whole request, in one buffer.
    fn request_bytes(id: u16, keep_conn: bool, params: &[(&str, &str)], stdin: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        fcgi::encode_begin_request(&mut out, id, Role::Responder, keep_conn);
        let mut pairs = Vec::new();
        for (name, value) in params {
            fcgi::encode_name_value(&mut pairs, name.as_bytes(), value.as_bytes());
        }
        fcgi::encode_stream(&mut out, RecordType::Params, id, &pairs);
        fcgi::encode_stream_end(&mut out, RecordType::Params, id);
        fcgi::encode_stream(&mut out, RecordType::Stdin, id, stdin);
        fcgi::encode_stream_end(&mut out, RecordType::Stdin, id);
        out
    }

    fn next(&mut self) -> Got {
        loop {
            if let Decoded::Record { record, consumed } = fcgi::decode_record(&self.buf).unwrap() {
                let got = match record {
                    Record::Stdout {
                        request_id,
                        content,
                    } => Got::Stdout(request_id, content.to_vec()),
                    Record::Stderr {
                        request_id,
                        content,
                    } => Got::Stderr(request_id, content.to_vec()),
                    Record::EndRequest {
                        request_id,
                        app_status,
                        protocol_status,
                    } => Got::End(request_id, app_status, protocol_status),
                    Record::GetValuesResult { content } => Got::Values(
                        fcgi::name_values(content)
                            .map(|pair| {
                                let (n, v) = pair.unwrap();
                                (
                                    String::from_utf8(n.to_vec()).unwrap(),
                                    String::from_utf8(v.to_vec()).unwrap(),
                                )
                            })
                            .collect(),
                    ),
                    Record::UnknownType { record_type } => Got::UnknownType(record_type),
                    other => panic!("unexpected record from the application: {other:?}"),
                };
                self.buf.drain(..consumed);
                return got;
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).expect("read from responder");
            if n == 0 {
                assert!(self.buf.is_empty(), "connection closed mid-record");
                return Got::Closed;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads records of request `id` up to its END_REQUEST, checking the stream end records.
    fn reply(&mut self, id: u16) -> Reply {
        let mut reply = Reply {
            stdout: Vec::new(),
            stderr: Vec::new(),
            app_status: 0,
            status: ProtocolStatus::Other(99),
        };
        let (mut stdout_ended, mut stderr_ended) = (false, false);
        loop {
            match self.next() {
                Got::Stdout(rid, content) if rid == id => {
                    assert!(!stdout_ended, "STDOUT after its end record");
                    stdout_ended = content.is_empty();
                    reply.stdout.extend(content);
                }
                Got::Stderr(rid, content) if rid == id => {
                    assert!(!stderr_ended, "STDERR after its end record");
                    stderr_ended = content.is_empty();
                    reply.stderr.extend(content);
                }
                Got::End(rid, app_status, status) if rid == id => {
                    if status == ProtocolStatus::RequestComplete && !reply.stdout.is_empty() {
                        assert!(stdout_ended, "END_REQUEST before the STDOUT end record");
                    }
                    if !reply.stderr.is_empty() {
                        assert!(stderr_ended, "END_REQUEST before the STDERR end record");
                    }
                    reply.app_status = app_status;
                    reply.status = status;
                    return reply;
                }
                other => panic!("unexpected while reading request {id}: {other:?}"),
            }
        }
    }

    fn expect_closed(&mut self) {
        assert_eq!(self.next(), Got::Closed);
    }
}

/// Answers "<METHOD> <stdin length>" and the SCRIPT_NAME on stderr.
fn echo(request: &Request, response: &mut Response<'_>) -> u32 {
    let method = request.param("REQUEST_METHOD").unwrap_or("?");
    write!(
        response,
        "Content-Type: text/plain\r\n\r\n{method} {}",
        request.stdin().len()
    )
    .unwrap();
    if let Some(script) = request.param("SCRIPT_NAME") {
        response.stderr(script.as_bytes()).unwrap();
    }
    0
}

/// Polls `condition` for up to 10 s.
fn wait_for(condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn serves_a_request_and_closes_without_keep_conn() {
    let socket = start(|r| r, echo);
    let mut client = socket.connect();
    let params = [("REQUEST_METHOD", "POST"), ("SCRIPT_NAME", "/a.php")];
    client.send(&Client::request_bytes(1, false, &params, b"hello"));
    let reply = client.reply(1);
    assert_eq!(reply.stdout, b"Content-Type: text/plain\r\n\r\nPOST 5");
    assert_eq!(reply.stderr, b"/a.php");
    assert_eq!(
        (reply.app_status, reply.status),
        (0, ProtocolStatus::RequestComplete)
    );
    client.expect_closed();
}

#[test]
fn keep_conn_serves_several_requests_on_one_connection() {
    let socket = start(|r| r, echo);
    let mut client = socket.connect();
    for (id, body) in [(1, &b"a"[..]), (2, b"bb"), (1, b"")] {
        client.send(&Client::request_bytes(
            id,
            true,
            &[("REQUEST_METHOD", "PUT")],
            body,
        ));
        let reply = client.reply(id);
        let expected = format!("Content-Type: text/plain\r\n\r\nPUT {}", body.len());
        assert_eq!(reply.stdout, expected.as_bytes());
        assert!(reply.stderr.is_empty());
    }
}

#[test]
fn request_split_at_every_byte_is_served() {
    let socket = start(|r| r, echo);
    let mut client = socket.connect();
    let long_value = "v".repeat(300);
    let params = [("REQUEST_METHOD", "GET"), ("X_LONG", long_value.as_str())];
    for byte in Client::request_bytes(9, false, &params, &[7; 1000]) {
        client.send(&[byte]);
    }
    let reply = client.reply(9);
    assert_eq!(reply.stdout, b"Content-Type: text/plain\r\n\r\nGET 1000");
    client.expect_closed();
}

#[test]
fn large_body_and_output_cross_record_boundaries() {
    let socket = start(
        |r| r,
        |request: &Request, response: &mut Response<'_>| {
            response.write_all(b"\r\n").unwrap();
            response.write_all(request.stdin()).unwrap();
            response.write_all(request.stdin()).unwrap();
            0
        },
    );
    let mut client = socket.connect();
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    client.send(&Client::request_bytes(3, false, &[], &body));
    let reply = client.reply(3);
    assert_eq!(reply.stdout.len(), 2 + 2 * body.len());
    assert_eq!(&reply.stdout[2..2 + body.len()], &body[..]);
    assert_eq!(&reply.stdout[2 + body.len()..], &body[..]);
}

#[test]
fn get_values_reports_threads_and_no_multiplexing() {
    let socket = start(|r| r.threads(3), echo);
    let mut client = socket.connect();
    let mut query = Vec::new();
    fcgi::encode_get_values(
        &mut query,
        &[
            fcgi::values::MAX_CONNS,
            b"FCGI_SOMETHING_ELSE",
            fcgi::values::MAX_REQS,
            fcgi::values::MPXS_CONNS,
        ],
    );
    client.send(&query);
    let expected = [
        ("FCGI_MAX_CONNS", "3"),
        ("FCGI_MAX_REQS", "3"),
        ("FCGI_MPXS_CONNS", "0"),
    ]
    .map(|(n, v)| (n.to_string(), v.to_string()));
    assert_eq!(client.next(), Got::Values(expected.to_vec()));
    // The connection still serves requests afterwards.
    client.send(&Client::request_bytes(1, false, &[], b""));
    assert_eq!(client.reply(1).app_status, 0);
}

#[test]
fn second_request_id_while_one_is_active_gets_cant_mpx_conn() {
    let release = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let (release2, started2) = (release.clone(), started.clone());
    let socket = start(
        |r| r,
        move |_: &Request, response: &mut Response<'_>| {
            started2.store(true, Ordering::SeqCst);
            wait_for(|| release2.load(Ordering::SeqCst));
            response.write_all(b"\r\nfirst").unwrap();
            0
        },
    );
    let mut client = socket.connect();
    client.send(&Client::request_bytes(1, true, &[], b""));
    assert!(wait_for(|| started.load(Ordering::SeqCst)));
    client.send(&Client::request_bytes(2, true, &[], b""));
    assert_eq!(client.next(), Got::End(2, 0, ProtocolStatus::CantMpxConn));
    release.store(true, Ordering::SeqCst);
    let reply = client.reply(1);
    assert_eq!(reply.stdout, b"\r\nfirst");
    // Once request 1 has ended, id 2 is welcome.
    client.send(&Client::request_bytes(2, false, &[], b""));
    assert_eq!(client.reply(2).status, ProtocolStatus::RequestComplete);
}

#[test]
fn roles_not_served_get_unknown_role() {
    let socket = start(|r| r, echo);
    let mut client = socket.connect();
    for (id, role) in [
        (1, Role::Authorizer),
        (2, Role::Filter),
        (3, Role::Other(77)),
    ] {
        let mut begin = Vec::new();
        fcgi::encode_begin_request(&mut begin, id, role, true);
        client.send(&begin);
        assert_eq!(client.next(), Got::End(id, 0, ProtocolStatus::UnknownRole));
    }
    client.send(&Client::request_bytes(4, false, &[], b"x"));
    assert_eq!(client.reply(4).status, ProtocolStatus::RequestComplete);
}

#[test]
fn filter_role_gets_data_and_authorizer_needs_no_stdin() {
    let socket = start(
        |r| r.roles(&[Role::Authorizer, Role::Filter]),
        |request: &Request, response: &mut Response<'_>| {
            let role = request.role();
            write!(response, "Status: 200\r\n\r\n{role:?} ").unwrap();
            response.write_all(request.stdin()).unwrap();
            response.write_all(b"+").unwrap();
            response.write_all(request.data()).unwrap();
            0
        },
    );
    let mut client = socket.connect();
    let mut filter = Vec::new();
    fcgi::encode_begin_request(&mut filter, 5, Role::Filter, true);
    fcgi::encode_stream_end(&mut filter, RecordType::Params, 5);
    fcgi::encode_stream(&mut filter, RecordType::Stdin, 5, b"in");
    fcgi::encode_stream_end(&mut filter, RecordType::Stdin, 5);
    fcgi::encode_stream(&mut filter, RecordType::Data, 5, b"file");
    fcgi::encode_stream_end(&mut filter, RecordType::Data, 5);
    client.send(&filter);
    assert_eq!(client.reply(5).stdout, b"Status: 200\r\n\r\nFilter in+file");

    let mut authorizer = Vec::new();
    fcgi::encode_begin_request(&mut authorizer, 6, Role::Authorizer, false);
    fcgi::encode_stream_end(&mut authorizer, RecordType::Params, 6);
    client.send(&authorizer);
    assert_eq!(client.reply(6).stdout, b"Status: 200\r\n\r\nAuthorizer +");
    client.expect_closed();
}

#[test]
fn abort_before_the_request_is_complete_ends_it_without_the_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let socket = start(
        |r| r,
        move |request: &Request, response: &mut Response<'_>| {
            counter.fetch_add(1, Ordering::SeqCst);
            echo(request, response)
        },
    );
    let mut client = socket.connect();
    let mut partial = Vec::new();
    fcgi::encode_begin_request(&mut partial, 1, Role::Responder, true);
    fcgi::encode_stream(&mut partial, RecordType::Params, 1, b"\x01\x01ab");
    fcgi::encode_abort_request(&mut partial, 1);
    client.send(&partial);
    assert_eq!(
        client.next(),
        Got::End(1, 0, ProtocolStatus::RequestComplete)
    );
    // Late records of the aborted request are ignored; the next request is served.
    let mut late = Vec::new();
    fcgi::encode_stream_end(&mut late, RecordType::Params, 1);
    fcgi::encode_stream_end(&mut late, RecordType::Stdin, 1);
    client.send(&late);
    client.send(&Client::request_bytes(2, false, &[], b""));
    assert_eq!(client.reply(2).status, ProtocolStatus::RequestComplete);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn abort_while_the_handler_runs_raises_its_flag() {
    let socket = start(
        |r| r,
        |request: &Request, response: &mut Response<'_>| {
            response.write_all(b"\r\nstarted").unwrap();
            response.flush().unwrap();
            if wait_for(|| request.is_aborted()) {
                7
            } else {
                0
            }
        },
    );
    let mut client = socket.connect();
    client.send(&Client::request_bytes(4, true, &[], b""));
    assert_eq!(client.next(), Got::Stdout(4, b"\r\nstarted".to_vec()));
    let mut abort = Vec::new();
    fcgi::encode_abort_request(&mut abort, 4);
    client.send(&abort);
    let reply = client.reply(4);
    assert_eq!(
        (reply.app_status, reply.status),
        (7, ProtocolStatus::RequestComplete)
    );
}

#[test]
fn unknown_management_record_gets_unknown_type() {
    let socket = start(|r| r, echo);
    let mut client = socket.connect();
    let mut odd = Vec::new();
    fcgi::encode_record(
        &mut odd,
        &Record::Unrecognised {
            record_type: 200,
            request_id: 0,
            content: b"?",
        },
    );
    client.send(&odd);
    assert_eq!(client.next(), Got::UnknownType(200));
}

#[test]
fn oversized_params_close_the_connection_and_are_reported() {
    let reported = Arc::new(AtomicUsize::new(0));
    let counter = reported.clone();
    let socket = start(
        move |r| {
            r.max_params_len(100).on_connection_error(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            })
        },
        echo,
    );
    let mut client = socket.connect();
    let big = "x".repeat(200);
    client.send(&Client::request_bytes(1, true, &[("BIG", &big)], b""));
    client.expect_closed();
    assert!(wait_for(|| reported.load(Ordering::SeqCst) == 1));
}

#[test]
fn garbage_closes_the_connection_but_not_the_server() {
    let socket = start(|r| r, echo);
    let mut client = socket.connect();
    client.send(b"GET / HTTP/1.1\r\n\r\n");
    client.expect_closed();
    let mut client = socket.connect();
    client.send(&Client::request_bytes(1, false, &[], b""));
    assert_eq!(client.reply(1).status, ProtocolStatus::RequestComplete);
}

#[test]
fn panicking_handler_ends_its_request_with_status_255() {
    let socket = start(
        |r| r,
        |request: &Request, _: &mut Response<'_>| {
            if request.param("PANIC").is_some() {
                panic!("handler failure under test");
            }
            0
        },
    );
    let mut client = socket.connect();
    client.send(&Client::request_bytes(1, true, &[("PANIC", "1")], b""));
    assert_eq!(client.reply(1).app_status, 255);
    client.expect_closed();
    let mut client = socket.connect();
    client.send(&Client::request_bytes(1, false, &[], b""));
    assert_eq!(client.reply(1).app_status, 0);
}

#[test]
fn threads_serve_that_many_connections_at_once() {
    let threads = 3;
    let barrier = Arc::new(Barrier::new(threads));
    let socket = start(
        |r| r.threads(threads),
        move |_: &Request, response: &mut Response<'_>| {
            // Only returns once `threads` handlers run at the same time.
            barrier.wait();
            response.write_all(b"\r\ntogether").unwrap();
            0
        },
    );
    let mut clients: Vec<Client> = (0..threads).map(|_| socket.connect()).collect();
    for client in &mut clients {
        client.send(&Client::request_bytes(1, false, &[], b""));
    }
    for client in &mut clients {
        assert_eq!(client.reply(1).stdout, b"\r\ntogether");
    }
}
