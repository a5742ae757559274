//! A decoded FastCGI request in the form the C side reads: every parameter as a NUL-terminated
//! name and value, plus the few that PHP's request globals take directly.
//!
//! The strings live in buffers owned here; [`PhpRequest::c_view`] lends pointers into them for
//! the duration of one `pdk_run_request` call. Moving a `PhpRequest` moves only the outer
//! vectors, never the bytes the pointers point at.

use std::ffi::c_char;

use protocol::fcgi::name_values;

use crate::ffi::{Param, RequestView};

#[derive(Debug)]
pub(crate) struct PhpRequest {
    /// name\0 and value\0 of each parameter, alternating.
    strings: Vec<Vec<u8>>,
    params: Vec<Param>,
    content_length: i64,
    proto_num: i32,
    headers_only: bool,
}

/// The parameters the C side needs by name, as indexes into `strings` (the value's).
#[derive(Debug, Default)]
struct Known {
    method: Option<usize>,
    query: Option<usize>,
    script_name: Option<usize>,
    script_filename: Option<usize>,
    content_type: Option<usize>,
    authorization: Option<usize>,
}

impl PhpRequest {
    /// Decodes a complete PARAMS stream; `None` when it is malformed. A name sent twice keeps
    /// its last value, as in php-cgi.
    pub(crate) fn from_params(params: &[u8]) -> Option<PhpRequest> {
        // php-cgi's FastCGI layer sets FCGI_ROLE before the web server's parameters.
        let mut pairs: Vec<(&[u8], &[u8])> = vec![(b"FCGI_ROLE", b"RESPONDER")];
        for pair in name_values(params) {
            let (name, value) = pair.ok()?;
            match pairs.iter_mut().find(|(n, _)| *n == name) {
                Some(existing) => existing.1 = value,
                None => pairs.push((name, value)),
            }
        }
        let mut strings = Vec::with_capacity(pairs.len() * 2);
        let mut content_length = 0;
        let mut proto_num = 1000;
        let mut headers_only = false;
        for (name, value) in pairs {
            match name {
                b"CONTENT_LENGTH" => content_length = parse_number(value),
                b"SERVER_PROTOCOL" => proto_num = protocol_number(value),
                b"REQUEST_METHOD" => headers_only = value == b"HEAD",
                _ => {}
            }
            strings.push(nul_terminated(name));
            strings.push(nul_terminated(value));
        }
        let mut request = PhpRequest {
            params: Vec::with_capacity(strings.len() / 2),
            strings,
            content_length,
            proto_num,
            headers_only,
        };
        for pair in request.strings.chunks_mut(2) {
            let [name, value] = pair else { continue };
            request.params.push(Param {
                name_len: name.len() - 1,
                name: name.as_mut_ptr().cast::<c_char>(),
                value_len: value.len() - 1,
                value: value.as_mut_ptr().cast::<c_char>(),
            });
        }
        Some(request)
    }

    fn known(&self) -> Known {
        let mut known = Known::default();
        for (i, pair) in self.strings.chunks(2).enumerate() {
            let value = Some(i * 2 + 1);
            match pair[0].strip_suffix(b"\0").unwrap_or_default() {
                b"REQUEST_METHOD" => known.method = value,
                b"QUERY_STRING" => known.query = value,
                b"SCRIPT_NAME" => known.script_name = value,
                b"SCRIPT_FILENAME" => known.script_filename = value,
                b"CONTENT_TYPE" => known.content_type = value,
                b"HTTP_AUTHORIZATION" => known.authorization = value,
                _ => {}
            }
        }
        known
    }

    /// Pointers into this request for one call into C; valid while `self` is neither dropped
    /// nor modified.
    pub(crate) fn c_view(&mut self) -> RequestView {
        let known = self.known();
        let mut pointer = |index: Option<usize>| -> *mut c_char {
            index.map_or(std::ptr::null_mut(), |i| {
                self.strings[i].as_mut_ptr().cast::<c_char>()
            })
        };
        RequestView {
            method: pointer(known.method),
            query_string: pointer(known.query),
            script_name: pointer(known.script_name),
            script_filename: pointer(known.script_filename),
            content_type: pointer(known.content_type),
            authorization: pointer(known.authorization),
            params: self.params.as_ptr(),
            param_count: self.params.len(),
            content_length: self.content_length as libc::c_long,
            proto_num: self.proto_num,
            headers_only: i32::from(self.headers_only),
        }
    }
}

fn nul_terminated(bytes: &[u8]) -> Vec<u8> {
    let mut owned = Vec::with_capacity(bytes.len() + 1);
    owned.extend_from_slice(bytes);
    owned.push(0);
    owned
}

fn parse_number(value: &[u8]) -> i64 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// "HTTP/1.1" → 1100, as PHP's `proto_num` counts.
fn protocol_number(value: &[u8]) -> i32 {
    match value {
        b"HTTP/1.0" => 1000,
        b"HTTP/2.0" | b"HTTP/2" => 2000,
        b"HTTP/3.0" | b"HTTP/3" => 3000,
        _ => 1100,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::fcgi::encode_name_value;

    fn params(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in pairs {
            encode_name_value(&mut out, name.as_bytes(), value.as_bytes());
        }
        out
    }

    #[test]
    fn keeps_every_parameter_nul_terminated_and_the_last_of_a_repeated_name() {
        let mut request = PhpRequest::from_params(&params(&[
            ("REQUEST_METHOD", "HEAD"),
            ("SCRIPT_NAME", "/a.php"),
            ("CONTENT_LENGTH", "12"),
            ("SERVER_PROTOCOL", "HTTP/1.0"),
            ("SCRIPT_NAME", "/b.php"),
        ]))
        .unwrap();
        assert_eq!(request.params.len(), 5);
        assert_eq!(request.strings[0], b"FCGI_ROLE\0");
        assert_eq!(request.strings[5], b"/b.php\0");
        let view = request.c_view();
        assert_eq!(view.content_length, 12);
        assert_eq!(view.proto_num, 1000);
        assert_eq!(view.headers_only, 1);
        assert!(view.query_string.is_null());
        assert!(!view.script_name.is_null());
    }

    #[test]
    fn refuses_a_truncated_stream() {
        let mut bytes = params(&[("A", "bcd")]);
        bytes.pop();
        assert!(PhpRequest::from_params(&bytes).is_none());
    }
}
