//! Sans-IO protocol code shared by every paddock process.
//!
//! Nothing in this crate touches a socket or a runtime: callers hand in bytes and get bytes or typed
//! values back, which keeps it testable, fuzzable and usable from both the async front end and the
//! single-threaded master.
//!
//! # Layout
//! - [`fcgi`] — the FastCGI 1.0 record codec: headers, every record type, name-value pairs.
//! - [`cgi`] — CGI/1.1 (RFC 3875) meta-variables built from an HTTP request, and CGI response-head
//!   parsing.
//! - [`control`] — the typed messages the master and the front end exchange over their socketpair,
//!   and their length-prefixed framing.
//! - `fuzzing` (cargo feature `fuzzing`, and in tests) — the properties the fuzz targets in
//!   `protocol/fuzz` check, replayed over the checked-in corpus by `cargo test`.
//! - [`site_rules`] — a site's native rules (deny, rewrites, auth, …) as data, for the front end.
//! - [`log_budget`] — a token bucket that rate-limits how much worker output reaches the log.
//! - [`uwsgi`] — the uwsgi protocol's request packet (uWSGI's native wire).
//! - [`http_answer`] — the head of a worker's HTTP answer as CGI output, and the chunked body
//!   coding (`protocol = "uwsgi"` and `protocol = "http"` pools).
//! - [`zygote`] — the fixed-size messages between the master and the warm PHP parent of a
//!   `builtin = "php"` pool.
//! - `responder` (cargo feature `responder`, off by default) — the one exception to "no I/O": a
//!   blocking, threaded FastCGI application server built on [`fcgi`], for paddock's own workers and
//!   the test applications.
#![forbid(unsafe_code)]

pub mod cgi;
pub mod control;
pub mod fcgi;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod http_answer;
pub mod log_budget;
#[cfg(feature = "responder")]
pub mod responder;
pub mod site_rules;
pub mod uwsgi;
pub mod zygote;
