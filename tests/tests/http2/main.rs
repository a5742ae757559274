//! HTTP/2: real clients (curl, nghttp, h2load) and the h2 crate as a client for connection
//! lifetime and flow control.

mod clients;
mod connection;
mod flow_control;
mod http3;

/// The listeners of the h2c tests: one cleartext listener speaking HTTP/2 with prior knowledge
/// (`h2c`, its address from `Paddock::address("h2c")`) and the admin listener.
const H2C_LISTENERS: &str = r#"
[listeners.h2c]
kind = "http"
address = "127.0.0.1:0"
http2_prior_knowledge = true

[listeners.admin]
kind = "admin"
address = "127.0.0.1:0"
"#;
