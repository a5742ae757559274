//! Client connections: automatic certificates (ACME, against pebble), limits and timeouts, request framing, keep-alive and idle parking, TLS
//! with SNI, and the client address (PROXY protocol, forwarded headers).

mod acme;
mod client_address;
mod framing;
mod idle_parking;
mod keep_alive;
mod limits;
mod runtime_layout;
mod tls_sni;
