//! The HTTP service of the public listeners: route, buffer, dispatch, answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use http::header::{
    HeaderValue, ALT_SVC, CONNECTION, CONTENT_LENGTH, HOST, LOCATION, TRANSFER_ENCODING,
};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use protocol::control::{FrontendSpec, LimitsSpec, SiteSpec};
use tracing::{debug, info};

use crate::acme::challenges::HTTP01_PREFIX;
use crate::conn::deadlines::{self, Activity};
use crate::http::body::{self, BodyError, BufferedBody};
use crate::http::request_body::RequestBody;
use crate::http::response::{self, Body, ErrorPage, OwnError};
use crate::http::route_settings::RouteSettings;
use crate::http::router::{self, Route};
use crate::http::{access_log, client_addr, compression, error_script, site_policy};
use crate::site_rules::{self, CompiledSite};
use crate::state::State;
use crate::static_files::{self, file_on_disk::FileOnDisk};
use crate::upstream::buffered::{self, ConnInfo, ScriptOutcome, ScriptRequest};
use crate::upstream::{sendfile, streaming};

/// The answer to an ACME HTTP-01 validation request that one of paddock's orders expects.
fn acme_http01(state: &State, path: &str) -> Option<Response<Body>> {
    if !path.starts_with(HTTP01_PREFIX) {
        return None;
    }
    let answer = state.acme_challenges.http01_answer(path)?;
    let mut response = Response::new(response::full(answer));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Some(response)
}

/// Local redirects (RFC 3875 §6.2.2) followed for one request before giving up.
const MAX_LOCAL_REDIRECTS: usize = 3;

/// Answers one request. Call it when hyper hands the request over: the request counts as in
/// flight on its connection from then on (see `crate::conn::parking`).
pub(crate) fn handle(
    state: Arc<State>,
    conn: Arc<ConnInfo>,
    activity: Arc<Activity>,
    request: Request<RequestBody>,
) -> impl std::future::Future<Output = Result<Response<Body>, Infallible>> + Send {
    let begun = activity.begin_request();
    answer(state, conn, activity, begun, request)
}

