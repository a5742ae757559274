//! HTTP Basic authentication against htpasswd files, for `auth` rules (and `.htaccess`
//! `AuthUserFile`). Each file is parsed once per version: a stat on every check notices an
//! edited, replaced or removed file at once, with no reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use dashmap::DashMap;
use http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};
use rules::htpasswd::Htpasswd;
use tracing::warn;

use crate::http::response::{self, Body};
use crate::static_files::file_cache::Identity;

/// Parsed htpasswd files by path, each with the version it was read at.
#[derive(Debug, Default)]
pub struct PasswordFiles {
    files: DashMap<PathBuf, (Identity, Arc<Htpasswd>)>,
}

impl PasswordFiles {
    /// The file as it is now; `None` (everyone refused) when it cannot be read.
    pub fn get(&self, path: &Path) -> Option<Arc<Htpasswd>> {
        let meta = std::fs::metadata(path).ok()?;
        let version = Identity::of(&meta);
        if let Some(entry) = self.files.get(path) {
            if entry.0 == version {
                return Some(entry.1.clone());
            }
        }
        let content = match std::fs::read_to_string(path) {
            Ok(content) => content,
            Err(e) => {
                warn!(file = %path.display(), error = %e, "cannot read an htpasswd file; every login through it fails");
                return None;
            }
        };
        let parsed = Arc::new(Htpasswd::parse(&content));
        if !parsed.unsupported().is_empty() {
            warn!(file = %path.display(), users = ?parsed.unsupported(),
                "htpasswd entries in a format paddock cannot verify (use bcrypt, apr1 or SHA); those users cannot log in");
        }
        self.files
            .insert(path.to_path_buf(), (version, parsed.clone()));
        Some(parsed)
    }
}

/// The user name if the request's Basic credentials are valid in `file` (and, when `users` is
/// not empty, the user is one of them).
pub(super) fn authenticated(
    headers: &HeaderMap,
    file: &Htpasswd,
    users: &[String],
) -> Option<String> {
    let (user, password) = basic_credentials(headers)?;
    let listed = users.is_empty() || users.contains(&user);
    (listed && file.check(&user, &password)).then_some(user)
}

/// `user` and `password` from `Authorization: Basic …`.
pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// 401 asking for credentials for `realm`.
pub(super) fn challenge(realm: &str) -> Response<Body> {
    let mut response = response::error(StatusCode::UNAUTHORIZED, "this area needs a login");
    if let Ok(value) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
    {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}
