//! Static files, once the router has resolved a path.
//!
//! Whole files are answered on the event loop: small ones from the in-memory [`FileCache`]
//! (full GET and HEAD responses, `If-None-Match` / `If-Modified-Since` (304) and the
//! precompressed siblings), larger ones from their metadata with a body read only when it is
//! sent ([`file_on_disk`], which a plain HTTP/1.1 connection sends with sendfile(2)). Anything
//! else (ranges, `If-Match` / `If-Unmodified-Since`, a large precompressed sibling, a file that
//! cannot be read) goes to tower-http's `ServeFile`, and all paths give the same headers and
//! validators.
//!
//! The router decides *which* file (root containment, dotfiles, the symlink policy, script
//! detection); tower-http does the HTTP part it is good at and is well tested for: content types
//! (mime_guess), `ETag` and `Last-Modified` with `If-None-Match` / `If-Modified-Since` (304) and
//! `If-Match` / `If-Unmodified-Since` (412), one `Range` per request (206, or 416 for an
//! unsatisfiable or multi-part range), HEAD, and precompressed `.br` / `.gz` siblings. paddock adds
//! the site's `Cache-Control` rules, `Vary: Accept-Encoding` where a sibling exists, and applies
//! the symlink policy to the siblings too.
//!
//! The in-memory cache is [`file_cache`], its own module because it is shared by every
//! connection and has its own expiry and size rules.

pub(crate) mod file_cache;
pub(crate) mod file_on_disk;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::header::{
    HeaderMap, HeaderValue, ACCEPT_ENCODING, ACCEPT_RANGES, ALLOW, CACHE_CONTROL, CONTENT_ENCODING,
    CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    IF_UNMODIFIED_SINCE, LAST_MODIFIED, RANGE, VARY,
};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use protocol::control::SiteSpec;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use self::file_cache::{CachedFile, FileCache, Validators};
use self::file_on_disk::{FileOnDisk, FILE_CHUNK};
use crate::http::response::{self, Body};
use crate::http::router::{self, StaticFile};

pub(crate) async fn serve(
    parts: &Parts,
    site: &SiteSpec,
    file: StaticFile,
    cache: &FileCache,
) -> Response<Body> {
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
    let mut response = match whole_file(parts, site, &file, cache).await {
        Some(response) => response,
        // Boxed: tower-http's future is large, and only this path needs it.
        None => Box::pin(from_disk(parts, site, &file.path)).await,
    };
    if let Some(rule) = site
        .cache_control
        .iter()
        .find(|r| parts.uri.path().starts_with(&r.prefix))
    {
        if let Ok(value) = HeaderValue::from_str(&rule.value) {
            response.headers_mut().insert(CACHE_CONTROL, value);
        }
    }
    response
}

/// Room in a file's answer for its own headers, paddock's (`X-Request-Id`, HSTS) and a site's
/// header rules, so that none of them grows the map: a growth reallocates and rehashes it, and
/// a file's answer with six rule headers grew twice (measured on scenario 7's site adding six:
/// 0.8 µs a request less in the allocator once reserved).
const ANSWER_HEADERS: usize = 16;

