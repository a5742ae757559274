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

use crate::http::body::BufferedBody;
use crate::http::response::Body;
use crate::http::router::ScriptTarget;
use crate::state::State;
use crate::upstream::response_buffer::ResponseBuffer;
use crate::upstream::script_error::ScriptError;
use crate::upstream::sendfile;
use crate::upstream::worker_call::{self, ScriptCall};
use crate::upstream::worker_connection::RequestWriter;
use crate::upstream::{http_request, worker_response};

/// The connection a request arrived on.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub https: bool,
    /// Open/idle accounting for metrics.
    pub tracker: crate::metrics::connections::ConnectionTracker,
    /// The TLS SNI name the client sent, if any.
    /// Boxed, not a `String`: the record is kept for an idle connection's whole life.
    pub sni: Option<Box<str>>,
    /// `Alt-Svc` for the responses on this connection: the HTTPS listener also serves HTTP/3.
    /// Shared by the listener's connections (a pointer, not a 40-byte value in each).
    pub alt_svc: Option<std::sync::Arc<http::HeaderValue>>,
}

/// Everything about one script request that does not change between attempts.
#[derive(Debug)]
pub(crate) struct ScriptRequest<'a> {
    pub parts: &'a Parts,
    /// REQUEST_URI: the client's request target, which a site's rewrite does not change.
    pub request_uri: &'a str,
    /// Variables the site's `.htaccess` files set (`SetEnv`, a rewrite's `E=`), and their
    /// `php_value`s as one `PHP_VALUE` (php-fpm applies it; php-cgi ignores it).
    pub env: &'a [(String, String)],
    /// The user an `.htaccess` Basic login admitted: `REMOTE_USER`, with `AUTH_TYPE` Basic.
    pub user: Option<&'a str>,
    pub php_value: Option<&'a str>,
    pub conn: &'a ConnInfo,
    pub site: &'a SiteSpec,
    pub target: ScriptTarget,
    pub body: BufferedBody,
    pub request_id: &'a str,
    /// REDIRECT_STATUS: 200, or the status of the error this script runs as the page of.
    pub redirect_status: u16,
}

/// What the caller should do with the worker's answer.
#[derive(Debug)]
pub(crate) enum ScriptOutcome {
    Response(Response<Body>),
    /// RFC 3875 local redirect: serve this path (and query) as a new GET instead.
    LocalRedirect(String),
}

pub(crate) async fn run(
    state: &State,
    request: &ScriptRequest<'_>,
    pool_name: &str,
) -> ScriptOutcome {
    let call = ScriptCall {
        pool: pool_name,
        request_id: request.request_id,
        method: &request.parts.method,
        path: request.parts.uri.path(),
        body: &request.body,
        request,
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
            error.log(pool_name, call.request_id, None, false);
            ScriptOutcome::Response(error.response())
        }
    }
}

/// Whether an `.htaccess` variable may reach the script: never one that paddock sets itself
/// from the request (a meta-variable, or the `HTTP_*` of a header the request carries), so that a
/// file in the tree cannot change what the script is told about the request. WordPress's
/// `E=HTTP_AUTHORIZATION:…` passes when the header did not (it is the header's value anyway).
fn may_set(name: &str, headers: &http::HeaderMap) -> bool {
    const OWN: &[&str] = &[
        "GATEWAY_INTERFACE",
        "SERVER_",
        "REQUEST_",
        "SCRIPT_",
        "PATH_INFO",
        "PATH_TRANSLATED",
        "QUERY_STRING",
        "DOCUMENT_",
        "REMOTE_",
        "CONTENT_",
        "HTTPS",
        "REDIRECT_STATUS",
        "PHP_VALUE",
        "PHP_ADMIN_VALUE",
        "PADDOCK_",
    ];
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return false;
    }
    if OWN.iter().any(|own| name.starts_with(own)) {
        return false;
    }
    match name.strip_prefix("HTTP_") {
        Some(header) => !headers
            .keys()
            .any(|h| h.as_str().replace('-', "_").eq_ignore_ascii_case(header)),
        None => true,
    }
}

