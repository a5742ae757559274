//! Client connections, from accept to close: everything below the HTTP request.
//!
//! The accept loops take a connection (after the PROXY protocol header and the connection limits
//! allow it), complete the TLS handshake, and hand it to hyper; idle HTTP/1.1 connections are
//! parked outside hyper, and per-connection deadlines bound slow clients. The request path itself
//! is in `http`.

pub(crate) mod deadlines;
pub(crate) mod inherited;
pub(crate) mod limits;
pub(crate) mod parking;
pub(crate) mod proxy_protocol;
pub(crate) mod server;
pub mod tls;
