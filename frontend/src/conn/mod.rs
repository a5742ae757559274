//! Client connections, from accept to close: everything below the HTTP request.
//!
//! The accept loops (`accept`) take a connection within the connection limits (`limits`), read its
//! PROXY protocol header (`proxy_protocol`), complete the TLS handshake (`handshake`, with the
//! certificates of `tls`), and hand it to hyper (`hyper_session`); idle public HTTP/1.1
//! connections are parked outside hyper (`http1_session`, `parking`), their deadlines and the stop
//! kept per listener (`idle_deadlines`); per-connection deadlines
//! (`deadlines`) bound slow clients and a stop closes connections gracefully (`drive`).
//! `inherited` takes the descriptors the master passed. The request path itself is in `http`.

pub(crate) mod accept;
mod client_socket;
pub(crate) mod deadlines;
mod drive;
mod handshake;
mod http1_direct;
mod http1_session;
mod hyper_session;
mod idle_deadlines;
pub(crate) mod inherited;
pub(crate) mod limits;
pub(crate) mod parking;
pub(crate) mod proxy_protocol;
pub mod tls;
