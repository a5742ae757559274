//! A site's native rules on the request path (docs/configuration.md, "Rules").
//!
//! The order follows Apache's phases, so that a rule means what an admin coming from Apache or
//! nginx expects: **access** first — `deny`, then `clients`, then `rate_limit`, then `auth`, each
//! on the decoded, normalised path — then **rewrites** (a rewritten path is checked against
//! `deny` again), then routing, after which the chosen script or file is checked once more
//! ([`check_target`]): a denied or no-scripts path stays so however it was reached (directly,
//! through PATH_INFO, a rewrite, the front controller or a worker's local redirect). Response
//! headers come last ([`add_headers`]).
//!
//! Patterns are compiled once per configuration generation ([`SiteRuleSets`]); a request only
//! matches them, and the outcome of the access phase and the rewrites is reused while every
//! input its evaluation read still holds ([`verdict_cache`]).

mod auth;
mod context;
mod htaccess;
mod htaccess_files;
mod htaccess_watch;
mod rate_limit;
mod replica;
mod verdict_cache;
pub(crate) mod watched_stats;

#[cfg(test)]
mod cost_probe;

use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use http::header::{HeaderValue, RETRY_AFTER};
use http::request::Parts;
use http::{Response, StatusCode, Uri};
use protocol::cgi;
use protocol::control::{FrontendSpec, SiteSpec};
use protocol::site_rules::NoScriptsAction;
use rules::htaccess::{ErrorDocument, HeaderAction, HeaderOp};
use rules::rewrite::RewriteOutcome;
use rules::site::SiteRules;
use tracing::error;

pub use auth::PasswordFiles;
pub use htaccess::PendingErrorDocument;
pub use htaccess_files::HtaccessFiles;

use crate::http::response::{self, Body};
use crate::http::router::Route;
use crate::http::stat_memo::StatMemo;
use context::RequestContext;
use rate_limit::RateLimiter;

/// Rewrite passes before paddock gives up on a loop (Apache's default `LimitInternalRecursion`
/// is 10).
pub(super) const MAX_REWRITE_PASSES: usize = 10;

/// One site's compiled rules and the state they keep.
#[derive(Debug)]
pub struct CompiledSite {
    /// Read through [`CompiledSite::rules`], a copy per thread.
    rules: SiteRules,
    /// Names this set of rules for the per-thread copies.
    id: u64,
    limiter: RateLimiter,
    /// The rules did not compile (the master checked them, so this is a bug): every request is
    /// refused rather than served without its rules.
    broken: bool,
}

impl Default for CompiledSite {
    fn default() -> Self {
        Self::new(SiteRules::default())
    }
}

thread_local! {
    static SITE_RULES: replica::Replicas<SiteRules> = replica::Replicas::default();
}

impl CompiledSite {
    /// A site's rules as compiled (the front end builds these per generation with
    /// [`SiteRuleSets::compile`]; tools and fuzz targets build one directly).
    pub fn new(rules: SiteRules) -> Self {
        Self {
            rules,
            id: replica::next_id(),
            limiter: RateLimiter::default(),
            broken: false,
        }
    }

    /// The rules, as this thread's own copy (see [`replica`]).
    pub fn rules(&self) -> Rc<SiteRules> {
        SITE_RULES.with(|copies| copies.get(self.id, &self.rules))
    }
}

/// Every site's compiled rules, by site name; built once per configuration generation.
#[derive(Debug, Default)]
pub struct SiteRuleSets(HashMap<String, Arc<CompiledSite>>);

impl SiteRuleSets {
    pub fn compile(spec: &FrontendSpec) -> Self {
        let sites = spec.sites.iter().map(|site| {
            let compiled = match SiteRules::compile(&site.rules) {
                Ok(rules) => CompiledSite {
                    rules,
                    ..CompiledSite::default()
                },
                Err(e) => {
                    error!(site = %site.name, error = %e, "a site's rules do not compile; its requests are refused");
                    CompiledSite {
                        broken: true,
                        ..CompiledSite::default()
                    }
                }
            };
            (site.name.clone(), Arc::new(compiled))
        });
        Self(sites.collect())
    }

    pub fn site(&self, name: &str) -> Arc<CompiledSite> {
        self.0.get(name).cloned().unwrap_or_else(|| {
            Arc::new(CompiledSite {
                broken: true,
                ..CompiledSite::default()
            })
        })
    }
}

