//! CGI/1.1 (RFC 3875) as FastCGI uses it.
//!
//! - [`encode_params`] turns a request the front end has accepted into the meta-variables a
//!   worker receives in its PARAMS stream, applying the header-smuggling defences (httpoxy,
//!   underscore and punctuation collisions, control bytes) at the one place every request passes.
//! - [`parse_response_head`] reads the CGI header block at the start of a worker's STDOUT and
//!   classifies it as a document, a local redirect or a client redirect.

mod params;
mod response;
mod server_name;
mod text;

pub use params::{encode_params, CgiRequest};
pub use response::{parse_response_head, CgiResponseHead, ResponseError, ResponseKind};
pub use server_name::server_name_from_host;

#[cfg(test)]
mod params_tests;
#[cfg(test)]
mod response_tests;
