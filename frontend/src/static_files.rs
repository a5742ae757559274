//! Static files, served by tower-http's `ServeFile` once the router has resolved a path.
//!
//! The router decides *which* file (root containment, dotfiles, symlinks, script detection);
//! tower-http does the HTTP part it is good at: content types, `Last-Modified` with conditional
//! requests, `Range` (206/416) and HEAD.

use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::path::Path;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::response::{self, Body};

pub async fn serve(parts: &Parts, file: &Path) -> Response<Body> {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let mut response = response::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "static files answer GET and HEAD only",
        );
        response.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
        return response;
    }
    let mut request = Request::new(http_body_util::Empty::<bytes::Bytes>::new());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.headers_mut() = parts.headers.clone();
    match ServeFile::new(file).oneshot(request).await {
        Ok(response) => response.map(|body| body.map_err(std::io::Error::other).boxed_unsync()),
        Err(never) => match never {},
    }
}
