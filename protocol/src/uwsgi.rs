//! The uwsgi protocol, the wire uWSGI speaks natively (nginx's `uwsgi_pass`), for the request
//! side; the answer is an HTTP response, whose head [`parse_answer_head`] turns into the CGI
//! output (a `Status:` header first) the rest of paddock expects.
//!
//! A request is a four-byte header — `modifier1` (0: a WSGI/PSGI/… request), the size of the
//! variables block as a little-endian `u16`, `modifier2` (0) — then the variables, each a
//! little-endian `u16` length and the name, then a `u16` length and the value; the body follows
//! raw (`CONTENT_LENGTH` bytes). The worker answers and closes the connection: one request a
//! connection, and the end of the answer is the end of the stream.
//!
//! The variables are the same CGI meta-variables a FastCGI worker gets: [`params_to_packet`]
//! takes them in FastCGI's name-value encoding, as [`crate::cgi::encode_params`] writes them, so the
//! one place where requests are turned into variables (and sanitised) stays the only one.

use crate::fcgi::{name_values, DecodeError};

/// Bytes of the header before the variables.
pub const HEADER_LEN: usize = 4;
/// The largest variables block the header's size field can express. uWSGI's own limit is its
/// `--buffer-size` (4096 bytes unless raised), which a request with large cookies can pass.
pub const MAX_VARS_LEN: usize = u16::MAX as usize;

/// Why a request cannot be put in a uwsgi packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("the request's variables take {0} bytes; the uwsgi protocol carries at most 65535")]
    TooLarge(usize),
    #[error("malformed variables: {0}")]
    Params(#[from] DecodeError),
}

/// Turns the FastCGI name-value pairs that fill `buf` into the uwsgi packet header and
/// variables, in place (the buffer is reused, nothing else is allocated). On error, `buf` is
/// left as it was.
pub fn params_to_packet(buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    let fcgi_len = buf.len();
    let mut vars_len = 0usize;
    for pair in name_values(buf) {
        let (name, value) = pair?;
        for part in [name, value] {
            if part.len() > usize::from(u16::MAX) {
                return Err(EncodeError::TooLarge(part.len()));
            }
            vars_len += 2 + part.len();
        }
    }
    if vars_len > MAX_VARS_LEN {
        return Err(EncodeError::TooLarge(vars_len));
    }
    buf.resize(fcgi_len + HEADER_LEN + vars_len, 0);
    let (fcgi_params, packet) = buf.split_at_mut(fcgi_len);
    packet[..HEADER_LEN].copy_from_slice(&[0, 0, 0, 0]);
    packet[1..3].copy_from_slice(&(vars_len as u16).to_le_bytes());
    let mut at = HEADER_LEN;
    for pair in name_values(fcgi_params) {
        let (name, value) = pair.expect("checked above");
        for part in [name, value] {
            packet[at..at + 2].copy_from_slice(&(part.len() as u16).to_le_bytes());
            packet[at + 2..at + 2 + part.len()].copy_from_slice(part);
            at += 2 + part.len();
        }
    }
    buf.drain(..fcgi_len);
    Ok(())
}

/// The head of a uwsgi worker's answer (an HTTP response head), turned into CGI output.
#[derive(Debug, PartialEq, Eq)]
pub struct AnswerHead {
    /// `Status: NNN Reason`, then the header lines as they came, then the blank line.
    pub cgi_head: Vec<u8>,
    /// Bytes of the input the head took.
    pub consumed: usize,
    pub status: u16,
    /// The body's length, when the worker said it: a shorter body means the worker died.
    pub content_length: Option<u64>,
}

/// What the start of a uwsgi worker's answer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// More bytes are needed to see the whole head.
    Incomplete,
    Complete(AnswerHead),
    /// Not an HTTP response head; says why.
    Invalid(String),
}

