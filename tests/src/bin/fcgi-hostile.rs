//! A FastCGI application that misbehaves on request, for tests/tests/hostile/workers.rs.
//!
//! Started like any FastCGI application (listening Unix socket on fd 0), one connection and one
//! request at a time. It reads a request, then acts on `mode=` in the query string, writing raw
//! records (with the `protocol::fcgi` encoders, or raw bytes where the point is to break the
//! protocol). Everything a misbehaving mode tries to slip to the client contains the word
//! `INJECTED`, which the tests look for.
//!
//! Modes: `ok` (a correct answer: `ok pid=<pid>`), `garbage`, `version`, `request-id`, `padding`,
//! `endless-headers`, `endless-body`, `stderr-flood` (`n` MiB, default 100), `no-end`,
//! `after-end`, `bad-status` (`n` picks the variant), `header-injection` (`n` picks the variant),
//! `lying-length` (`n`: 0 longer, 1 shorter than the body), `exit` (exits without answering),
//! `fd2-flood` (`n` MiB on its own stderr, default 20), `fork` (starts children that sleep, then
//! hangs).
//!
//! Arguments: `--crash-after N` aborts the process after it has answered N requests;
//! `--exit-at-start` exits before accepting anything (a crash loop).
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use protocol::fcgi::{self, Decoded, ProtocolStatus, Record, RecordType};

/// A safety cap on `fork`: as root RLIMIT_NPROC does not apply, so the app bounds itself.
const MAX_FORKS: usize = 64;

/// One request as read from the connection.
struct Request {
    id: u16,
    query: String,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--exit-at-start") {
        eprintln!("fcgi-hostile: exiting at start");
        std::process::exit(3);
    }
    let crash_after: Option<u64> = args
        .iter()
        .position(|a| a == "--crash-after")
        .and_then(|i| args.get(i + 1)?.parse().ok());
    let fd = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .expect("listening socket on fd 0");
    let listener = UnixListener::from(fd);
    let mut served = 0u64;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        // Requests on this connection until the peer closes it or a mode ends it.
        while let Ok(Some(request)) = read_request(&mut stream) {
            let keep = answer(&mut stream, &request).unwrap_or(false);
            served += 1;
            if crash_after.is_some_and(|n| served >= n) {
                eprintln!("fcgi-hostile: crashing after {served} requests");
                std::process::abort();
            }
            if !keep {
                break;
            }
        }
    }
}

