//! Static files, served by tower-http's `ServeFile` once the router has resolved a path.
//!
//! The router decides *which* file (root containment, dotfiles, the symlink policy, script
//! detection); tower-http does the HTTP part it is good at and is well tested for: content types
//! (mime_guess), `ETag` and `Last-Modified` with `If-None-Match` / `If-Modified-Since` (304) and
//! `If-Match` / `If-Unmodified-Since` (412), one `Range` per request (206, or 416 for an
//! unsatisfiable or multi-part range), HEAD, and precompressed `.br` / `.gz` siblings. paddock adds
//! the site's `Cache-Control` rules, `Vary: Accept-Encoding` where a sibling exists, and applies
//! the symlink policy to the siblings too.

use std::path::{Path, PathBuf};

use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, VARY};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use protocol::control::SiteSpec;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::response::{self, Body};
use crate::router;

pub async fn serve(parts: &Parts, site: &SiteSpec, file: &Path) -> Response<Body> {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let mut response = response::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "static files answer GET and HEAD only",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let mut request = Request::new(http_body_util::Empty::<bytes::Bytes>::new());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.headers_mut() = parts.headers.clone();
    let mut service = ServeFile::new(file);
    let mut has_sibling = false;
    if site.precompressed {
        if usable_sibling(site, file, "br") {
            service = service.precompressed_br();
            has_sibling = true;
        }
        if usable_sibling(site, file, "gz") {
            service = service.precompressed_gzip();
            has_sibling = true;
        }
    }
    let mut response = match service.oneshot(request).await {
        Ok(response) => response.map(|body| body.map_err(std::io::Error::other).boxed_unsync()),
        Err(never) => match never {},
    };
    let headers = response.headers_mut();
    if has_sibling {
        headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    }
    let path = parts.uri.path();
    if let Some(rule) = site
        .cache_control
        .iter()
        .find(|r| path.starts_with(&r.prefix))
    {
        if let Ok(value) = HeaderValue::from_str(&rule.value) {
            headers.insert(CACHE_CONTROL, value);
        }
    }
    response
}

/// Whether `file.EXT` exists as a regular file the site's symlink policy allows.
fn usable_sibling(site: &SiteSpec, file: &Path, ext: &str) -> bool {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    let sibling = PathBuf::from(name);
    router::allowed_metadata(site, &sibling).is_some_and(|m| m.is_file())
}