/// Reads the HTTP response head at the start of `buf`: the `HTTP/x.y NNN Reason` status line
/// and the header lines up to the blank line. Lines may end in CRLF or a bare LF.
pub fn parse_answer_head(buf: &[u8]) -> Head {
    let Some(status_end) = memchr::memchr(b'\n', buf) else {
        return Head::Incomplete;
    };
    let (status, status_header) = match status_line_to_cgi(&buf[..status_end]) {
        Ok(found) => found,
        Err(()) => {
            let line = &buf[..status_end.min(MAX_STATUS_LINE)];
            let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
            return Head::Invalid(format!("not an HTTP status line: {line:?}"));
        }
    };
    let mut content_length = None;
    let mut at = status_end + 1;
    loop {
        let Some(len) = memchr::memchr(b'\n', &buf[at..]) else {
            return Head::Incomplete;
        };
        let line = &buf[at..at + len];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        at += len + 1;
        if line.is_empty() {
            break;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            let line = String::from_utf8_lossy(line);
            return Head::Invalid(format!("not a header line: {line:?}"));
        };
        if line[..colon].eq_ignore_ascii_case(b"content-length") {
            let value = std::str::from_utf8(&line[colon + 1..]).unwrap_or("").trim();
            match (value.parse::<u64>(), content_length) {
                (Ok(n), None) => content_length = Some(n),
                (Ok(n), Some(m)) if n == m => {}
                _ => return Head::Invalid(format!("a bad or second Content-Length: {value:?}")),
            }
        }
    }
    let mut cgi_head = status_header;
    cgi_head.extend_from_slice(&buf[status_end + 1..at]);
    Head::Complete(AnswerHead {
        cgi_head,
        consumed: at,
        status,
        content_length,
    })
}

/// The longest status line quoted in an error.
const MAX_STATUS_LINE: usize = 200;

/// Reads one `HTTP/x.y NNN Reason` line (without its LF) as its status and the CGI header that
/// carries the same status (`Status: 404 Not Found\r\n`).
fn status_line_to_cgi(line: &[u8]) -> Result<(u16, Vec<u8>), ()> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // uWSGI echoes the request's SERVER_PROTOCOL, so an HTTP/2 request's answer starts with
    // "HTTP/2.0": any version of digits and at most one dot is taken.
    let (version, rest) = line
        .strip_prefix(b"HTTP/")
        .and_then(|l| l.split_at_checked(memchr::memchr(b' ', l)?))
        .ok_or(())?;
    let version_ok = match memchr::memchr(b'.', version) {
        Some(dot) => all_digits(&version[..dot]) && all_digits(&version[dot + 1..]),
        None => all_digits(version),
    };
    let (code, reason) = rest[1..].split_first_chunk::<3>().ok_or(())?;
    let reason = match reason {
        [] => &[][..],
        [b' ', reason @ ..] => reason,
        _ => return Err(()),
    };
    if !version_ok || !all_digits(code) || code[0] == b'0' || reason.contains(&0) {
        return Err(());
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let mut header = Vec::with_capacity(12 + reason.len());
    header.extend_from_slice(b"Status: ");
    header.extend_from_slice(code);
    if !reason.is_empty() {
        header.push(b' ');
        header.extend_from_slice(reason);
    }
    header.extend_from_slice(b"\r\n");
    Ok((status, header))
}

