//! Parsing the CGI response head a worker writes at the start of its STDOUT (RFC 3875 §6).

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

/// The parsed header block of a CGI response.
#[derive(Debug)]
pub struct CgiResponseHead {
    pub status: StatusCode,
    /// Reason phrase from `Status: 403 Login failed` when not the canonical one.
    pub reason: Option<String>,
    /// Everything except Status, hop-by-hop headers dropped. Location stays here for every kind.
    pub headers: HeaderMap,
    pub kind: ResponseKind,
}

/// How the front end must treat the response (RFC 3875 §6.2).
#[derive(Debug, PartialEq, Eq)]
pub enum ResponseKind {
    /// A normal response: send status, headers and body to the client.
    Document,
    /// The script asked the server to serve this local path instead (RFC 3875 §6.2.2); the
    /// status is a 200 placeholder and the body, if any, must be discarded.
    LocalRedirect(String),
    /// A redirect the client follows itself; `Location` is in the headers.
    ClientRedirect,
}

/// A response head the front end cannot forward. The worker is misbehaving; the client should
/// get a 502.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// No blank line within the first `limit` bytes.
    #[error("CGI response head exceeds {limit} bytes")]
    HeadTooLarge { limit: usize },
    /// `Status` is not three digits in 100..=599, optionally followed by a space and a reason.
    #[error("malformed CGI Status header")]
    BadStatus,
    /// More than one `Status` header.
    #[error("duplicate CGI Status header")]
    DuplicateStatus,
    /// Line `line` (1-based) has no ':'.
    #[error("CGI response head line {line} has no colon")]
    MissingColon { line: usize },
    /// Line `line` starts with whitespace: an obsolete folded continuation, which RFC 9112
    /// forbids because intermediaries disagree about it.
    #[error("CGI response head line {line} is an obsolete folded continuation")]
    ObsFold { line: usize },
    /// Line `line` has an empty name or one with characters not allowed in a field name.
    #[error("CGI response head line {line} has an invalid header name")]
    InvalidHeaderName { line: usize },
    /// Line `line` has a value with a control character such as CR or NUL.
    #[error("CGI response head line {line} has an invalid header value")]
    InvalidHeaderValue { line: usize },
    /// More header fields than an [`HeaderMap`] can hold.
    #[error("CGI response head has too many header fields")]
    TooManyHeaders,
}

/// Headers that describe the worker-to-front-end hop; the front end frames its own response.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Parses the CGI header block at the front of `buf`. `Ok(None)` = need more bytes (and
/// `buf.len() < max_head`).
///
/// Returns the head and the number of bytes it occupied (including the blank line). Lines may end
/// in CRLF or a bare LF. Complete lines are checked as they are found, so a worker writing
/// garbage is rejected without waiting for `max_head` bytes.
pub fn parse_response_head(
    buf: &[u8],
    max_head: usize,
) -> Result<Option<(CgiResponseHead, usize)>, ResponseError> {
    let window = &buf[..buf.len().min(max_head)];
    let mut lines = Lines::new(window);
    let mut line_number = 0;
    let head_len = loop {
        match lines.next() {
            Some(Line::Field(line)) => {
                line_number += 1;
                split_field(line, line_number)?;
            }
            Some(Line::End) => break lines.pos,
            None if buf.len() >= max_head => {
                return Err(ResponseError::HeadTooLarge { limit: max_head })
            }
            None => return Ok(None),
        }
    };
    build_head(&window[..head_len]).map(|head| Some((head, head_len)))
}

/// Where the CGI header block at the front of `buf` ends (the offset just past its blank line),
/// looking at no more than `max_head` bytes: `None` while the blank line has not arrived. It
/// stops at the first blank line, so a large body after the head costs nothing; lines end as
/// [`parse_response_head`] reads them.
pub fn response_head_end(buf: &[u8], max_head: usize) -> Option<usize> {
    let mut lines = Lines::new(&buf[..buf.len().min(max_head)]);
    loop {
        if let Line::End = lines.next()? {
            return Some(lines.pos);
        }
    }
}

/// One line of a head: a field, or the blank line that ends the head.
enum Line<'a> {
    Field(&'a [u8]),
    End,
}

/// Yields complete lines of `buf`, without their terminators; stops at an incomplete line.
struct Lines<'a> {
    buf: &'a [u8],
    /// Offset just past the last line returned.
    pos: usize,
}