/// What the rules say before routing.
// Made once per request and taken apart at once: boxing the routing would cost an allocation
// per request to save a copy of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Verdict {
    /// Route the request (or the path a rewrite made of it) with these settings.
    Route(Routing),
    /// Answer with this.
    Respond(Response<Body>),
}

/// How to route and serve a request that the rules let through.
#[derive(Debug)]
pub struct Routing {
    /// The path and query to route instead of the request's (an internal rewrite).
    pub rewritten: Option<Uri>,
    /// Variables for the script (`SetEnv`, a rewrite's `E=`).
    pub env: Vec<(String, String)>,
    /// `php_value` / `php_flag` from `.htaccess`, for `PHP_VALUE`.
    pub php_values: Vec<(String, String)>,
    /// `false` where an `.htaccess` turned scripts off: a script is served as text.
    pub scripts: bool,
    /// `.htaccess` `Header` actions for the response (shared: a remembered verdict hands them
    /// to every request it serves).
    pub headers: Arc<[HeaderAction]>,
    /// `.htaccess` `ForceType` / `AddType` for a static file.
    pub content_type: Option<HeaderValue>,
    /// `.htaccess` `DirectoryIndex`: index files instead of the site's (empty: none).
    pub directory_index: Option<Vec<String>>,
    /// `.htaccess` `ErrorDocument`s, for paddock's own error responses.
    pub error_documents: Vec<(u16, ErrorDocument)>,
    /// The user an `.htaccess` Basic login admitted, for `REMOTE_USER`.
    pub user: Option<String>,
    /// The site's `headers` rules that match the request's path, found while the path was
    /// decoded for the access phase ([`add_headers`] then need not decode it again).
    pub header_rules: Option<MatchedHeaderRules>,
    /// What the rules found on disk, so that the router does not ask again.
    pub(crate) stats: StatMemo,
}

impl Routing {
    /// Everything but what was found on disk (the verdict cache's copy; a hit asks the disk
    /// again).
    fn clone_without_stats(&self) -> Self {
        let Self {
            rewritten,
            env,
            php_values,
            scripts,
            headers,
            content_type,
            directory_index,
            error_documents,
            user,
            header_rules,
            stats: _,
        } = self;
        Self {
            rewritten: rewritten.clone(),
            env: env.clone(),
            php_values: php_values.clone(),
            scripts: *scripts,
            headers: headers.clone(),
            content_type: content_type.clone(),
            directory_index: directory_index.clone(),
            error_documents: error_documents.clone(),
            user: user.clone(),
            header_rules: *header_rules,
            stats: StatMemo::default(),
        }
    }
}

/// Two routings are the same when they serve the same way; what each found on disk is not
/// compared (it is the same disk, asked at another moment).
impl PartialEq for Routing {
    fn eq(&self, other: &Self) -> bool {
        let Self {
            rewritten,
            env,
            php_values,
            scripts,
            headers,
            content_type,
            directory_index,
            error_documents,
            user,
            header_rules,
            stats: _,
        } = self;
        *rewritten == other.rewritten
            && *env == other.env
            && *php_values == other.php_values
            && *scripts == other.scripts
            && *headers == other.headers
            && *content_type == other.content_type
            && *directory_index == other.directory_index
            && *error_documents == other.error_documents
            && *user == other.user
            && *header_rules == other.header_rules
    }
}

impl Default for Routing {
    fn default() -> Self {
        Self {
            rewritten: None,
            env: Vec::new(),
            php_values: Vec::new(),
            scripts: true,
            headers: Arc::new([]),
            content_type: None,
            directory_index: None,
            error_documents: Vec::new(),
            user: None,
            header_rules: None,
            stats: StatMemo::default(),
        }
    }
}

/// A response that ends the request early (boxed: it is large, and the common case is none).
type Refusal = Box<Response<Body>>;

/// Who is asking, as far as access rules care.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub ip: IpAddr,
    pub https: bool,
}

/// The files rules read: htpasswd files and `.htaccess` files, each parsed once per version.
#[derive(Debug, Default)]
pub struct RuleFiles {
    pub passwords: PasswordFiles,
    pub htaccess: HtaccessFiles,
}

/// The access phase and the rewrites: the site's native rules, then its `.htaccess` files
/// (or the outcome of an earlier request whose inputs have not changed: [`verdict_cache`]).
pub fn before_routing(
    compiled: &CompiledSite,
    site: &SiteSpec,
    parts: &Parts,
    client: Client,
    files: &RuleFiles,
) -> Verdict {
    verdict_cache::before_routing(compiled, site, parts, client, files)
}