async fn answer(
    state: Arc<State>,
    conn: Arc<ConnInfo>,
    activity: Arc<Activity>,
    (number, in_flight): (u64, deadlines::InFlight),
    request: Request<RequestBody>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let request_id = state.next_request_id();
    let (mut parts, incoming) = request.into_parts();
    authority_wins_over_host(&mut parts);
    let active = conn.tracker.request_started(parts.version);
    let spec = state.spec();
    let conn = client_addr::effective(&spec.trusted_proxies, &conn, &parts.headers);
    let host = request_host(&parts, &conn);
    let site = State::site_for(&spec, host.as_deref());
    let rules = state.site_rules(&site.name);
    let scope = Scope {
        state: &state,
        spec: &spec,
        conn: &conn,
        site,
        rules: &rules,
        request_id: &request_id,
        redirect_status: 200,
    };
    // Before the HTTPS redirect and every site rule: the CA must get the answer itself. A
    // token paddock does not expect goes on to the site (its own ACME client's files).
    let refused_or_answered =
        check_head(&parts, &spec.limits).or_else(|| acme_http01(&state, parts.uri.path()));
    let (mut response, header_rules) = match refused_or_answered {
        Some(response) => (response, None),
        None => {
            let redirect =
                site_policy::https_redirect(&state, site, &parts, host.as_deref(), conn.https)
                    .or_else(|| site_policy::redirect_rule(site, &parts));
            match redirect {
                Some(redirect) => (redirect, None),
                None => apply_rules_and_respond(&scope, &parts, incoming).await,
            }
        }
    };
    site_rules::add_headers(&rules, parts.uri.path(), header_rules, &mut response);
    response = error_script::site_error_page(&scope, &parts, response).await;
    site_policy::add_hsts(site, conn.https, &mut response);
    if let Some(alt_svc) = &conn.alt_svc {
        response.headers_mut().insert(ALT_SVC, (**alt_svc).clone());
    }
    if let Ok(mut value) = HeaderValue::from_str(&request_id) {
        // Unique to this response: HTTP/2's HPACK would add it to the connection's table, where
        // it only evicts reusable entries and costs a table search (`sensitive` = never indexed).
        value.set_sensitive(true);
        response.headers_mut().insert("x-request-id", value);
    }
    if must_close(&parts, &response)
        || number >= spec.limits.max_requests_per_connection
        || state.is_stopping()
    {
        close_after(&mut response, &parts, &activity);
    }
    state
        .metrics
        .request_done(&response, &parts.method, started);
    debug!(
        request_id,
        method = %parts.method,
        uri = %parts.uri,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    let log_entry = state.access_log.as_ref().map(|log| {
        let mut entry = log_entry(&parts, &conn, &response, site, host, request_id);
        // When the request arrived, read off the wall clock only for a request that is logged.
        let received = entry.time.checked_sub(started.elapsed());
        (entry.time, entry.started) = (received.unwrap_or(entry.time), started);
        (log.clone(), entry)
    });
    let sent_beside = response
        .extensions()
        .get::<FileOnDisk>()
        .map(|file| file.sent.clone());
    let response =
        response.map(|body| crate::metrics::hold_until_sent(body, active).boxed_unsync());
    Ok(response.map(|body| {
        let body = deadlines::guard_body(body, in_flight);
        match log_entry {
            Some((log, entry)) => access_log::log_body(body, log, entry, sent_beside),
            None => body,
        }
    }))
}

fn log_entry(
    parts: &http::request::Parts,
    conn: &ConnInfo,
    response: &Response<Body>,
    site: &SiteSpec,
    host: Option<String>,
    request_id: String,
) -> access_log::Entry {
    let header = |name| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    access_log::Entry {
        time: std::time::SystemTime::now(),
        client: conn.peer.ip(),
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.to_string(), |pq| pq.to_string()),
        version: match parts.version {
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_2 => "HTTP/2.0",
            Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        },
        status: response.status().as_u16(),
        bytes: 0,
        referer: header(http::header::REFERER),
        user_agent: header(http::header::USER_AGENT),
        host,
        site: site.name.clone(),
        request_id,
        started: Instant::now(),
        complete: false,
    }
}

/// Refusals decided from the request head alone.
fn check_head(parts: &http::request::Parts, limits: &LimitsSpec) -> Option<Response<Body>> {
    let target_len = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > limits.max_uri_bytes {
        return Some(response::error(
            StatusCode::URI_TOO_LONG,
            "the request target is too long",
        ));
    }
    if parts.version == Version::HTTP_11 && !parts.headers.contains_key(HOST) {
        return Some(response::error(
            StatusCode::BAD_REQUEST,
            "HTTP/1.1 requests need a Host header",
        ));
    }
    // RFC 9112 §3.2: more than one Host, or one that is not a host[:port], is answered 400, so
    // that paddock and a proxy in front can never route one request to two different sites.
    let mut hosts = parts.headers.get_all(HOST).iter();
    if hosts.next().is_some_and(|h| !valid_host(h.as_bytes())) || hosts.next().is_some() {
        return Some(response::error(
            StatusCode::BAD_REQUEST,
            "the request needs exactly one valid Host header",
        ));
    }
    transfer_coding_refusal(parts)
}

/// A Host value: empty, or an authority without user information.
fn valid_host(value: &[u8]) -> bool {
    value.is_empty() || (!value.contains(&b'@') && http::uri::Authority::try_from(value).is_ok())
}

/// hyper only lets requests through whose last transfer coding is `chunked`. paddock accepts
/// exactly `chunked`: another coding before it would reach the worker still encoded (RFC 9112
/// §6.1: 501 for a coding the server does not implement), and chunked applied twice is malformed.
fn transfer_coding_refusal(parts: &http::request::Parts) -> Option<Response<Body>> {
    let mut chunked = 0;
    for value in parts.headers.get_all(TRANSFER_ENCODING) {
        let value = String::from_utf8_lossy(value.as_bytes()).to_ascii_lowercase();
        for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if coding != "chunked" {
                return Some(response::error(
                    StatusCode::NOT_IMPLEMENTED,
                    "only the chunked transfer coding is supported",
                ));
            }
            chunked += 1;
        }
    }
    (chunked > 1).then(|| {
        response::error(
            StatusCode::BAD_REQUEST,
            "the chunked transfer coding was applied more than once",
        )
    })
}