impl<'a> Lines<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn next(&mut self) -> Option<Line<'a>> {
        let rest = &self.buf[self.pos..];
        let newline = memchr::memchr(b'\n', rest)?;
        self.pos += newline + 1;
        let line = &rest[..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Some(if line.is_empty() {
            Line::End
        } else {
            Line::Field(line)
        })
    }
}

/// Splits `name: value`, trimming optional whitespace around the value.
fn split_field(line: &[u8], line_number: usize) -> Result<(&[u8], &[u8]), ResponseError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(ResponseError::ObsFold { line: line_number });
    }
    let colon =
        memchr::memchr(b':', line).ok_or(ResponseError::MissingColon { line: line_number })?;
    let name = &line[..colon];
    let value = line[colon + 1..].trim_ascii();
    Ok((name, value))
}

/// Builds the head from a complete, size-checked header block.
fn build_head(block: &[u8]) -> Result<CgiResponseHead, ResponseError> {
    let mut lines = Lines::new(block);
    let mut line_number = 0;
    // Room for a script's usual headers and those the front end adds (`X-Request-Id`, HSTS, a
    // site's header rules): a map that grows reallocates and rehashes.
    let mut headers = HeaderMap::with_capacity(16);
    let mut status: Option<(StatusCode, Option<String>)> = None;
    while let Some(Line::Field(line)) = lines.next() {
        line_number += 1;
        let (name, value) = split_field(line, line_number)?;
        let name = HeaderName::from_bytes(name)
            .map_err(|_| ResponseError::InvalidHeaderName { line: line_number })?;
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| ResponseError::InvalidHeaderValue { line: line_number })?;
        if name.as_str() == "status" {
            if status.is_some() {
                return Err(ResponseError::DuplicateStatus);
            }
            status = Some(parse_status(value.as_bytes())?);
            continue;
        }
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        headers
            .try_append(name, value)
            .map_err(|_| ResponseError::TooManyHeaders)?;
    }
    let location = headers.get(header::LOCATION).map(HeaderValue::as_bytes);
    let (status, reason, kind) = match (status, location) {
        (Some((status, reason)), location) => {
            let kind = match location {
                Some(location) if status.is_redirection() && is_absolute_uri(location) => {
                    ResponseKind::ClientRedirect
                }
                _ => ResponseKind::Document,
            };
            (status, reason, kind)
        }
        (None, Some(location)) => {
            let local = (headers.len() == 1)
                .then(|| local_redirect_path(location))
                .flatten();
            match local {
                Some(path) => (StatusCode::OK, None, ResponseKind::LocalRedirect(path)),
                None => (StatusCode::FOUND, None, ResponseKind::ClientRedirect),
            }
        }
        (None, None) => (StatusCode::OK, None, ResponseKind::Document),
    };
    Ok(CgiResponseHead {
        status,
        reason,
        headers,
        kind,
    })
}

/// Parses `NNN` or `NNN reason`. The reason is kept only when it differs from the canonical one
/// and is valid UTF-8, so the front end need only forward it when it matters.
fn parse_status(value: &[u8]) -> Result<(StatusCode, Option<String>), ResponseError> {
    let (code, rest) = value.split_at_checked(3).ok_or(ResponseError::BadStatus)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return Err(ResponseError::BadStatus);
    }
    let reason = match rest {
        [] => b"".as_slice(),
        [b' ' | b'\t', reason @ ..] => reason.trim_ascii(),
        _ => return Err(ResponseError::BadStatus),
    };
    let status = StatusCode::from_bytes(code).map_err(|_| ResponseError::BadStatus)?;
    if !(100..=599).contains(&status.as_u16()) {
        return Err(ResponseError::BadStatus);
    }
    let reason = std::str::from_utf8(reason)
        .ok()
        .filter(|reason| !reason.is_empty())
        .filter(|reason| {
            status
                .canonical_reason()
                .is_none_or(|canonical| !canonical.eq_ignore_ascii_case(reason))
        })
        .map(str::to_owned);
    Ok((status, reason))
}

/// A local redirect target per RFC 3875 §6.2.2: an absolute path (and optional query). A value
/// starting with `//` is a network-path reference naming another host, so it is not local.
fn local_redirect_path(location: &[u8]) -> Option<String> {
    if location.starts_with(b"/") && !location.starts_with(b"//") {
        String::from_utf8(location.to_vec()).ok()
    } else {
        None
    }
}

/// Whether `location` starts with a URI scheme (RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" /
/// "-" / "." ) ":").
fn is_absolute_uri(location: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', location) else {
        return false;
    };
    let scheme = &location[..colon];
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}