/// A whole file's answer made on the event loop (from the cache, or from the metadata of a file
/// too large for it), or `None` when the request or the file needs `ServeFile`.
async fn whole_file(
    parts: &Parts,
    site: &SiteSpec,
    file: &StaticFile,
    cache: &FileCache,
) -> Option<Response<Body>> {
    let headers = &parts.headers;
    if [RANGE, IF_MATCH, IF_UNMODIFIED_SINCE]
        .iter()
        .any(|h| headers.contains_key(h))
    {
        return None;
    }
    let siblings = site.precompressed.then(|| {
        cache.siblings(&file.path, &file.meta, site.symlinks, |path| {
            router::allowed_metadata(site, path)
        })
    });
    let variants = siblings.as_ref().map_or(&[][..], |s| &s.variants[..]);
    let chosen = variants.iter().find(|v| accepts(headers, v.coding));
    let (encoding, path, meta) = match chosen {
        Some(v) => (Some(v.coding), &v.path, &v.meta),
        None => (None, &file.path, &file.meta),
    };
    let (validators, contents) = if cache.accepts(meta) {
        let cached = match cache.get(path, meta) {
            Some(cached) => cached,
            None => Box::pin(cache.load(path)).await?,
        };
        (cached.validators.clone(), Contents::Cached(cached))
    } else if encoding.is_none() && meta.is_file() {
        let on_disk = FileOnDisk::new(path, meta);
        (Validators::of(meta)?, Contents::OnDisk(on_disk))
    } else {
        return None;
    };
    let mut response = if not_modified(headers, &validators) {
        let mut response = Response::new(response::full(bytes::Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let head = parts.method == Method::HEAD;
        let (body, length) = match &contents {
            Contents::Cached(cached) if head => (
                response::full(bytes::Bytes::new()),
                cached.bytes.len() as u64,
            ),
            Contents::Cached(cached) => (
                response::full(cached.bytes.clone()),
                cached.bytes.len() as u64,
            ),
            Contents::OnDisk(on_disk) if head => {
                (response::full(bytes::Bytes::new()), on_disk.len())
            }
            Contents::OnDisk(on_disk) => (on_disk.body(), on_disk.len()),
        };
        let mut response = Response::new(body);
        let out = response.headers_mut();
        *out = HeaderMap::with_capacity(ANSWER_HEADERS);
        let content_type = match &contents {
            Contents::Cached(cached) if encoding.is_none() => cached.content_type.clone(),
            _ => content_type(&file.path),
        };
        out.insert(CONTENT_TYPE, content_type);
        out.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if let Some(coding) = encoding {
            out.insert(CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        out.insert(CONTENT_LENGTH, HeaderValue::from(length));
        if let (Contents::OnDisk(on_disk), false) = (contents, head) {
            response.extensions_mut().insert(on_disk);
        }
        response
    };
    let out = response.headers_mut();
    out.insert(LAST_MODIFIED, validators.last_modified);
    out.insert(ETAG, validators.etag);
    if !variants.is_empty() {
        out.append(VARY, HeaderValue::from_static("accept-encoding"));
    }
    Some(response)
}

/// Where a whole file's answer takes its bytes from.
enum Contents {
    Cached(Arc<CachedFile>),
    /// Too large to cache: read when sent, or sent by the kernel (`file_on_disk`).
    OnDisk(FileOnDisk),
}

/// RFC 9110 §13.2.2 for GET and HEAD: `If-None-Match` (weak comparison) decides when present,
/// else `If-Modified-Since`.
fn not_modified(headers: &HeaderMap, file: &Validators) -> bool {
    if let Some(tags) = headers.get(IF_NONE_MATCH) {
        let tags = tags.as_bytes();
        let ours = file.etag.as_bytes();
        return tags == b"*"
            || tags
                .split(|&b| b == b',')
                .map(|tag| tag.trim_ascii())
                .any(|tag| tag.strip_prefix(b"W/").unwrap_or(tag) == ours);
    }
    headers
        .get(IF_MODIFIED_SINCE)
        .and_then(file_cache::http_date_secs)
        .is_some_and(|since| file.modified_secs <= since)
}

/// Whether `Accept-Encoding` allows `coding` (listed, or `*`, with a q-value above zero).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut params = item.split(';');
            let name = params.next().unwrap_or("").trim();
            let zero_q = params.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case(coding) || name == "*") && !zero_q
        })
}

/// The `Content-Type` of the file's own name (a sibling is served with its original's type).
pub(super) fn content_type(file: &Path) -> HeaderValue {
    mime_guess::from_path(file).first_raw().map_or_else(
        || HeaderValue::from_static("application/octet-stream"),
        HeaderValue::from_static,
    )
}

/// Through tower-http's `ServeFile`, for what [`whole_file`] does not answer.
async fn from_disk(parts: &Parts, site: &SiteSpec, file: &Path) -> Response<Body> {
    let mut request = Request::new(http_body_util::Empty::<bytes::Bytes>::new());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.headers_mut() = parts.headers.clone();
    let mut service = ServeFile::new(file).with_buf_chunk_size(FILE_CHUNK);
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
    if has_sibling {
        response
            .headers_mut()
            .append(VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Whether `file.EXT` exists as a regular file the site's symlink policy allows.
fn usable_sibling(site: &SiteSpec, file: &Path, ext: &str) -> bool {
    router::allowed_metadata(site, &sibling(file, ext)).is_some_and(|m| m.is_file())
}

fn sibling(file: &Path, ext: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}