/// RFC 9112 §3.2.2: for a request in absolute form the target's authority is the host and any
/// Host header is ignored; paddock replaces it, so that routing and HTTP_HOST follow the target as
/// a proxy in front would.
fn authority_wins_over_host(parts: &mut http::request::Parts) {
    if parts.version >= Version::HTTP_2 {
        return;
    }
    if let Some(value) = parts
        .uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        parts.headers.insert(HOST, value);
    }
}

/// Whether the connection must not carry another request after this one.
///
/// - A request with Transfer-Encoding: hyper lets chunked win over any Content-Length (RFC 9112
///   §6.3) and drops the Content-Length; closing afterwards means that bytes a sender meant as
///   part of the body can never be read as a next request (RFC 9112 §6.1).
/// - 408 and 413: the rest of the body was not read, so the stream is not at a request boundary.
/// - A 400 that paddock made itself (a missing, duplicated or invalid Host, a bad path, an
///   incomplete body): a client that sent one malformed request may not frame the next one as
///   paddock reads it, so nothing more is read from it (nginx does the same). A 400 from the
///   application is an ordinary answer and keeps the connection. (Requests hyper cannot parse at
///   all, an HTTP/0.9 request line among them, never get here: hyper answers those 400 itself and
///   closes.)
/// - Any answer of paddock's own to a request that declared a body: a refusal by the site's
///   rules (403, 401, 429…) comes before the body is read, and its bytes must never be taken
///   for the next request. (An error after the body was read closes too; that costs a
///   reconnect, never a request.)
///
/// HTTP/2 frames every request on its own stream, so none of this applies there.
fn must_close(parts: &http::request::Parts, response: &Response<Body>) -> bool {
    if parts.version >= Version::HTTP_2 {
        return false;
    }
    let extensions = response.extensions();
    let own = extensions.get::<OwnError>().is_some() || extensions.get::<ErrorPage>().is_some();
    let own_rejection = own && response.status() == StatusCode::BAD_REQUEST;
    let declared_body = parts
        .headers
        .get(CONTENT_LENGTH)
        .is_some_and(|length| length.as_bytes() != b"0");
    own_rejection
        || (own && declared_body)
        || parts.headers.contains_key(TRANSFER_ENCODING)
        || matches!(
            response.status(),
            StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE
        )
}

fn close_after(response: &mut Response<Body>, parts: &http::request::Parts, activity: &Activity) {
    if parts.version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    activity.request_close();
}

/// The host the request is for: the Host header, HTTP/2's `:authority`, or the TLS SNI name.
fn request_host(parts: &http::request::Parts, conn: &ConnInfo) -> Option<String> {
    parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .or(conn.sni.as_deref())
        .map(str::to_owned)
}

/// What one request is answered within: the configuration snapshot it started with, its
/// connection and its site.
#[derive(Clone, Copy)]
pub(super) struct Scope<'a> {
    pub state: &'a Arc<State>,
    pub spec: &'a FrontendSpec,
    pub conn: &'a ConnInfo,
    pub site: &'a SiteSpec,
    pub rules: &'a CompiledSite,
    pub request_id: &'a str,
    /// REDIRECT_STATUS for the scripts it runs: 200, or the status of the error whose page a
    /// script is (`error_script`).
    pub redirect_status: u16,
}

/// The site's access rules and rewrites, then the answer; and which of the site's `headers`
/// rules the rules phase found for the path, if it did.
async fn apply_rules_and_respond(
    scope: &Scope<'_>,
    parts: &http::request::Parts,
    incoming: RequestBody,
) -> (Response<Body>, Option<site_rules::MatchedHeaderRules>) {
    let client = site_rules::Client {
        ip: scope.conn.peer.ip(),
        https: scope.conn.https,
    };
    let files = &scope.state.rule_files;
    let routing = match site_rules::before_routing(scope.rules, scope.site, parts, client, files) {
        site_rules::Verdict::Respond(mut response) => {
            let response = match response
                .extensions_mut()
                .remove::<site_rules::PendingErrorDocument>()
            {
                Some(pending) => {
                    error_script::error_document(scope, parts, &pending.0, response).await
                }
                None => response,
            };
            return (response, None);
        }
        site_rules::Verdict::Route(routing) => routing,
    };
    let asked = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut response = route_and_respond(scope, parts, asked, &routing, Some(incoming)).await;
    if let Some((_, document)) = routing
        .error_documents
        .iter()
        .find(|(code, _)| *code == response.status().as_u16())
    {
        response = error_script::error_document(scope, parts, document, response).await;
    }
    (response, routing.header_rules)
}

