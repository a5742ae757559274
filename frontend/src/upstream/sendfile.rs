//! Files a worker hands back for the front end to send: `X-Accel-Redirect: /uri` (nginx: an
//! internal URI of the site) and `X-Sendfile: /absolute/path` (Apache's mod_xsendfile, under the
//! site's `sendfile.roots`). The worker's reply is only a head, so its slot is free at once,
//! and the front end sends the file at the client's pace with everything a static file gets:
//! ranges, conditional requests, the file cache, `HEAD`.
//!
//! From the worker's reply the client keeps `Content-Type`, `Content-Disposition`,
//! `Cache-Control`, `Expires`, `Last-Modified`-free headers that describe the download, and
//! every `Set-Cookie` (the headers nginx keeps for `X-Accel-Redirect`); the status is the
//! file's (200, 206, 304, 416).
//!
//! Applications learn that they may use it from `X-Sendfile-Type` (and `X-Accel-Mapping`),
//! which Symfony's and Laravel's `BinaryFileResponse` read. A client cannot send those itself:
//! the front end removes them from every request before setting its own.

use std::path::{Path, PathBuf};

use http::header::{
    HeaderName, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, EXPIRES, SET_COOKIE,
};
use http::request::Parts;
use http::{HeaderMap, Method, Response, StatusCode};
use protocol::control::SiteSpec;
use tracing::warn;

use crate::http::response::{self, Body};
use crate::http::router::{self, Route, StaticFile};
use crate::site_rules::{self, CompiledSite};
use crate::static_files;
use crate::static_files::file_cache::FileCache;

const X_ACCEL_REDIRECT: HeaderName = HeaderName::from_static("x-accel-redirect");
const X_SENDFILE: HeaderName = HeaderName::from_static("x-sendfile");
/// Request headers that tell the application what it may use; never taken from a client.
pub(crate) const ADVERTISED: [&str; 2] = ["x-sendfile-type", "x-accel-mapping"];

/// The worker's headers that describe the download and go to the client with the file.
const KEPT: [HeaderName; 5] = [
    CONTENT_TYPE,
    CONTENT_DISPOSITION,
    CACHE_CONTROL,
    EXPIRES,
    SET_COOKIE,
];

/// What a worker's reply asks the front end to send instead of its body.
#[derive(Debug)]
enum Handoff {
    /// A URL path of the site.
    Uri(String),
    /// An absolute file path.
    Path(PathBuf),
}

/// The CGI variables that tell the application what it may hand back: `X-Sendfile` when the
/// site has roots for it, else `X-Accel-Redirect` with the mapping of its internal prefixes.
pub(crate) fn advertised(site: &SiteSpec) -> Vec<(&'static str, String)> {
    let sendfile = &site.sendfile;
    if !sendfile.roots.is_empty() {
        return vec![("HTTP_X_SENDFILE_TYPE", "X-Sendfile".to_string())];
    }
    if sendfile.internal.is_empty() {
        return Vec::new();
    }
    let root = site.root.to_string_lossy();
    let root = root.trim_end_matches('/');
    let mapping = sendfile
        .internal
        .iter()
        .map(|prefix| format!("{root}{prefix}={prefix}"))
        .collect::<Vec<_>>()
        .join(",");
    vec![
        ("HTTP_X_SENDFILE_TYPE", "X-Accel-Redirect".to_string()),
        ("HTTP_X_ACCEL_MAPPING", mapping),
    ]
}

/// Whether a client's own request names a path only `X-Accel-Redirect` may reach.
pub(crate) fn is_internal(site: &SiteSpec, raw_path: &str) -> bool {
    if site.sendfile.internal.is_empty() {
        return false;
    }
    // Decoded, so that no spelling (`%2F`, `//`, `/./`) slips past the prefix.
    let Some(path) = site_rules::decoded_path(raw_path) else {
        return false;
    };
    site.sendfile
        .internal
        .iter()
        .any(|prefix| path.starts_with(prefix.as_str()) || path == prefix.trim_end_matches('/'))
}

