//! `.htaccess` on the request path, after the site's native rules and with Apache's order:
//! access for the path's chain of files (Basic auth against the named htpasswd file), then the
//! deepest file's `Redirect`s, then its rewrites. A rewritten path is an internal redirect: its
//! own chain is checked again from the start (bounded, as Apache's `LimitInternalRecursion`),
//! unless the rule said `[END]`, which only skips further rewriting.
//!
//! What the final chain says about serving (scripts allowed, headers, content type, PHP values,
//! environment) is handed on in [`Routing`](super::Routing).

use std::path::{Path, PathBuf};

use http::request::Parts;
use protocol::control::SiteSpec;
use rules::htaccess::{self, Access, DirRules};
use rules::rewrite::{FileKind, RewriteContext, RewriteOutcome};

use super::auth::{self, PasswordFiles};
use super::context::RequestContext;
use super::verdict_cache::HtaccessState;
use super::{denied, redirect, Client, CompiledSite, Refusal, Routing, MAX_REWRITE_PASSES};
use crate::http::response::{self, Body};
use crate::http::stat_memo::StatMemo;
use http::{Response, StatusCode};

/// An `.htaccess` `ErrorDocument` for a refusal, carried on the response to the caller.
#[derive(Debug, Clone)]
pub struct PendingErrorDocument(pub rules::htaccess::ErrorDocument);

/// Where `.htaccess` leaves the request: the path (and query) to serve, and what to serve it with.
pub(super) struct Outcome {
    pub path: String,
    pub query: Option<String>,
    pub changed: bool,
    pub routing: Routing,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn apply(
    compiled: &CompiledSite,
    files: &super::HtaccessFiles,
    site: &SiteSpec,
    parts: &Parts,
    client: Client,
    passwords: &PasswordFiles,
    ctx: &RequestContext<'_>,
    mut path: String,
    mut query: Option<String>,
) -> Result<Outcome, Refusal> {
    let mut changed = false;
    let mut env = Vec::new();
    let mut rewriting = true;
    let stats = &ctx.stats;
    for _ in 0..MAX_REWRITE_PASSES {
        let found = files.chain(site, &path, stats);
        ctx.remember_mapped(&path, &found.file);
        let chain: Vec<&DirRules> = found.rules.iter().map(AsRef::as_ref).collect();
        {
            let mut reads = ctx.reads();
            reads.htaccess_unwatched |= !found.all_watched;
            if let Some(root) = found.root {
                // The first pass's: a change during the evaluation then shows as a change.
                reads
                    .htaccess
                    .get_or_insert(HtaccessState::new(found.version, root));
            }
            reads.client_address |= chain.iter().any(|rules| rules.reads_client_address());
        }
        let file = found.file.to_string_lossy().into_owned();
        let file_name = file.rsplit('/').next().filter(|n| !n.is_empty());
        let request = htaccess::Request {
            path: &path,
            query: query.as_deref(),
            method: parts.method.as_str(),
            client: client.ip,
            user: None,
            file_name,
        };
        let outer = ctx;
        let pass = Pass {
            inner: ctx,
            path: &path,
            query: query.as_deref(),
        };
        let ctx = &pass;
        let user = match check_access(&chain, &request, site, parts, passwords, ctx) {
            Ok(Some(user)) => {
                // A login's outcome depends on the password file and the credentials.
                outer.reads().refuse("Basic auth");
                Some(user)
            }
            Ok(None) => None,
            Err(refusal) => {
                let effective = htaccess::effective(&chain, &request, ctx);
                let status = refusal.status().as_u16();
                let mut refusal = with_always_headers(&effective, *refusal);
                // The directory's ErrorDocument for the refusal, applied by the caller (it may
                // be a file to read).
                if let Some(document) = effective.error_documents.get(&status) {
                    refusal
                        .extensions_mut()
                        .insert(PendingErrorDocument((*document).clone()));
                }
                return Err(refusal);
            }
        };
        let effective = htaccess::effective(&chain, &request, ctx);
        if let Some(to) = &effective.redirect {
            return Err(with_always_headers(
                &effective,
                match &to.location {
                    Some(location) => redirect(to.status, location),
                    None => response::error(
                        StatusCode::from_u16(to.status).unwrap_or(StatusCode::GONE),
                        "gone",
                    ),
                },
            ));
        }
        let set = rewriting
            .then(|| htaccess::rewrite_set(&chain, &path))
            .flatten()
            .filter(|_| effective.options.rewrites_allowed());
        let outcome = set.map(|set| set.apply(&path, query.as_deref(), ctx));
        match outcome {
            Some(RewriteOutcome::Rewritten {
                path: next,
                query: next_query,
                env: rule_env,
                end,
            }) => {
                if let Some(status) = compiled.rules().denied(&next) {
                    return Err(Box::new(denied(status)));
                }
                env.extend(rule_env);
                let same = next == path && next_query == query;
                if !same && !path.ends_with('/') && is_dir(site, Path::new(&file), stats) {
                    // A directory named without its slash: Apache's mod_dir (`DirectorySlash
                    // On`) answers 301 to the slashed path in the same phase, whatever the
                    // directory's rewrite made of it, with the query the rewrite left.
                    let location = super::encode_target(&format!("{path}/"), next_query.as_deref())
                        .map(|uri| uri.to_string())
                        .unwrap_or_else(|| format!("{path}/"));
                    return Err(with_always_headers(&effective, redirect(301, &location)));
                }
                if !same {
                    // Apache's internal redirect (in the handler phase, after this directory's
                    // `SetEnv`s) hands the next pass every variable of this one renamed
                    // `REDIRECT_…`; what the next pass sets again has the plain name.
                    env.extend(effective.env.iter().cloned());
                    for (name, _) in &mut env {
                        name.insert_str(0, "REDIRECT_");
                    }
                }
                (path, query, changed) = (next, next_query, true);
                rewriting = !end && !same;
                // Apache re-runs the whole per-directory phase for the new path.
                continue;
            }
            Some(RewriteOutcome::Unchanged { env: rule_env }) => env.extend(rule_env),
            Some(RewriteOutcome::Redirect { status, location }) => {
                return Err(with_always_headers(&effective, redirect(status, &location)))
            }
            Some(RewriteOutcome::Forbidden) => {
                return Err(with_always_headers(&effective, denied(403)))
            }
            Some(RewriteOutcome::Gone) => {
                return Err(with_always_headers(
                    &effective,
                    response::error(StatusCode::GONE, "gone"),
                ))
            }
            None => {}
        }
        env.extend(effective.env.iter().cloned());
        let routing = Routing {
            env,
            php_values: effective
                .php_values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            scripts: effective.scripts,
            headers: effective.headers.iter().map(|h| (*h).clone()).collect(),
            content_type: effective
                .content_type
                .and_then(|t| http::HeaderValue::from_str(t).ok()),
            directory_index: effective.directory_index.map(<[String]>::to_vec),
            error_documents: effective
                .error_documents
                .iter()
                .map(|(code, doc)| (*code, (*doc).clone()))
                .collect(),
            user,
            ..Routing::default()
        };
        return Ok(Outcome {
            path,
            query,
            changed,
            routing,
        });
    }
    Err(Box::new(response::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the site's rewrite rules loop",
    )))
}

