//! HTTP/2: real clients (curl, nghttp, h2load) and the h2 crate as a client for connection
//! lifetime and flow control.

mod clients;
mod connection;
mod flow_control;