/// The worker's response, or the file it names sent in its place.
pub(crate) async fn take_over(
    parts: &Parts,
    site: &SiteSpec,
    rules: &CompiledSite,
    cache: &FileCache,
    mut worker: Response<Body>,
) -> Response<Body> {
    let Some(handoff) = handoff(site, worker.headers_mut()) else {
        return worker;
    };
    if !worker.status().is_success() {
        // An error page that also names a file: the error stands.
        return worker;
    }
    let file = match &handoff {
        Handoff::Uri(uri) => accel_target(site, rules, uri),
        Handoff::Path(path) => sendfile_target(site, path),
    };
    let file = match file {
        Ok(file) => file,
        Err(status) => {
            warn!(site = %site.name, ?handoff, status = status.as_u16(),
                "a worker named a file the front end does not send");
            return response::error(status, "the file the application named cannot be sent");
        }
    };
    // The file answers as a static file would: a download after a form POST is a GET.
    let mut request = parts.clone();
    if request.method != Method::HEAD {
        request.method = Method::GET;
    }
    let mut response = static_files::serve(&request, site, file, cache).await;
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        keep_worker_headers(worker.headers(), response.headers_mut());
    }
    response
}

/// Takes the hand-off headers out of the worker's reply. `X-Sendfile` without roots is removed
/// too (it would show the client a server path) and logged.
fn handoff(site: &SiteSpec, headers: &mut HeaderMap) -> Option<Handoff> {
    let accel = headers.remove(X_ACCEL_REDIRECT);
    let sendfile = headers.remove(X_SENDFILE);
    if let Some(value) = accel {
        return Some(Handoff::Uri(
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        ));
    }
    let value = sendfile?;
    if site.sendfile.roots.is_empty() {
        warn!(site = %site.name,
            "a worker sent X-Sendfile, but the site has no sendfile.roots: the header is dropped");
        return None;
    }
    Some(Handoff::Path(PathBuf::from(
        String::from_utf8_lossy(value.as_bytes()).into_owned(),
    )))
}

/// `X-Accel-Redirect`: a static file of the site, by its URL path (query ignored), which the
/// site's `deny` rules still cover.
fn accel_target(
    site: &SiteSpec,
    rules: &CompiledSite,
    uri: &str,
) -> Result<StaticFile, StatusCode> {
    let path = uri.split('?').next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(StatusCode::BAD_GATEWAY);
    }
    if site_rules::denied_path(rules, path).is_some() {
        return Err(StatusCode::FORBIDDEN);
    }
    match router::route(site, path) {
        Route::Static(file) => Ok(file),
        Route::NotFound => Err(StatusCode::NOT_FOUND),
        _ => Err(StatusCode::BAD_GATEWAY),
    }
}

/// `X-Sendfile`: a regular file whose real path (every symlink resolved) is under one of the
/// site's roots.
fn sendfile_target(site: &SiteSpec, path: &Path) -> Result<StaticFile, StatusCode> {
    if !path.is_absolute() {
        return Err(StatusCode::BAD_GATEWAY);
    }
    let real = path.canonicalize().map_err(|_| StatusCode::NOT_FOUND)?;
    if !site
        .sendfile
        .roots
        .iter()
        .any(|root| real.starts_with(root))
    {
        return Err(StatusCode::FORBIDDEN);
    }
    match StaticFile::at(real) {
        Ok(file) if file.meta.is_file() => Ok(file),
        Ok(_) => Err(StatusCode::FORBIDDEN),
        Err(_) => Err(StatusCode::NOT_FOUND),
    }
}

fn keep_worker_headers(worker: &HeaderMap, response: &mut HeaderMap) {
    for name in KEPT {
        let mut values = worker.get_all(&name).iter().peekable();
        if values.peek().is_none() {
            continue;
        }
        response.remove(&name);
        for value in values {
            response.append(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_download_s_own_headers_are_kept() {
        let mut worker = HeaderMap::new();
        worker.insert(CONTENT_TYPE, "application/pdf".parse().unwrap());
        worker.insert(CONTENT_DISPOSITION, "attachment".parse().unwrap());
        worker.append(SET_COOKIE, "a=1".parse().unwrap());
        worker.append(SET_COOKIE, "b=2".parse().unwrap());
        worker.insert("x-powered-by", "PHP".parse().unwrap());
        worker.insert(http::header::CONTENT_LENGTH, "0".parse().unwrap());
        let mut file = HeaderMap::new();
        file.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        file.insert(http::header::CONTENT_LENGTH, "1024".parse().unwrap());
        keep_worker_headers(&worker, &mut file);
        assert_eq!(file[CONTENT_TYPE], "application/pdf");
        assert_eq!(file[CONTENT_DISPOSITION], "attachment");
        assert_eq!(file.get_all(SET_COOKIE).iter().count(), 2);
        assert_eq!(file[http::header::CONTENT_LENGTH], "1024");
        assert!(!file.contains_key("x-powered-by"));
    }
}
