//! The WSGI environ of a request (PEP 3333), made from the CGI variables paddock's front end sends.
//!
//! The variables go in as they come: they already are CGI/1.1's (`REQUEST_METHOD`, `SCRIPT_NAME`
//! the mount's prefix, `PATH_INFO` the rest, `QUERY_STRING`, `CONTENT_TYPE`, `CONTENT_LENGTH`,
//! `REMOTE_ADDR`, `HTTP_*`, `HTTPS`), so the application sees the client's address and scheme
//! as under any CGI gateway. Values are native strings decoded as Latin-1, as PEP 3333 asks.

use protocol::fcgi;
use protocol::responder::request_reader::Incoming;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

/// What every environ shares, made once a process.
#[derive(Debug)]
pub(crate) struct Shared {
    version: Py<PyTuple>,
    bytes_io: Py<PyAny>,
    errors: Py<PyAny>,
}

impl Shared {
    pub(crate) fn new(py: Python<'_>) -> PyResult<Self> {
        Ok(Self {
            version: PyTuple::new(py, [1, 0])?.unbind(),
            bytes_io: py.import("io")?.getattr("BytesIO")?.unbind(),
            errors: py.import("sys")?.getattr("stderr")?.unbind(),
        })
    }
}

pub(crate) fn build<'py>(
    py: Python<'py>,
    shared: &Shared,
    incoming: &Incoming,
) -> PyResult<Bound<'py, PyDict>> {
    let environ = PyDict::new(py);
    let mut https = false;
    for pair in fcgi::name_values(&incoming.params) {
        let (name, value) = pair.map_err(|e| PyValueError::new_err(e.to_string()))?;
        if name == b"HTTPS" {
            https = value.eq_ignore_ascii_case(b"on");
        }
        environ.set_item(native(py, name)?, native(py, value)?)?;
    }
    let scheme = if https {
        intern!(py, "https")
    } else {
        intern!(py, "http")
    };
    let input = shared
        .bytes_io
        .bind(py)
        .call1((PyBytes::new(py, &incoming.stdin),))?;
    environ.set_item(intern!(py, "wsgi.version"), shared.version.bind(py))?;
    environ.set_item(intern!(py, "wsgi.url_scheme"), scheme)?;
    environ.set_item(intern!(py, "wsgi.input"), input)?;
    environ.set_item(intern!(py, "wsgi.errors"), shared.errors.bind(py))?;
    environ.set_item(intern!(py, "wsgi.multithread"), true)?;
    environ.set_item(intern!(py, "wsgi.multiprocess"), true)?;
    environ.set_item(intern!(py, "wsgi.run_once"), false)?;
    // The whole body is there, and reading past it returns b"" (werkzeug then reads without a
    // length limit of its own).
    environ.set_item(intern!(py, "wsgi.input_terminated"), true)?;
    Ok(environ)
}

/// A native string of `bytes` read as Latin-1 (ASCII, nearly always, taken as it is).
fn native<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.is_ascii() => Ok(PyString::new(py, text)),
        _ => {
            let text: String = bytes.iter().map(|&b| char::from(b)).collect();
            Ok(PyString::new(py, &text))
        }
    }
}