/// [`before_routing`] in full: the verdict, and what the evaluation read besides the request's
/// method, path, query and scheme (`None`: nothing to remember it by — a broken site, a path
/// that does not decode, a refusal).
fn evaluate(
    compiled: &CompiledSite,
    site: &SiteSpec,
    parts: &Parts,
    client: Client,
    files: &RuleFiles,
) -> (Verdict, Option<verdict_cache::Reads>) {
    if compiled.broken {
        let refusal = response::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this site's configuration is not usable",
        );
        return (Verdict::Respond(refusal), None);
    }
    let rules = compiled.rules();
    // A path that does not decode is the router's 400; no rule can match it.
    let Some(path) = decoded_path(parts.uri.path()) else {
        return (Verdict::Route(Routing::default()), None);
    };
    let ctx = RequestContext::new(site, parts, client);
    if let Some(refusal) = access(compiled, parts, &path, client, &files.passwords, &ctx) {
        return (Verdict::Respond(refusal), None);
    }
    let header_rules = MatchedHeaderRules::find(&rules, &path);
    let query = parts.uri.query().map(str::to_string);
    let (path, query, mut changed) = match native_rewrites(compiled, &ctx, path, query) {
        Ok(rewritten) => rewritten,
        Err(response) => return (Verdict::Respond(*response), None),
    };
    let mut routing = Routing::default();
    let (path, query) = if rules.htaccess {
        let applied = htaccess::apply(
            compiled,
            &files.htaccess,
            site,
            parts,
            client,
            &files.passwords,
            &ctx,
            path,
            query,
        );
        match applied {
            Ok(outcome) => {
                changed |= outcome.changed;
                routing = outcome.routing;
                (outcome.path, outcome.query)
            }
            Err(response) => return (Verdict::Respond(*response), None),
        }
    } else {
        (path, query)
    };
    let (stats, reads) = ctx.into_parts();
    routing.stats = stats;
    routing.header_rules = header_rules;
    if changed {
        // Apache 2.4.60+ refuses a rewritten query holding a blank or a control character
        // (AH10411: a decoded capture such as `%20` put into the query) with 403.
        if query
            .as_deref()
            .is_some_and(|q| q.chars().any(|c| c == ' ' || c.is_control()))
        {
            return (Verdict::Respond(denied(403)), None);
        }
        match encode_target(&path, query.as_deref()) {
            Some(uri) => routing.rewritten = Some(uri),
            None => {
                let error = response::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "a rewrite rule produced an invalid path",
                );
                return (Verdict::Respond(error), None);
            }
        }
    }
    (Verdict::Route(routing), Some(reads))
}

/// The site's own `rewrite` rules: the path and query to go on with, and whether they changed.
fn native_rewrites(
    compiled: &CompiledSite,
    ctx: &RequestContext<'_>,
    path: String,
    query: Option<String>,
) -> Result<(String, Option<String>, bool), Refusal> {
    let rules = compiled.rules();
    let (mut current, mut query, mut rewritten) = (path, query, false);
    if rules.rewrites.rules.is_empty() {
        return Ok((current, query, false));
    }
    let mut settled = false;
    for _ in 0..MAX_REWRITE_PASSES {
        match rules.rewrites.apply(&current, query.as_deref(), ctx) {
            RewriteOutcome::Unchanged { .. } => {
                settled = true;
                break;
            }
            RewriteOutcome::Rewritten { path, query: q, .. } => {
                if let Some(status) = rules.denied(&path) {
                    return Err(Box::new(denied(status)));
                }
                let same = path == current && q == query;
                (current, query, rewritten) = (path, q, true);
                // Server-context rules run once (Apache runs them once per request); they only
                // run again to reach a fixed point when a `last = false` rule chained on.
                if same || rules.rewrites.rules.iter().all(|r| r.flags.last) {
                    settled = true;
                    break;
                }
            }
            RewriteOutcome::Redirect { status, location } => {
                return Err(Box::new(redirect(status, &location)))
            }
            RewriteOutcome::Forbidden => return Err(Box::new(denied(403))),
            RewriteOutcome::Gone => {
                return Err(Box::new(response::error(StatusCode::GONE, "gone")))
            }
        }
    }
    if !settled {
        ctx.reads().refuse("the rewrite loop limit");
    }
    Ok((current, query, rewritten))
}

