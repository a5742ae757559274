//! The public request path: from a parsed request to the response that goes back.
//!
//! `service` is the entry point hyper calls; it picks the site (`vhost`), applies the site's
//! policy and rules, resolves the path (`router`), buffers the body, and hands the request to
//! static files or a worker pool (`upstream`). The pieces it uses on the way (client address,
//! compression, access log, response bodies) live beside it.

pub(crate) mod access_log;
pub(crate) mod body;
pub(crate) mod client_addr;
pub(crate) mod compression;
mod error_script;
pub(crate) mod request_body;
pub(crate) mod response;
pub(crate) mod route_settings;
pub mod router;
pub(crate) mod service;
pub(crate) mod site_policy;
pub(crate) mod stat_memo;
pub(crate) mod vhost;
