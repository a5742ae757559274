//! A buffered script request: the worker's reply is read into a response buffer as fast as the
//! worker writes it (the slot is free again at FCGI_END_REQUEST), then turned into the client's
//! response. Also the request types both script paths share, and the CGI meta-variables.
//!
//! Admission, connection, retries and timeouts are `worker_call`'s, shared with `streaming`.

use std::net::SocketAddr;

use http::request::Parts;
use http::{HeaderValue, Response};
use protocol::cgi::{self, CgiRequest};
use protocol::control::SiteSpec;

use crate::body::BufferedBody;
use crate::response::Body;
use crate::response_buffer::ResponseBuffer;
use crate::router::ScriptTarget;
use crate::script_error::ScriptError;
use crate::state::State;
use crate::worker_call::{self, ScriptCall};
use crate::worker_response;

/// The connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub https: bool,
    /// Open/idle accounting for metrics.
    pub tracker: crate::metrics::connections::ConnectionTracker,
    /// The TLS SNI name the client sent, if any.
    pub sni: Option<String>,
}

/// Everything about one script request that does not change between attempts.
#[derive(Debug)]
pub struct ScriptRequest<'a> {
    pub parts: &'a Parts,
    /// REQUEST_URI: the client's request target, which a site's rewrite does not change.
    pub request_uri: &'a str,
    pub conn: &'a ConnInfo,
    pub site: &'a SiteSpec,
    pub target: ScriptTarget,
    pub body: BufferedBody,
    pub request_id: &'a str,
}

/// What the caller should do with the worker's answer.
#[derive(Debug)]
pub enum ScriptOutcome {
    Response(Response<Body>),
    /// RFC 3875 local redirect: serve this path (and query) as a new GET instead.
    LocalRedirect(String),
}

pub async fn run(state: &State, request: &ScriptRequest<'_>, pool_name: &str) -> ScriptOutcome {
    let params = |out: &mut Vec<u8>| encode_params(request, out);
    let call = ScriptCall {
        pool: pool_name,
        request_id: request.request_id,
        method: &request.parts.method,
        path: request.parts.uri.path(),
        body: &request.body,
        params: &params,
    };
    let spec = state.spec();
    let mut buffer = ResponseBuffer::new(&spec.limits);
    if let Err(e) = worker_call::call(state, &call, &mut buffer).await {
        return ScriptOutcome::Response(e.response());
    }
    match buffer.finish().await {
        Ok(reply) => worker_response::from_buffer(reply, &request.parts.method),
        Err(e) => {
            let error = ScriptError::ReadBack(e);
            error.log(pool_name, None, false);
            ScriptOutcome::Response(error.response())
        }
    }
}

/// Appends the request's CGI meta-variables (FastCGI PARAMS content) to `out`.
pub(crate) fn encode_params(request: &ScriptRequest<'_>, out: &mut Vec<u8>) {
    let parts = request.parts;
    let uri = &parts.uri;
    let request_uri = request.request_uri;
    // HTTP/2 carries the host in :authority; CGI applications expect HTTP_HOST. Only that case
    // needs a copy of the headers.
    let authority = uri
        .authority()
        .filter(|_| !parts.headers.contains_key(http::header::HOST))
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    let headers = match authority {
        None => std::borrow::Cow::Borrowed(&parts.headers),
        Some(value) => {
            let mut headers = parts.headers.clone();
            headers.insert(http::header::HOST, value);
            std::borrow::Cow::Owned(headers)
        }
    };
    let server_name = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(cgi::server_name_from_host)
        .unwrap_or(&request.site.name);
    let version = match parts.version {
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let root = request.site.root.to_string_lossy();
    let filename = request.target.filename.to_string_lossy();
    let extra = [("PADDOCK_REQUEST_ID", request.request_id)];
    let cgi_request = CgiRequest {
        method: parts.method.as_str(),
        request_uri,
        query_string: uri.query().unwrap_or(""),
        document_root: &root,
        script_name: &request.target.name,
        script_filename: &filename,
        path_info: &request.target.path_info,
        server_name,
        server_addr: request.conn.local,
        remote_addr: request.conn.peer,
        https: request.conn.https,
        server_protocol: version,
        content_length: request.body.len(),
        headers: &headers,
        extra: &extra,
    };
    cgi::encode_params(&cgi_request, out);
}
