//! The `start_response` callable an application gets with each request (PEP 3333), and the
//! `write` callable it returns.
//!
//! It records the status and headers as a CGI head (`Status: 200 OK`, the headers, a blank line:
//! what paddock's front end reads from every FastCGI worker); nothing is sent until the
//! application yields its first body bytes or returns, so that a later call with `exc_info` can
//! still replace them.

use std::borrow::Cow;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

/// The head an application gave, ready to send.
#[derive(Debug)]
pub(crate) struct Head {
    /// `Status: …\r\n`, one line a header, and the blank line.
    pub(crate) bytes: Vec<u8>,
    /// The `Content-Length` it announced: the answer ends once that much body has been sent.
    pub(crate) content_length: Option<u64>,
}

impl Head {
    /// A head of paddock's own, for an application that failed before it started its answer.
    pub(crate) fn plain(status: &str, body_len: usize) -> Self {
        let bytes = format!(
            "Status: {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {body_len}\r\n\r\n"
        );
        Self {
            bytes: bytes.into_bytes(),
            content_length: Some(body_len as u64),
        }
    }
}

#[pyclass(module = "paddock_wsgi")]
#[derive(Debug, Default)]
pub(crate) struct StartResponse {
    head: Option<Head>,
    /// The head was taken to be sent: `start_response` may then only re-raise its `exc_info`.
    head_taken: bool,
    /// Bytes given to `write`, not yet taken to be sent.
    written: Vec<u8>,
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyString>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let exc_info = exc_info.filter(|info| !info.is_none());
        {
            let this = slf.borrow();
            match exc_info {
                // PEP 3333: once the head is out, an error can only end the answer.
                Some(info) if this.head_taken => {
                    let error = info.cast::<PyTuple>()?.get_item(1)?;
                    return Err(PyErr::from_value(error));
                }
                None if this.head.is_some() || this.head_taken => {
                    return Err(PyRuntimeError::new_err(
                        "start_response called a second time without exc_info",
                    ));
                }
                _ => {}
            }
        }
        let head = head_of(status, headers)?;
        slf.borrow_mut().head = Some(head);
        slf.getattr(intern!(py, "write"))
    }

    /// The imperative `write(data)` of PEP 3333, for applications older than iterables.
    fn write(&mut self, data: &[u8]) -> PyResult<()> {
        if self.head.is_none() && !self.head_taken {
            return Err(PyRuntimeError::new_err("write() before start_response"));
        }
        self.written.extend_from_slice(data);
        Ok(())
    }
}

impl StartResponse {
    /// The head, the first time it is asked for; `None` after that. An error when the
    /// application never called `start_response`.
    pub(crate) fn take_head(&mut self) -> PyResult<Option<Head>> {
        if self.head_taken {
            return Ok(None);
        }
        let head = self.head.take().ok_or_else(|| {
            PyRuntimeError::new_err("the application returned without calling start_response")
        })?;
        self.head_taken = true;
        Ok(Some(head))
    }

    /// What `write` received since the last call.
    pub(crate) fn take_written(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.written)
    }
}

fn head_of(status: &Bound<'_, PyString>, headers: &Bound<'_, PyAny>) -> PyResult<Head> {
    let status = latin1(status)?;
    let valid_status = status.len() >= 4
        && status[..3].iter().all(u8::is_ascii_digit)
        && status[3] == b' '
        && clean_value(&status[4..]);
    if !valid_status {
        return Err(PyValueError::new_err(format!(
            "status {:?}: expected three digits, a space and a reason phrase",
            String::from_utf8_lossy(&status)
        )));
    }
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(b"Status: ");
    bytes.extend_from_slice(&status);
    bytes.extend_from_slice(b"\r\n");
    let mut content_length = None;
    for header in headers.try_iter()? {
        let (name, value): (Bound<'_, PyString>, Bound<'_, PyString>) = header?.extract()?;
        let (name, value) = (latin1(&name)?, latin1(&value)?);
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) || !clean_value(&value) {
            return Err(PyValueError::new_err(format!(
                "header {:?}: {:?}: a name of token characters and a value without control \
                 characters expected",
                String::from_utf8_lossy(&name),
                String::from_utf8_lossy(&value)
            )));
        }
        if name.eq_ignore_ascii_case(b"status") {
            return Err(PyValueError::new_err(
                "a header named Status: give the status as start_response's first argument",
            ));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            content_length = std::str::from_utf8(&value)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok());
        }
        bytes.extend_from_slice(&name);
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(&value);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    Ok(Head {
        bytes,
        content_length,
    })
}

/// A native string's bytes (PEP 3333: headers are strings of Latin-1 characters), borrowed
/// from the string when it is ASCII, as nearly every header is.
fn latin1<'a>(text: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, [u8]>> {
    let utf8 = text.to_str()?;
    if utf8.is_ascii() {
        return Ok(Cow::Borrowed(utf8.as_bytes()));
    }
    utf8.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .map(Cow::Owned)
        .ok_or_else(|| PyValueError::new_err(format!("{utf8:?} has characters outside Latin-1")))
}

/// No CR, LF or other control character but the tab: nothing that could end the header early.
fn clean_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// RFC 9110's token characters.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::{clean_value, is_token};

    #[test]
    fn a_header_value_with_a_line_break_is_refused() {
        assert!(clean_value(b"text/html; charset=utf-8"));
        assert!(clean_value(b"a\tb"));
        assert!(!clean_value(b"a\r\nSet-Cookie: x=1"));
        assert!(!clean_value(b"a\nb"));
        assert!(!clean_value(b"a\0b"));
    }

    #[test]
    fn header_names_are_tokens() {
        assert!(b"X-Request-Id".iter().all(|&b| is_token(b)));
        assert!(!b"X Request".iter().all(|&b| is_token(b)));
        assert!(!b"X:Request".iter().all(|&b| is_token(b)));
    }
}
