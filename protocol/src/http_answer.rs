//! The head of an HTTP answer from a worker (a uwsgi worker's, or one that speaks HTTP/1.1 to a
//! pool with `protocol = "http"`), turned into the CGI output (a `Status:` header first) the rest
//! of paddock expects, with what frames the body that follows.

/// The head of a worker's HTTP answer, turned into CGI output.
#[derive(Debug, PartialEq, Eq)]
pub struct AnswerHead {
    /// `Status: NNN Reason`, then the header lines as they came, then the blank line. (Headers
    /// that only frame the answer on this hop, such as `Transfer-Encoding`, are dropped later
    /// with every CGI response's hop-by-hop headers.)
    pub cgi_head: Vec<u8>,
    /// Bytes of the input the head took.
    pub consumed: usize,
    pub status: u16,
    /// The body's length, when the worker said it: a shorter body means the worker died.
    /// Never given with `chunked` (such a head is refused).
    pub content_length: Option<u64>,
    /// The body comes in chunks (`Transfer-Encoding: chunked`).
    pub chunked: bool,
    /// The worker said `Connection: close`: the connection ends with this answer.
    pub close: bool,
}

/// What the start of a worker's HTTP answer holds.
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
    let StatusLine {
        status,
        code,
        reason,
    } = match status_line(&buf[..status_end]) {
        Ok(found) => found,
        Err(()) => {
            let line = &buf[..status_end.min(MAX_STATUS_LINE)];
            let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
            return Head::Invalid(format!("not an HTTP status line: {line:?}"));
        }
    };
    let mut content_length = None;
    let mut chunked = false;
    let mut close = false;
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
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only "chunked" (last, as RFC 9112 requires) frames a body this client can read.
            let last = value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                let value = String::from_utf8_lossy(value.trim_ascii());
                return Head::Invalid(format!("a transfer coding other than chunked: {value:?}"));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= value
                .split(|&b| b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let value = std::str::from_utf8(&line[colon + 1..]).unwrap_or("").trim();
            match (value.parse::<u64>(), content_length) {
                (Ok(n), None) => content_length = Some(n),
                (Ok(n), Some(m)) if n == m => {}
                _ => return Head::Invalid(format!("a bad or second Content-Length: {value:?}")),
            }
        }
    }
    if chunked && content_length.is_some() {
        // RFC 9112 §6.3: a sign of response splitting; the length would also go on to the client.
        return Head::Invalid("both Content-Length and Transfer-Encoding: chunked".into());
    }
    // The CGI head in one allocation: `Status: NNN Reason` and the header lines as they came.
    let fields = &buf[status_end + 1..at];
    let mut cgi_head = Vec::with_capacity(b"Status: NNN \r\n".len() + reason.len() + fields.len());
    cgi_head.extend_from_slice(b"Status: ");
    cgi_head.extend_from_slice(code);
    if !reason.is_empty() {
        cgi_head.push(b' ');
        cgi_head.extend_from_slice(reason);
    }
    cgi_head.extend_from_slice(b"\r\n");
    cgi_head.extend_from_slice(fields);
    Head::Complete(AnswerHead {
        cgi_head,
        consumed: at,
        status,
        content_length,
        chunked,
        close,
    })
}

/// The longest status line quoted in an error.
const MAX_STATUS_LINE: usize = 200;

/// An answer's status line, and the pieces the CGI header carrying the same status is made of
/// (`Status: 404 Not Found`).
struct StatusLine<'a> {
    status: u16,
    code: &'a [u8; 3],
    reason: &'a [u8],
}

/// Reads one `HTTP/x.y NNN Reason` line (without its LF).
fn status_line(line: &[u8]) -> Result<StatusLine<'_>, ()> {
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
    Ok(StatusLine {
        status,
        code,
        reason,
    })
}

fn all_digits(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit)
}

/// The longest chunk-size or trailer line taken (with its extensions): a worker sending more is
/// not sending a chunked body.
const MAX_CHUNK_LINE: usize = 4096;

/// One step of [`ChunkedBody::next`].
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// Body bytes: `input[range]`; the caller takes them and drops `input[..range.end]`.
    Data(std::ops::Range<usize>),
    /// `n` bytes of framing to drop from the front of the input.
    Framing(usize),
    /// The input holds no whole step: more bytes are needed (nothing was taken).
    Incomplete,
    /// The body has ended; drop `n` bytes (the last chunk's trailers and blank line).
    End(usize),
}

/// Reads a body in the chunked transfer coding (RFC 9112 §7.1) as it arrives: sizes, data,
/// extensions and trailers, which are passed over (a CGI response has no place for them).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChunkedBody {
    state: ChunkState,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum ChunkState {
    /// Before a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// After a chunk's data, before its line end.
    DataEnd,
    /// After the last (zero-size) chunk: trailer lines up to a blank one.
    Trailers,
    Done,
}