fn all_digits(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fcgi::encode_name_value;

    fn params(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in pairs {
            encode_name_value(&mut out, name.as_bytes(), value.as_bytes());
        }
        out
    }

    /// Splits a packet back into its variables, the way uWSGI reads it.
    fn decode(packet: &[u8]) -> Vec<(String, String)> {
        assert_eq!(packet[0], 0, "modifier1");
        assert_eq!(packet[3], 0, "modifier2");
        let size = u16::from_le_bytes([packet[1], packet[2]]) as usize;
        assert_eq!(
            packet.len(),
            HEADER_LEN + size,
            "the size covers the variables"
        );
        fn take(rest: &mut &[u8]) -> String {
            let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
            let part = String::from_utf8(rest[2..2 + len].to_vec()).unwrap();
            *rest = &rest[2 + len..];
            part
        }
        let mut rest = &packet[HEADER_LEN..];
        let mut vars = Vec::new();
        while !rest.is_empty() {
            let name = take(&mut rest);
            let value = take(&mut rest);
            vars.push((name, value));
        }
        vars
    }

    #[test]
    fn the_variables_carry_over_in_order_with_little_endian_lengths() {
        let long = "x".repeat(300);
        let pairs = [
            ("REQUEST_METHOD", "GET"),
            ("QUERY_STRING", ""),
            ("HTTP_COOKIE", long.as_str()),
        ];
        let mut out = params(&pairs);
        params_to_packet(&mut out).unwrap();
        let vars = decode(&out);
        let expected: Vec<_> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(vars, expected);
        // 300 = 0x012c, little-endian.
        let at = out.windows(11).position(|w| w == b"HTTP_COOKIE").unwrap() + 11;
        assert_eq!(&out[at..at + 2], &[0x2c, 0x01]);
    }

    #[test]
    fn variables_past_the_size_field_are_refused_and_the_buffer_kept() {
        let big = "y".repeat(40_000);
        let pairs = [("HTTP_A", big.as_str()), ("HTTP_B", big.as_str())];
        let mut out = params(&pairs);
        let before = out.clone();
        let error = params_to_packet(&mut out).unwrap_err();
        assert!(matches!(error, EncodeError::TooLarge(n) if n > MAX_VARS_LEN));
        assert_eq!(out, before);

        let huge = "z".repeat(70_000);
        let mut out = params(&[("HTTP_C", huge.as_str())]);
        let error = params_to_packet(&mut out).unwrap_err();
        assert_eq!(error, EncodeError::TooLarge(70_000));
    }

    fn complete(input: &[u8]) -> AnswerHead {
        match parse_answer_head(input) {
            Head::Complete(head) => head,
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(input)),
        }
    }

    #[test]
    fn an_answer_head_becomes_cgi_output() {
        let answer =
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nnope!";
        let head = complete(answer);
        assert_eq!(
            String::from_utf8(head.cgi_head).unwrap(),
            "Status: 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
        );
        assert_eq!(&answer[head.consumed..], b"nope!");
        assert_eq!((head.status, head.content_length), (404, Some(5)));

        let head = complete(b"HTTP/1.0 200 OK\nX: y\n\nbody");
        assert_eq!(head.cgi_head, b"Status: 200 OK\r\nX: y\n\n");
        assert_eq!((head.consumed, head.content_length), (22, None));
        let head = complete(b"HTTP/1.1 204\r\n\r\n");
        assert_eq!(
            (head.cgi_head, head.status),
            (b"Status: 204\r\n\r\n".to_vec(), 204)
        );
        // uWSGI answers an HTTP/2 request in the request's own version.
        let head = complete(b"HTTP/2.0 201 Created\r\ncontent-length:  0 \r\n\r\n");
        assert_eq!((head.status, head.content_length), (201, Some(0)));
    }

    #[test]
    fn a_partial_head_waits_and_a_wrong_one_is_refused() {
        for partial in [
            &b""[..],
            b"HTTP/1.1 20",
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\r\n",
        ] {
            assert_eq!(parse_answer_head(partial), Head::Incomplete, "{partial:?}");
        }
        for wrong in [
            &b"Status: 200 OK\r\n\r\n"[..],
            b"HTTP 200 OK\r\n\r\n",
            b"HTTP/1.x 200 OK\r\n\r\n",
            b"HTTP/1. 200 OK\r\n\r\n",
            b"HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 099 Low\r\n\r\n",
            b"HTTP/1.1 200\0OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        ] {
            assert!(
                matches!(parse_answer_head(wrong), Head::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(wrong)
            );
        }
        // The same length twice is one length.
        let head = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(head.content_length, Some(5));
    }
}