/// `deny`, `clients`, `rate_limit`, `auth`, in that order: the first refusal answers. What
/// the verdict cache must know is noted in `ctx`.
fn access(
    compiled: &CompiledSite,
    parts: &Parts,
    path: &str,
    client: Client,
    passwords: &PasswordFiles,
    ctx: &RequestContext<'_>,
) -> Option<Response<Body>> {
    let rules = compiled.rules();
    if let Some(status) = rules.denied(path) {
        return Some(denied(status));
    }
    for rule in rules.clients.iter().filter(|r| r.pattern.matches(path)) {
        ctx.reads().client_address = true;
        if !rule.filter.admits(client.ip) {
            return Some(denied(rule.status));
        }
    }
    let now = Instant::now();
    for rule in &rules.rate_limits {
        if !rule.applies_to(parts.method.as_str(), path) {
            continue;
        }
        // Each request takes from a bucket: the same request may be refused the next time.
        ctx.reads().refuse("a rate limit");
        if let Some(wait) = compiled.limiter.check(rule, client.ip, now) {
            let mut response = response::error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests from your address; try again later",
            );
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
            return Some(response);
        }
    }
    for rule in rules.auth.iter().filter(|r| r.pattern.matches(path)) {
        ctx.reads().refuse("Basic auth");
        let admitted = passwords
            .get(&rule.htpasswd)
            .and_then(|file| auth::authenticated(&parts.headers, &file, &rule.users));
        if admitted.is_none() {
            return Some(auth::challenge(&rule.realm));
        }
    }
    None
}

/// After routing: the script or file that was chosen is checked against `deny` and
/// `no_scripts`. `Some` replaces the route's answer.
pub fn check_target(
    compiled: &CompiledSite,
    routing: &Routing,
    route: &Route,
) -> Option<TargetCheck> {
    let rules = compiled.rules();
    match route {
        Route::Script(target) => {
            if let Some(status) = rules.denied(&target.name) {
                return Some(TargetCheck::Respond(denied(status)));
            }
            // `php_flag engine off`, `SetHandler none`: the file is served, never run.
            let from_htaccess = (!routing.scripts).then_some(NoScriptsAction::Static);
            match rules.no_scripts(&target.name).or(from_htaccess)? {
                NoScriptsAction::Deny => Some(TargetCheck::Respond(response::error(
                    StatusCode::FORBIDDEN,
                    "scripts do not run here",
                ))),
                // A script's file followed by more path is nothing that can be served.
                NoScriptsAction::Static if !target.path_info.is_empty() => {
                    Some(TargetCheck::Respond(response::error(
                        StatusCode::NOT_FOUND,
                        "nothing here by that name",
                    )))
                }
                NoScriptsAction::Static => Some(TargetCheck::ServeAsText),
            }
        }
        _ => None,
    }
}

/// The refusal for a raw path that a `deny` rule covers (a worker's local redirect).
pub fn denied_path(compiled: &CompiledSite, raw_path: &str) -> Option<Response<Body>> {
    let path = decoded_path(raw_path)?;
    compiled.rules().denied(&path).map(denied)
}

/// What [`check_target`] decided.
#[derive(Debug)]
pub enum TargetCheck {
    Respond(Response<Body>),
    /// Serve the script's file as plain text with `nosniff`, never run it.
    ServeAsText,
}

/// Which of a site's `headers` rules match a path (a bit per rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchedHeaderRules(u64);

impl MatchedHeaderRules {
    /// `None` when the site has more rules than bits: they are matched when the response goes.
    fn find(rules: &SiteRules, decoded_path: &str) -> Option<Self> {
        if rules.headers.len() > 64 {
            return None;
        }
        let bits = rules
            .headers
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.pattern.matches(decoded_path))
            .fold(0, |bits, (i, _)| bits | 1 << i);
        Some(Self(bits))
    }

    fn contains(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }
}