/// Reads records until the request's PARAMS and STDIN have both ended.
fn read_request(stream: &mut UnixStream) -> io::Result<Option<Request>> {
    let mut input = Vec::new();
    let mut params = Vec::new();
    let mut id = None;
    let (mut params_done, mut stdin_done) = (false, false);
    let mut chunk = [0u8; 65536];
    while !(params_done && stdin_done) {
        loop {
            let (consumed, record) = match fcgi::decode_record(&input) {
                Ok(Decoded::Record { record, consumed }) => (consumed, record),
                Ok(Decoded::NeedMore { .. }) => break,
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            };
            match record {
                Record::BeginRequest { request_id, .. } => id = Some(request_id),
                Record::Params { content: [], .. } => params_done = true,
                Record::Params { content, .. } => params.extend_from_slice(content),
                Record::Stdin { content: [], .. } => stdin_done = true,
                _ => {}
            }
            input.drain(..consumed);
        }
        if params_done && stdin_done {
            break;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        input.extend_from_slice(&chunk[..n]);
    }
    let query = fcgi::name_values(&params)
        .filter_map(Result::ok)
        .find(|(name, _)| *name == b"QUERY_STRING")
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
        .unwrap_or_default();
    Ok(Some(Request {
        id: id.unwrap_or(1),
        query,
    }))
}

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

/// Acts on the request's mode; returns whether the connection may carry another request.
fn answer(stream: &mut UnixStream, request: &Request) -> io::Result<bool> {
    let id = request.id;
    let mode = query_value(&request.query, "mode").unwrap_or("ok");
    let n: u64 = query_value(&request.query, "n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let pid = std::process::id();
    let mut out = Vec::new();
    match mode {
        "ok" => {
            stdout(
                &mut out,
                id,
                format!("Content-Type: text/plain\r\n\r\nok pid={pid}\n"),
            );
            end(&mut out, id);
        }
        // Not FastCGI at all: an HTTP response, as if the bytes could reach the client.
        "garbage" => {
            out.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nX-Injected: yes\r\nContent-Length: 8\r\n\r\nINJECTED",
            );
            stream.write_all(&out)?;
            return hang();
        }
        // A well-formed record with version 2.
        "version" => {
            stdout(&mut out, id, "Content-Type: text/plain\r\n\r\nINJECTED\n");
            end(&mut out, id);
            out[0] = 2;
            stream.write_all(&out)?;
            return hang();
        }
        // A complete answer for another request id.
        "request-id" => {
            stdout(
                &mut out,
                id.wrapping_add(1),
                "Content-Type: text/plain\r\n\r\nINJECTED\n",
            );
            end(&mut out, id.wrapping_add(1));
            stream.write_all(&out)?;
            return hang();
        }
        // Legal: every record carries 255 bytes of padding, which must never be shown.
        "padding" => {
            let body = format!("Content-Type: text/plain\r\n\r\npadded pid={pid}\n");
            padded(&mut out, RecordType::Stdout, id, body.as_bytes());
            padded(&mut out, RecordType::Stdout, id, b"");
            let mut end_content = Vec::new();
            fcgi::encode_end_request(&mut end_content, id, 0, ProtocolStatus::RequestComplete);
            padded(&mut out, RecordType::EndRequest, id, &end_content[8..16]);
        }
        "endless-headers" => {
            let mut line = 0u64;
            loop {
                out.clear();
                let mut block = String::new();
                for _ in 0..1000 {
                    block.push_str(&format!("X-Endless-{line}: {}\r\n", "h".repeat(40)));
                    line += 1;
                }
                stdout(&mut out, id, block);
                stream.write_all(&out)?;
            }
        }
        "endless-body" => {
            stdout(&mut out, id, "Content-Type: text/plain\r\n\r\n");
            stream.write_all(&out)?;
            let block = vec![b'b'; fcgi::MAX_CONTENT_LEN];
            loop {
                out.clear();
                fcgi::encode_stream(&mut out, RecordType::Stdout, id, &block);
                stream.write_all(&out)?;
            }
        }
        "stderr-flood" => {
            let mib = if n == 0 { 100 } else { n };
            let mut line = 0u64;
            let mut sent = 0u64;
            while sent < mib << 20 {
                let mut block = String::with_capacity(64 * 1024);
                while block.len() < 60 * 1024 {
                    block.push_str(&format!("fcgi-hostile stderr flood line {line}\n"));
                    line += 1;
                }
                sent += block.len() as u64;
                out.clear();
                fcgi::encode_stream(&mut out, RecordType::Stderr, id, block.as_bytes());
                stream.write_all(&out)?;
            }
            out.clear();
            stdout(
                &mut out,
                id,
                format!("Content-Type: text/plain\r\n\r\nflooded {line} lines pid={pid}\n"),
            );
            end(&mut out, id);
        }
        // A response, then EOF without END_REQUEST.
        "no-end" => {
            stdout(
                &mut out,
                id,
                "Content-Type: text/plain\r\n\r\nINJECTED partial\n",
            );
            stream.write_all(&out)?;
            return Ok(false);
        }
        // A correct answer, then a second answer nobody asked for.
        "after-end" => {
            stdout(
                &mut out,
                id,
                format!("Content-Type: text/plain\r\n\r\nafter-end pid={pid}\n"),
            );
            end(&mut out, id);
            stdout(
                &mut out,
                id,
                "Content-Type: text/plain\r\nX-Injected: yes\r\n\r\nINJECTED\n",
            );
            end(&mut out, id);
        }
        "bad-status" => {
            let status = match n {
                0 => "Status: abc",
                1 => "Status: 20",
                2 => "Status: 999 Nine",
                3 => "Status: 200 OK\r\nStatus: 500 Error",
                4 => "Status: 100 Continue",
                5 => "Status: 101 Switching Protocols\r\nUpgrade: INJECTED",
                6 => "Status: 200\x00INJECTED",
                _ => "Status: -200",
            };
            stdout(&mut out, id, format!("{status}\r\n\r\nINJECTED body\n"));
            end(&mut out, id);
        }
        "header-injection" => {
            let head = match n {
                0 => "X-Test: a\rX-Injected: yes",
                1 => "X-Test: a\r\n\rX-Injected: yes",
                2 => "X-Test: a\x00X-Injected: yes",
                3 => "X-Te st: INJECTED",
                4 => "X-Test: a\r\n X-Injected: folded",
                5 => "Set-Cookie: a=b\r\rX-Injected: yes",
                _ => "X-Test: a\n\rX-Injected: yes",
            };
            stdout(
                &mut out,
                id,
                format!("Content-Type: text/plain\r\n{head}\r\n\r\nINJECTED body\n"),
            );
            end(&mut out, id);
        }
        "lying-length" => {
            let (length, body) = if n == 0 {
                (1000, "short\n".to_string())
            } else {
                // Shorter than the body: what follows looks like a second response.
                (
                    6,
                    "short\nHTTP/1.1 200 OK\r\nX-Injected: yes\r\nContent-Length: 8\r\n\r\nINJECTED"
                        .to_string(),
                )
            };
            stdout(
                &mut out,
                id,
                format!("Content-Type: text/plain\r\nContent-Length: {length}\r\n\r\n{body}"),
            );
            end(&mut out, id);
        }
        "exit" => std::process::exit(4),
        // Floods its own stderr (fd 2, a pipe to the master) with `n` MiB (default 20), then answers.
        "fd2-flood" => {
            let mib = if n == 0 { 20 } else { n };
            let mut err = io::stderr().lock();
            let mut line = 0u64;
            let mut sent = 0u64;
            while sent < mib << 20 {
                let text = format!("fcgi-hostile fd2 flood line {line}\n");
                sent += text.len() as u64;
                line += 1;
                err.write_all(text.as_bytes())?;
            }
            stdout(
                &mut out,
                id,
                format!("Content-Type: text/plain\r\n\r\nfd2 flooded {line} lines pid={pid}\n"),
            );
            end(&mut out, id);
        }
        "fork" => {
            let mut children = Vec::new();
            for _ in 0..MAX_FORKS {
                match std::process::Command::new("sleep")
                    .arg("300")
                    .stdin(std::process::Stdio::null())
                    .spawn()
                {
                    Ok(child) => children.push(child),
                    Err(e) => {
                        eprintln!("fcgi-hostile: fork stopped: {e}");
                        break;
                    }
                }
            }
            eprintln!("fcgi-hostile: {} children of {pid}", children.len());
            return hang();
        }
        other => {
            stdout(
                &mut out,
                id,
                format!("Status: 400\r\nContent-Type: text/plain\r\n\r\nno mode {other}\n"),
            );
            end(&mut out, id);
        }
    }
    stream.write_all(&out)?;
    Ok(true)
}

fn stdout(out: &mut Vec<u8>, id: u16, text: impl AsRef<[u8]>) {
    fcgi::encode_stream(out, RecordType::Stdout, id, text.as_ref());
}

fn end(out: &mut Vec<u8>, id: u16) {
    fcgi::encode_stream_end(out, RecordType::Stdout, id);
    fcgi::encode_end_request(out, id, 0, ProtocolStatus::RequestComplete);
}

/// A record with 255 bytes of padding that spell INJECTED.
fn padded(out: &mut Vec<u8>, record_type: RecordType, id: u16, content: &[u8]) {
    let [id_hi, id_lo] = id.to_be_bytes();
    let [len_hi, len_lo] = (content.len() as u16).to_be_bytes();
    out.extend_from_slice(&[
        fcgi::VERSION_1,
        record_type.as_u8(),
        id_hi,
        id_lo,
        len_hi,
        len_lo,
        255,
        0,
    ]);
    out.extend_from_slice(content);
    out.extend(b"INJECTED".iter().cycle().take(255));
}

/// Keeps the connection open and does nothing until killed.
fn hang() -> io::Result<bool> {
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}