/// Answers `parts` (or the path the rules rewrote it to) as the rules' `routing` says, with
/// `asked` as REQUEST_URI, and adds the rules' response headers. `incoming` is `None` for a
/// request paddock makes itself (an error page's), which has no body.
pub(super) async fn route_and_respond(
    scope: &Scope<'_>,
    parts: &http::request::Parts,
    asked: &str,
    routing: &site_rules::Routing,
    incoming: Option<RequestBody>,
) -> Response<Body> {
    let mut response = match &routing.rewritten {
        None => respond(scope, parts, Some(asked), routing, incoming).await,
        Some(uri) => {
            // The application still sees the URI the client asked for (REQUEST_URI), as behind
            // Apache: WordPress and MediaWiki route on it.
            let mut rewritten = parts.clone();
            rewritten.uri = uri.clone();
            respond(scope, &rewritten, Some(asked), routing, incoming).await
        }
    };
    site_rules::finish_response(routing, &mut response);
    response
}

/// Routes and answers `original`; `asked` is the client's request target when a rewrite
/// changed it.
async fn respond(
    scope: &Scope<'_>,
    original: &http::request::Parts,
    asked: Option<&str>,
    routing: &site_rules::Routing,
    incoming: Option<RequestBody>,
) -> Response<Body> {
    let Scope {
        state,
        spec,
        conn,
        site,
        rules,
        request_id,
        redirect_status,
    } = *scope;
    // A request without a body of its own starts out with an empty one.
    let mut buffered: Option<BufferedBody> = incoming
        .is_none()
        .then(|| BufferedBody::Memory(Default::default()));
    let mut body = incoming;
    // `php_value`s as php-fpm's PHP_VALUE: one `name=value` a line.
    let php_value = (!routing.php_values.is_empty()).then(|| {
        routing
            .php_values
            .iter()
            .map(|(name, value)| format!("{name}={value}\n"))
            .collect::<String>()
    });
    // The request as a local redirect rewrote it; copied only when one happens.
    let mut redirected: Option<http::request::Parts> = None;
    // Paths only a worker's X-Accel-Redirect reaches (nginx's `internal`).
    if sendfile::is_internal(site, original.uri.path()) {
        return response::error(StatusCode::NOT_FOUND, "nothing here by that name");
    }
    for _ in 0..=MAX_LOCAL_REDIRECTS {
        let parts = redirected.as_ref().unwrap_or(original);
        let index = routing.directory_index.as_deref().unwrap_or(&site.index);
        let route = router::route_with_index(site, parts.uri.path(), index, &routing.stats);
        match site_rules::check_target(rules, routing, &route) {
            None => {}
            Some(site_rules::TargetCheck::Respond(response)) => return response,
            Some(site_rules::TargetCheck::ServeAsText) => {
                let Route::Script(target) = route else {
                    unreachable!("only scripts are served as text")
                };
                let file = target.filename.expect("a script has a file");
                return serve_as_text(state, parts, site, file).await;
            }
        }
        let (target, mounted) = match route {
            Route::Static(file) => {
                let cache = state.file_cache();
                let mut response = static_files::serve(parts, site, file, &cache).await;
                response.extensions_mut().insert(site_rules::ServedFile);
                return response;
            }
            Route::AddSlash(location) => return redirect(&parts.uri, &location),
            Route::NotFound => {
                return response::error(StatusCode::NOT_FOUND, "nothing here by that name")
            }
            Route::BadRequest(reason) => return response::error(StatusCode::BAD_REQUEST, reason),
            Route::Script(target) => (target, false),
            Route::App(target) => (target, true),
        };
        let settings = RouteSettings::of(site, &target, mounted);
        let pool = settings.pool;
        if buffered.is_none() {
            let declared = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let incoming = body.take().expect("buffered once");
            // The worker branch's futures are boxed (here and below): inline, they made every
            // request's future, static files' too, several kilobytes to allocate and move.
            let buffering = body::buffer(incoming, declared, &spec.limits, &spec.timeouts);
            match Box::pin(buffering).await {
                Ok(b) => buffered = Some(b),
                Err(e) => return body_error(&e),
            }
        }
        let request_uri = match (&redirected, asked) {
            (None, Some(asked)) => asked,
            _ => parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
        };
        let request = ScriptRequest {
            parts,
            request_uri,
            env: &routing.env,
            user: routing.user.as_deref(),
            php_value: php_value.as_deref(),
            conn,
            site,
            target,
            body: buffered.take().expect("just buffered"),
            request_id,
            redirect_status,
        };
        let unbuffered =
            request.parts.method != Method::HEAD && settings.unbuffered(&request.target);
        let outcome = if unbuffered {
            Box::pin(streaming::run(state, request, pool)).await
        } else {
            Box::pin(buffered::run(state, &request, pool)).await
        };
        let outcome = match outcome {
            ScriptOutcome::Response(response) if !unbuffered => {
                let cache = state.file_cache();
                let taking_over = sendfile::take_over(parts, site, rules, &cache, response);
                let response = Box::pin(taking_over).await;
                ScriptOutcome::Response(response)
            }
            other => other,
        };
        match outcome {
            ScriptOutcome::Response(response) if settings.compress && !unbuffered => {
                let response = Box::pin(compression::compress(&parts.headers, response)).await;
                return crate::metrics::served_by(response, pool);
            }
            ScriptOutcome::Response(response) => return crate::metrics::served_by(response, pool),
            ScriptOutcome::LocalRedirect(location) => {
                // Serve the new location as a GET without a body, as RFC 3875 describes.
                let Ok(uri) = location.parse::<Uri>() else {
                    return response::error(
                        StatusCode::BAD_GATEWAY,
                        "the application redirected to an invalid path",
                    );
                };
                // The site's deny rules hold for a path a worker names, too.
                if let Some(refusal) = site_rules::denied_path(rules, uri.path()) {
                    return refusal;
                }
                let mut next = parts.clone();
                next.uri = uri;
                next.method = Method::GET;
                next.headers.remove(CONTENT_LENGTH);
                redirected = Some(next);
                buffered = Some(BufferedBody::Memory(Default::default()));
            }
        }
    }
    response::error(StatusCode::BAD_GATEWAY, "too many local redirects")
}