impl ChunkedBody {
    /// The next step over `input`, the bytes received and not yet dropped; `Err` says how the
    /// body breaks the coding.
    pub fn next(&mut self, input: &[u8]) -> Result<Piece, String> {
        match self.state {
            ChunkState::Size => {
                let Some(line) = line_at_start(input)? else {
                    return Ok(Piece::Incomplete);
                };
                let size = chunk_size(&input[..line])?;
                self.state = if size == 0 {
                    ChunkState::Trailers
                } else {
                    ChunkState::Data(size)
                };
                Ok(Piece::Framing(line + 1))
            }
            ChunkState::Data(left) => {
                if input.is_empty() {
                    return Ok(Piece::Incomplete);
                }
                let take = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let left = left - take as u64;
                self.state = if left == 0 {
                    ChunkState::DataEnd
                } else {
                    ChunkState::Data(left)
                };
                Ok(Piece::Data(0..take))
            }
            ChunkState::DataEnd => match input {
                [] | [b'\r'] => Ok(Piece::Incomplete),
                [b'\r', b'\n', ..] | [b'\n', ..] => {
                    self.state = ChunkState::Size;
                    Ok(Piece::Framing(if input[0] == b'\n' { 1 } else { 2 }))
                }
                _ => Err("a chunk longer than its size".to_string()),
            },
            ChunkState::Trailers => {
                let Some(line) = line_at_start(input)? else {
                    return Ok(Piece::Incomplete);
                };
                if input[..line]
                    .strip_suffix(b"\r")
                    .unwrap_or(&input[..line])
                    .is_empty()
                {
                    self.state = ChunkState::Done;
                    return Ok(Piece::End(line + 1));
                }
                Ok(Piece::Framing(line + 1))
            }
            ChunkState::Done => Ok(Piece::End(0)),
        }
    }

    /// Whether the last chunk and its trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

/// Where the line at the start of `input` ends (the index of its LF), if it has.
fn line_at_start(input: &[u8]) -> Result<Option<usize>, String> {
    match memchr::memchr(b'\n', input) {
        Some(end) if end <= MAX_CHUNK_LINE => Ok(Some(end)),
        None if input.len() <= MAX_CHUNK_LINE => Ok(None),
        _ => Err(format!("a chunk line longer than {MAX_CHUNK_LINE} bytes")),
    }
}

/// The size a chunk-size line (without its LF) gives: hex digits, then maybe `;extensions`.
fn chunk_size(line: &[u8]) -> Result<u64, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(digits_end);
    let rest = rest.trim_ascii_start();
    let size = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| u64::from_str_radix(d, 16).ok());
    match size {
        Some(size) if rest.is_empty() || rest[0] == b';' => Ok(size),
        _ => Err(format!(
            "not a chunk size: {:?}",
            String::from_utf8_lossy(&line[..line.len().min(MAX_STATUS_LINE)])
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Runs `body` through the decoder fed `step` bytes at a time, as reads would bring it.
    fn dechunk(body: &[u8], step: usize) -> Result<(Vec<u8>, usize), String> {
        let mut decoder = ChunkedBody::default();
        let (mut input, mut data, mut fed) = (Vec::new(), Vec::new(), 0);
        loop {
            match decoder.next(&input)? {
                Piece::Data(range) => {
                    data.extend_from_slice(&input[range.clone()]);
                    input.drain(..range.end);
                }
                Piece::Framing(n) => drop(input.drain(..n)),
                Piece::End(n) => {
                    input.drain(..n);
                    // What follows the body (the next answer) is left alone.
                    return Ok((data, body.len() - fed + input.len()));
                }
                Piece::Incomplete if fed == body.len() => return Err("truncated".into()),
                Piece::Incomplete => {
                    let more = step.min(body.len() - fed);
                    input.extend_from_slice(&body[fed..fed + more]);
                    fed += more;
                }
            }
        }
    }

    #[test]
    fn a_chunked_body_is_decoded_however_it_is_split() {
        let body = b"5\r\nhello\r\n1;ext=\"x\"\r\n,\r\nB\n 0123456789\n0\r\nX-Sum: 1\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, body.len()] {
            let (data, left) = dechunk(body, step).unwrap();
            assert_eq!(
                String::from_utf8(data).unwrap(),
                "hello, 0123456789",
                "step {step}"
            );
            assert_eq!(left, 4, "step {step}: the bytes after the body stay");
        }
        assert_eq!(dechunk(b"0\r\n\r\n", 1).unwrap(), (Vec::new(), 0));
        // Sizes in upper or lower case, with leading zeros.
        let (data, _) = dechunk(b"0001\r\na\r\nC\r\n0123456789ab\r\n0\r\n\r\n", 4).unwrap();
        assert_eq!(data.len(), 13);
    }

    #[test]
    fn a_broken_chunked_body_is_refused() {
        for (body, why) in [
            (&b"x\r\n"[..], "not a chunk size"),
            (b"\r\n", "not a chunk size"),
            (b"5 6\r\nhello\r\n", "not a chunk size"),
            (b"11111111111111111\r\n", "not a chunk size"),
            (b"2\r\nhello\r\n0\r\n\r\n", "longer than its size"),
        ] {
            let error = dechunk(body, 3).unwrap_err();
            assert!(error.contains(why), "{body:?}: {error}");
        }
        let endless = vec![b'1'; MAX_CHUNK_LINE + 2];
        assert!(dechunk(&endless, 512).unwrap_err().contains("longer than"));
        assert_eq!(dechunk(b"5\r\nhel", 2).unwrap_err(), "truncated");
    }

    #[test]
    fn framing_headers_are_reported() {
        let head = complete(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, close\r\n\r\n",
        );
        assert!(head.chunked && head.close);
        assert_eq!(head.content_length, None);
        let head = complete(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n");
        assert!(head.chunked && !head.close);
        let head = complete(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n");
        assert!(!head.chunked && !head.close);
        for wrong in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(matches!(parse_answer_head(wrong), Head::Invalid(_)));
        }
    }
}