/// The request as one pass of the per-directory phase sees it. After an internal redirect
/// Apache runs the phase for a new request whose `%{REQUEST_URI}` and `%{QUERY_STRING}` are the
/// rewritten path and query (`r->uri`, `r->args`), and `REQUEST_FILENAME` follows them.
struct Pass<'a> {
    inner: &'a dyn RewriteContext,
    path: &'a str,
    query: Option<&'a str>,
}

impl RewriteContext for Pass<'_> {
    fn variable(&self, name: &str) -> Option<String> {
        match name {
            "REQUEST_URI" => Some(self.path.to_string()),
            "QUERY_STRING" => Some(self.query.unwrap_or_default().to_string()),
            "REQUEST_FILENAME" | "SCRIPT_FILENAME" => self
                .inner
                .file_path(self.path)
                .or_else(|| self.inner.variable(name)),
            _ => self.inner.variable(name),
        }
    }
    fn file_kind(&self, path: &str) -> FileKind {
        self.inner.file_kind(path)
    }
    fn is_symlink(&self, path: &str) -> bool {
        self.inner.is_symlink(path)
    }
    fn file_path(&self, url_path: &str) -> Option<String> {
        self.inner.file_path(url_path)
    }
}

/// Apache's access check for one chain, with the two-step Basic flow: `NeedsAuth` means "check
/// the credentials, then ask again as that user". `Ok` holds the user who logged in, if one had
/// to.
fn check_access(
    chain: &[&DirRules],
    request: &htaccess::Request<'_>,
    site: &SiteSpec,
    parts: &Parts,
    passwords: &PasswordFiles,
    ctx: &dyn RewriteContext,
) -> Result<Option<String>, Refusal> {
    let challenge = match htaccess::check_access(chain, request, ctx) {
        Access::Granted => return Ok(None),
        Access::Denied(status) => return Err(Box::new(status_response(status))),
        Access::NeedsAuth(challenge) => challenge,
    };
    let user = auth::basic_credentials(&parts.headers).and_then(|(user, password)| {
        let file = passwords.get(&user_file(site, &challenge.user_file))?;
        file.check(&user, &password).then_some(user)
    });
    if let Some(user) = user.as_deref() {
        let again = htaccess::Request {
            user: Some(user),
            ..*request
        };
        match htaccess::check_access(chain, &again, ctx) {
            Access::Granted => return Ok(Some(user.to_string())),
            Access::Denied(status) => return Err(Box::new(status_response(status))),
            Access::NeedsAuth(_) => {}
        }
    }
    let mut response = response::error(StatusCode::UNAUTHORIZED, "this area needs a login");
    if let Ok(value) = http::HeaderValue::from_str(&challenge.www_authenticate()) {
        response
            .headers_mut()
            .insert(http::header::WWW_AUTHENTICATE, value);
    }
    Err(Box::new(response))
}

/// An answer of the `.htaccess` phase (a refusal, a redirect) with the directory's `Header
/// always` actions, which Apache applies to error and redirect answers too.
fn with_always_headers(effective: &htaccess::Effective<'_>, response: Response<Body>) -> Refusal {
    let mut response = Box::new(response);
    let headers = Routing {
        headers: effective.headers.iter().map(|h| (*h).clone()).collect(),
        ..Routing::default()
    };
    super::finish_response(&headers, &mut response);
    response
}

/// Whether `file` (the whole request path mapped, as [`super::context::mapped_file`] gives it) is
/// a directory that may be served.
fn is_dir(site: &SiteSpec, file: &Path, stats: &StatMemo) -> bool {
    stats
        .allowed_metadata(site, file)
        .is_some_and(|m| m.is_dir())
}

/// `AuthUserFile` as written; a relative name is taken from the document root's parent (where
/// an application's packaged config would put it, never inside the served tree).
fn user_file(site: &SiteSpec, name: &str) -> PathBuf {
    let path = Path::new(name);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    site.root.parent().unwrap_or(&site.root).join(path)
}

fn status_response(status: u16) -> Response<Body> {
    match status {
        403 | 404 => denied(status),
        _ => response::error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "this directory's configuration does not allow the request",
        ),
    }
}
