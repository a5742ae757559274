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
//! matches them.

mod auth;
mod context;
mod rate_limit;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::request::Parts;
use http::{Response, StatusCode, Uri};
use protocol::cgi;
use protocol::control::{FrontendSpec, SiteSpec};
use protocol::site_rules::NoScriptsAction;
use rules::rewrite::RewriteOutcome;
use rules::site::SiteRules;
use tracing::error;

pub use auth::PasswordFiles;

use crate::response::{self, Body};
use crate::router::Route;
use context::RequestContext;
use rate_limit::RateLimiter;

/// Rewrite passes before paddock gives up on a loop (Apache's default `LimitInternalRecursion`
/// is 10).
const MAX_REWRITE_PASSES: usize = 10;

/// One site's compiled rules and the state they keep.
#[derive(Debug, Default)]
pub struct CompiledSite {
    pub rules: SiteRules,
    limiter: RateLimiter,
    /// The rules did not compile (the master checked them, so this is a bug): every request is
    /// refused rather than served without its rules.
    broken: bool,
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
#[derive(Debug)]
pub enum Verdict {
    /// Route the request as it is.
    Continue,
    /// Route this path and query instead (an internal rewrite).
    Rewritten(Uri),
    /// Answer with this.
    Respond(Response<Body>),
}

/// Who is asking, as far as access rules care.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub ip: IpAddr,
    pub https: bool,
}

/// The access phase and the rewrites.
pub fn before_routing(
    compiled: &CompiledSite,
    site: &SiteSpec,
    parts: &Parts,
    client: Client,
    passwords: &PasswordFiles,
) -> Verdict {
    if compiled.broken {
        return Verdict::Respond(response::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this site's configuration is not usable",
        ));
    }
    let rules = &compiled.rules;
    // A path that does not decode is the router's 400; no rule can match it.
    let Some(path) = decoded_path(parts.uri.path()) else {
        return Verdict::Continue;
    };
    if let Some(refusal) = access(compiled, parts, &path, client, passwords) {
        return Verdict::Respond(refusal);
    }
    if rules.rewrites.rules.is_empty() {
        return Verdict::Continue;
    }
    let ctx = RequestContext::new(site, parts, client);
    let mut current = path;
    let mut query = parts.uri.query().map(str::to_string);
    let mut rewritten = false;
    for _ in 0..MAX_REWRITE_PASSES {
        match rules.rewrites.apply(&current, query.as_deref(), &ctx) {
            RewriteOutcome::Unchanged { .. } => break,
            RewriteOutcome::Rewritten { path, query: q, .. } => {
                if let Some(status) = rules.denied(&path) {
                    return Verdict::Respond(denied(status));
                }
                let same = path == current && q == query;
                (current, query, rewritten) = (path, q, true);
                // Server-context rules run once (Apache runs them once per request); they only
                // run again to reach a fixed point when a `last = false` rule chained on.
                if same || rules.rewrites.rules.iter().all(|r| r.flags.last) {
                    break;
                }
            }
            RewriteOutcome::Redirect { status, location } => {
                return Verdict::Respond(redirect(status, &location))
            }
            RewriteOutcome::Forbidden => return Verdict::Respond(denied(403)),
            RewriteOutcome::Gone => {
                return Verdict::Respond(response::error(StatusCode::GONE, "gone"))
            }
        }
    }
    if !rewritten {
        return Verdict::Continue;
    }
    match encode_target(&current, query.as_deref()) {
        Some(uri) => Verdict::Rewritten(uri),
        None => Verdict::Respond(response::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "a rewrite rule produced an invalid path",
        )),
    }
}

/// `deny`, `clients`, `rate_limit`, `auth`, in that order: the first refusal answers.
fn access(
    compiled: &CompiledSite,
    parts: &Parts,
    path: &str,
    client: Client,
    passwords: &PasswordFiles,
) -> Option<Response<Body>> {
    let rules = &compiled.rules;
    if let Some(status) = rules.denied(path) {
        return Some(denied(status));
    }
    if let Some(rule) = rules
        .clients
        .iter()
        .find(|r| r.pattern.matches(path) && !r.filter.admits(client.ip))
    {
        return Some(denied(rule.status));
    }
    let now = Instant::now();
    for rule in &rules.rate_limits {
        if !rule.applies_to(parts.method.as_str(), path) {
            continue;
        }
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
pub fn check_target(compiled: &CompiledSite, route: &Route) -> Option<TargetCheck> {
    let rules = &compiled.rules;
    match route {
        Route::Script(target) => {
            if let Some(status) = rules.denied(&target.name) {
                return Some(TargetCheck::Respond(denied(status)));
            }
            match rules.no_scripts(&target.name)? {
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
    compiled.rules.denied(&path).map(denied)
}

/// What [`check_target`] decided.
#[derive(Debug)]
pub enum TargetCheck {
    Respond(Response<Body>),
    /// Serve the script's file as plain text with `nosniff`, never run it.
    ServeAsText,
}

/// The site's `headers` rules for the request's path.
pub fn add_headers(compiled: &CompiledSite, raw_path: &str, response: &mut Response<Body>) {
    let rules = &compiled.rules;
    if rules.headers.is_empty() {
        return;
    }
    let Some(path) = decoded_path(raw_path) else {
        return;
    };
    for rule in rules.headers.iter().filter(|r| r.pattern.matches(&path)) {
        for name in &rule.unset {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                response.headers_mut().remove(name);
            }
        }
        for (name, value) in &rule.set {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                response.headers_mut().insert(name, value);
            }
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

fn denied(status: u16) -> Response<Body> {
    if status == 404 {
        response::error(StatusCode::NOT_FOUND, "nothing here by that name")
    } else {
        response::error(StatusCode::FORBIDDEN, "access to this path is not allowed")
    }
}

fn redirect(status: u16, location: &str) -> Response<Body> {
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
