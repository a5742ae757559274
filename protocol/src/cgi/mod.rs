//! CGI/1.1 (RFC 3875) as FastCGI uses it.
//!
//! - [`encode_params`] turns a request the front end has accepted into the meta-variables a
//!   worker receives in its PARAMS stream, applying the header-smuggling defences (httpoxy,
//!   underscore and punctuation collisions, control bytes) at the one place every request passes.
//! - [`decode_url_path`] and [`UrlPath::split_at_script`] turn the request path into segments and
//!   split them into SCRIPT_NAME and PATH_INFO once the front end has found the script.
//! - [`parse_response_head`] reads the CGI header block at the start of a worker's STDOUT and
//!   classifies it as a document, a local redirect or a client redirect.

mod params;
mod path;
mod response;
mod server_name;
mod text;

pub use params::{encode_params, http_variable_allowed, CgiRequest};
pub use path::{decode_url_path, PathError, UrlPath};
pub use response::{
    parse_response_head, response_head_end, CgiResponseHead, ResponseError, ResponseKind,
};
pub use server_name::server_name_from_host;
pub use text::{contains_forbidden, push_escaped, StackText};

#[cfg(test)]
mod params_tests;
#[cfg(test)]
mod response_tests;