/// A script under a `no_scripts = "static"` path: its source as plain text, never sniffed as
/// anything else by a browser.
async fn serve_as_text(
    state: &State,
    parts: &http::request::Parts,
    site: &SiteSpec,
    file: std::path::PathBuf,
) -> Response<Body> {
    let Ok(file) = router::StaticFile::at(file) else {
        return response::error(StatusCode::NOT_FOUND, "nothing here by that name");
    };
    let cache = state.file_cache();
    let mut response = static_files::serve(parts, site, file, &cache).await;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn body_error(error: &BodyError) -> Response<Body> {
    match error {
        BodyError::TooLarge { limit } => response::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is larger than the {limit}-byte limit"),
        ),
        BodyError::TimedOut => response::error(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        ),
        BodyError::Client(_) => {
            response::error(StatusCode::BAD_REQUEST, "the request body was incomplete")
        }
        BodyError::Spool(e) => {
            info!(error = %e, "cannot spool a request body");
            response::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request body could not be stored",
            )
        }
    }
}

fn redirect(uri: &Uri, location: &str) -> Response<Body> {
    let target = match uri.query() {
        Some(query) => format!("{location}?{query}"),
        None => location.to_string(),
    };
    let mut response = response::error(StatusCode::MOVED_PERMANENTLY, "moved");
    if let Ok(value) = HeaderValue::from_str(&target) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}