/// The site's `headers` rules for the request's path (`matched`, when the rules phase found
/// them).
pub fn add_headers(
    compiled: &CompiledSite,
    raw_path: &str,
    matched: Option<MatchedHeaderRules>,
    response: &mut Response<Body>,
) {
    let rules = compiled.rules();
    if rules.headers.is_empty() {
        return;
    }
    let matched = match matched {
        Some(matched) => matched,
        None => {
            let Some(matched) =
                decoded_path(raw_path).and_then(|path| MatchedHeaderRules::find(&rules, &path))
            else {
                return add_headers_unmatched(&rules, raw_path, response);
            };
            matched
        }
    };
    let applying = rules
        .headers
        .iter()
        .enumerate()
        .filter(|(i, _)| matched.contains(*i));
    for (_, rule) in applying {
        apply_header_rule(rule, response);
    }
}

/// [`add_headers`] for a site with more rules than [`MatchedHeaderRules`] holds.
fn add_headers_unmatched(rules: &SiteRules, raw_path: &str, response: &mut Response<Body>) {
    let Some(path) = decoded_path(raw_path) else {
        return;
    };
    for rule in rules.headers.iter().filter(|r| r.pattern.matches(&path)) {
        apply_header_rule(rule, response);
    }
}

fn apply_header_rule(rule: &rules::site::HeaderRule, response: &mut Response<Body>) {
    let headers = response.headers_mut();
    for name in &rule.unset {
        headers.remove(name);
    }
    for (name, value) in &rule.set {
        headers.insert(name.clone(), value.clone());
    }
}

/// Marks a response that is a file from the site's root (not a script's output), so that an
/// `.htaccess` content type applies to it.
#[derive(Debug, Clone, Copy)]
pub struct ServedFile;

/// What the `.htaccess` files said about the response: `Header` actions (those without
/// `always` only on 2xx, as Apache's default table) and, for a static file, its content type.
pub fn finish_response(routing: &Routing, response: &mut Response<Body>) {
    let is_file = response.extensions().get::<ServedFile>().is_some();
    if is_file && response.status().is_success() {
        if let Some(value) = &routing.content_type {
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, value.clone());
        }
    }
    let success = response.status().is_success();
    for action in routing.headers.iter().filter(|a| a.always || success) {
        let name = action.header.clone();
        let headers = response.headers_mut();
        if action.op == HeaderOp::Unset {
            headers.remove(&name);
            continue;
        }
        let Some(value) = action.header_value.clone() else {
            continue;
        };
        match action.op {
            HeaderOp::Set => {
                headers.insert(name, value);
            }
            HeaderOp::Add => {
                headers.append(name, value);
            }
            HeaderOp::SetIfEmpty => {
                if !headers.contains_key(&name) {
                    headers.insert(name, value);
                }
            }
            HeaderOp::Append | HeaderOp::Merge => {
                let existing = headers.get(&name).and_then(|v| v.to_str().ok());
                let merged = match existing {
                    None => Some(value),
                    Some(old)
                        if action.op == HeaderOp::Merge
                            && old.split(',').any(|v| v.trim() == &*action.value) =>
                    {
                        None
                    }
                    Some(old) => HeaderValue::from_str(&format!("{old}, {}", action.value)).ok(),
                };
                if let Some(merged) = merged {
                    headers.insert(name, merged);
                }
            }
            HeaderOp::Unset => {}
        }
    }
}

/// The decoded, normalised path that rules match (`/a/b`, with the request's trailing slash).
pub fn decoded_path(raw_path: &str) -> Option<String> {
    let path = cgi::decode_url_path(raw_path).ok()?;
    let mut joined = String::with_capacity(raw_path.len());
    for segment in path.segments() {
        joined.push('/');
        joined.push_str(segment);
    }
    if joined.is_empty() || path.trailing_slash() {
        joined.push('/');
    }
    Some(joined)
}

pub(super) fn denied(status: u16) -> Response<Body> {
    if status == 404 {
        response::error(StatusCode::NOT_FOUND, "nothing here by that name")
    } else {
        response::error(StatusCode::FORBIDDEN, "access to this path is not allowed")
    }
}

pub(super) fn redirect(status: u16, location: &str) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
    let mut response = response::error(status, "moved");
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(http::header::LOCATION, value);
    }
    response
}

/// A rewritten decoded path and raw query as a request target for the router (which decodes
/// the path again).
fn encode_target(path: &str, query: Option<&str>) -> Option<Uri> {
    use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
    /// What a path segment may not hold literally.
    const PATH: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}');
    let mut target = utf8_percent_encode(path, PATH).to_string();
    if let Some(query) = query {
        target.push('?');
        target.push_str(query);
    }
    target.parse().ok()
}

#[cfg(test)]
mod tests;
