//! Per-site answers around the request path: the HTTP → HTTPS redirect, redirect rules, HSTS,
//! and custom error pages in place of paddock's own.

use http::header::{HeaderValue, LOCATION, STRICT_TRANSPORT_SECURITY};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use protocol::control::{ListenerKind, SiteSpec};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::http::response::{self, Body, OwnError};
use crate::http::router;
use crate::http::vhost;
use crate::state::State;
use rules::htaccess::ErrorDocument;

/// The redirect for a site that wants HTTPS, when the request came in cleartext.
pub(crate) fn https_redirect(
    state: &State,
    site: &SiteSpec,
    parts: &Parts,
    host: Option<&str>,
    https: bool,
) -> Option<Response<Body>> {
    if https || !site.https_redirect {
        return None;
    }
    let name = host.map(vhost::normalize)?;
    let port = state
        .spec()
        .listeners
        .iter()
        .find(|l| l.kind == ListenerKind::Https)
        .map_or(443, |l| l.address.port());
    let authority = match (name.contains(':'), port) {
        (true, 443) => format!("[{name}]"),
        (true, port) => format!("[{name}]:{port}"),
        (false, 443) => name,
        (false, port) => format!("{name}:{port}"),
    };
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    // 301 for GET/HEAD as browsers expect; 308 keeps the method and body of anything else.
    let status = if matches!(parts.method, Method::GET | Method::HEAD) {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::PERMANENT_REDIRECT
    };
    let mut response = response::error(status, "this site is served over HTTPS");
    let location = HeaderValue::from_str(&format!("https://{authority}{target}")).ok()?;
    response.headers_mut().insert(LOCATION, location);
    Some(response)
}

/// The first of the site's redirect rules whose `from` prefix starts the path: `to` plus the
/// rest of the path plus the query.
pub(crate) fn redirect_rule(site: &SiteSpec, parts: &Parts) -> Option<Response<Body>> {
    let path = parts.uri.path();
    let rule = site.redirects.iter().find(|r| path.starts_with(&r.from))?;
    let mut target = format!("{}{}", rule.to, &path[rule.from.len()..]);
    if let Some(query) = parts.uri.query() {
        target.push('?');
        target.push_str(query);
    }
    let status = StatusCode::from_u16(rule.status).ok()?;
    let mut response = response::error(status, "moved");
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_str(&target).ok()?);
    Some(response)
}

/// Adds the site's HSTS header to a response sent over HTTPS.
pub(crate) fn add_hsts(site: &SiteSpec, https: bool, response: &mut Response<Body>) {
    if let (true, Some(value)) = (https, &site.hsts) {
        if let Ok(value) = HeaderValue::from_str(value) {
            response
                .headers_mut()
                .insert(STRICT_TRANSPORT_SECURITY, value);
        }
    }
}

/// Replaces the body of one of paddock's own error responses with the site's page for that
/// status, if it has one. Status and headers (Retry-After, Allow, Connection) stay.
pub(crate) async fn custom_error_page(site: &SiteSpec, response: Response<Body>) -> Response<Body> {
    if response.extensions().get::<OwnError>().is_none() {
        return response;
    }
    let status = response.status().as_u16();
    let Some((_, page)) = site.error_pages.iter().find(|(code, _)| *code == status) else {
        return response;
    };
    page_in_place_of(site, page, response).await
}

/// An `.htaccess` `ErrorDocument` for one of paddock's own error responses: a page of the site
/// (a static file; the status stays), a redirect to another site, or a message.
pub(crate) async fn error_document(
    site: &SiteSpec,
    document: &ErrorDocument,
    response: Response<Body>,
) -> Response<Body> {
    if response.extensions().get::<OwnError>().is_none() {
        return response;
    }
    match document {
        ErrorDocument::Local(page) => page_in_place_of(site, page, response).await,
        ErrorDocument::Remote(url) => {
            let mut redirect = response::error(StatusCode::FOUND, "moved");
            match HeaderValue::from_str(url) {
                Ok(value) => {
                    redirect.headers_mut().insert(LOCATION, value);
                    redirect
                }
                Err(_) => response,
            }
        }
        ErrorDocument::Text(text) => {
            let (mut parts, _) = response.into_parts();
            parts.headers.remove(http::header::CONTENT_LENGTH);
            parts.headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Response::from_parts(parts, response::full(text.clone()))
        }
        ErrorDocument::Default => response,
    }
}

/// The static file at the site's URL path `page` as the body of `response`.
async fn page_in_place_of(site: &SiteSpec, page: &str, response: Response<Body>) -> Response<Body> {
    let Some(file) = router::route(site, page).static_path() else {
        return response;
    };
    let Ok(page) = ServeFile::new(file)
        .oneshot(Request::new(http_body_util::Empty::<bytes::Bytes>::new()))
        .await;
    if page.status() != StatusCode::OK {
        return response;
    }
    let (page_parts, page_body) = page.into_parts();
    let (mut parts, _) = response.into_parts();
    for name in [http::header::CONTENT_TYPE, http::header::CONTENT_LENGTH] {
        parts.headers.remove(&name);
        if let Some(value) = page_parts.headers.get(&name) {
            parts.headers.insert(name, value.clone());
        }
    }
    Response::from_parts(
        parts,
        page_body.map_err(std::io::Error::other).boxed_unsync(),
    )
}
