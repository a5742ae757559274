//! The uwsgi protocol, the wire uWSGI speaks natively (nginx's `uwsgi_pass`), for the request
//! side; the answer is an HTTP response, whose head [`crate::http_answer::parse_answer_head`]
//! turns into the CGI output (a `Status:` header first) the rest of paddock expects.
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
}