/// Appends the request's CGI meta-variables (FastCGI PARAMS content) to `out`.
pub(crate) fn encode_params(request: &ScriptRequest<'_>, out: &mut Vec<u8>) {
    with_cgi_request(request, |cgi_request| cgi::encode_params(cgi_request, out));
}

impl RequestWriter for ScriptRequest<'_> {
    fn cgi_params(&self, out: &mut Vec<u8>) {
        encode_params(self, out);
    }

    /// Straight from the request rather than through its CGI variables (the same bytes).
    fn http_head(&self, kept: bool, out: &mut Vec<u8>, _: &mut Vec<u8>) -> Result<bool, String> {
        with_cgi_request(self, |cgi_request| {
            http_request::write_head_for(cgi_request, kept, out)
        })
    }
}

/// Runs `f` on what the worker is told about `request` (the CGI variables' sources).
fn with_cgi_request<R>(request: &ScriptRequest<'_>, f: impl FnOnce(&CgiRequest<'_>) -> R) -> R {
    let parts = request.parts;
    let uri = &parts.uri;
    let request_uri = request.request_uri;
    // HTTP/2 carries the host in :authority; CGI applications expect HTTP_HOST. Only that case
    // needs a copy of the headers.
    let authority = uri
        .authority()
        .filter(|_| !parts.headers.contains_key(http::header::HOST))
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    let mut headers = match authority {
        None => std::borrow::Cow::Borrowed(&parts.headers),
        Some(value) => {
            let mut headers = parts.headers.clone();
            headers.insert(http::header::HOST, value);
            std::borrow::Cow::Owned(headers)
        }
    };
    // What the application may hand back is the front end's to say, never the client's.
    if sendfile::ADVERTISED
        .iter()
        .any(|h| headers.contains_key(*h))
    {
        let headers = headers.to_mut();
        sendfile::ADVERTISED.iter().for_each(|h| {
            headers.remove(*h);
        });
    }
    let advertised = sendfile::advertised(request.site);
    let server_name = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(cgi::server_name_from_host)
        .unwrap_or(&request.site.name);
    let version = match parts.version {
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let root = request.site.root.to_string_lossy();
    let filename = request
        .target
        .filename
        .as_ref()
        .map(|file| file.to_string_lossy());
    let id = [("PADDOCK_REQUEST_ID", request.request_id)];
    let with_env: Vec<(&str, &str)>;
    let extra: &[(&str, &str)] = if request.env.is_empty()
        && request.php_value.is_none()
        && request.user.is_none()
        && advertised.is_empty()
    {
        &id
    } else {
        with_env = id
            .into_iter()
            .chain(advertised.iter().map(|(n, v)| (*n, v.as_str())))
            .chain(
                request
                    .env
                    .iter()
                    .filter(|(name, _)| may_set(name, &parts.headers))
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            )
            .chain(request.php_value.map(|v| ("PHP_VALUE", v)))
            .chain(
                request
                    .user
                    .into_iter()
                    .flat_map(|u| [("REMOTE_USER", u), ("AUTH_TYPE", "Basic")]),
            )
            .collect();
        &with_env
    };
    let cgi_request = CgiRequest {
        method: parts.method.as_str(),
        request_uri,
        query_string: uri.query().unwrap_or(""),
        document_root: &root,
        script_name: &request.target.name,
        script_filename: filename.as_deref(),
        path_info: &request.target.path_info,
        server_name,
        server_addr: request.conn.local,
        remote_addr: request.conn.peer,
        https: request.conn.https,
        server_protocol: version,
        redirect_status: request.redirect_status,
        content_length: request.body.len(),
        headers: &headers,
        extra,
    };
    f(&cgi_request)
}
