//! A chain of compiled `.htaccess` files (document root first, then each deeper directory that
//! has one) applied to one request, with Apache 2.4's merge of per-directory configuration.
//!
//! Apache merges the directories from the root down, then the `<Files>`/`<FilesMatch>` sections
//! of all those files (root's first) that match the file's name; each module merges in its own
//! way, and paddock follows each:
//! - mod_authz_core (`Require`): the last scope with `Require` lines replaces what came before
//!   (`AuthMerging Off`, the default); `AuthMerging And|Or` combines it with the inherited tree.
//!   The document root starts from the site's `Require all granted`.
//! - mod_access_compat (`Order`/`Allow`/`Deny`/`Satisfy`): no merge at all; the last scope that
//!   uses any of them decides alone (so a child's lone `Allow from` re-opens a parent's `Deny`, as
//!   in Apache).
//! - `Satisfy Any`: passing the host check is enough; otherwise both checks must pass.
//! - mod_rewrite: only the deepest file with rewrite directives counts (its engine state and its
//!   `RewriteOptions` are inherited when it does not set them); a parent's rules run only under
//!   `RewriteOptions Inherit` (after the child's), `InheritBefore`, or a parent's
//!   `InheritDown[Before]`, and then relative to the child's directory, as Apache does.
//!   `RewriteBase` is not inherited (Apache ≥ 2.4.4) unless `MergeBase`.
//! - mod_setenvif runs before the access checks (`Deny from env=bad_bot` sees `SetEnvIf`),
//!   mod_env after them (its `SetEnv` wins in the script's environment).
//! - mod_alias: the deepest scope's `Redirect`s are tried first; the first match wins.
//! - mod_headers: every scope's actions, root first. `ErrorDocument`, `DirectoryIndex`,
//!   `SetHandler`, `ForceType`, `php_value`: the deepest setting wins.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::rewrite::{escape_location, origin, RewriteContext, RewriteSet};

use super::access::{combine, Authz, Facts, Require};
use super::compile::{
    Attribute, AuthMerging, DirRules, ErrorDocument, Handler, HeaderAction, MimeChange,
    RedirectFrom, RewriteOptions, Scope,
};

/// The request as the `.htaccess` rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Decoded and normalised URL path (`/wp-content/uploads/x.php`).
    pub path: &'a str,
    /// The raw query, for redirects.
    pub query: Option<&'a str>,
    /// Upper-case (`GET`).
    pub method: &'a str,
    /// The client's address as paddock resolved it (trusted proxies applied).
    pub client: IpAddr,
    /// A user whose password the caller has checked against the file an earlier
    /// [`Access::NeedsAuth`] named; `None` on the first call.
    pub user: Option<&'a str>,
    /// The last component of the file the request maps to, after PATH_INFO is split off
    /// (`x.php` for `/x.php/extra`); `None` uses the path's last segment.
    pub file_name: Option<&'a str>,
}

impl Request<'_> {
    fn file_name(&self) -> &str {
        self.file_name
            .unwrap_or_else(|| self.path.rsplit('/').next().unwrap_or_default())
    }
}

/// The access decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Granted,
    /// 403, or 500 where Apache answers 500 (a file that does not parse, `Require valid-user`
    /// with no `AuthType`, `AuthType Basic` without `AuthName` or `AuthUserFile`).
    Denied(u16),
    /// 401 with this challenge, unless the request carries Basic credentials that the caller
    /// verifies against `user_file`: then it asks again with [`Request::user`] set, and a
    /// second `NeedsAuth` means 401 (a valid user who is not allowed, as Apache answers).
    NeedsAuth(AuthChallenge),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthChallenge {
    pub realm: String,
    /// `AuthUserFile` as written: the caller resolves it (Apache: relative to the server root).
    pub user_file: String,
}

impl AuthChallenge {
    /// The `WWW-Authenticate` value.
    pub fn www_authenticate(&self) -> String {
        let realm: String = self
            .realm
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        format!("Basic realm=\"{realm}\"")
    }
}

/// The scopes that apply, in Apache's merge order: each file's top level, root first, then
/// each file's matching `<Files>` sections.
fn scopes<'r>(chain: &[&'r DirRules], file_name: &str) -> Vec<&'r Scope> {
    let mut scopes: Vec<&Scope> = chain.iter().map(|level| &level.main).collect();
    for level in chain {
        scopes.extend(
            level
                .files
                .iter()
                .filter(|(matcher, _)| matcher.matches(file_name))
                .map(|(_, scope)| scope),
        );
    }
    scopes
}

/// Who may see the request: mod_access_compat, mod_authz_core and Basic authentication, in
/// the order of Apache's `ap_process_request_internal`.
pub fn check_access(chain: &[&DirRules], req: &Request<'_>, ctx: &dyn RewriteContext) -> Access {
    if let Some(denial) = chain.iter().find_map(|level| level.denial()) {
        return Access::Denied(denial.status);
    }
    let scopes = scopes(chain, req.file_name());
    let env = set_env_if(&scopes, req, ctx);
    let facts = |user| Facts {
        method: req.method,
        client: req.client,
        user,
        env: &env,
        ctx,
    };
    let compat = scopes.iter().rev().find_map(|s| s.compat.as_ref());
    let host_ok = compat.is_none_or(|c| c.admits(&facts(None)));
    let satisfy_any = compat.is_some_and(|c| c.satisfy_any(req.method));
    match (satisfy_any, host_ok) {
        (true, true) => return Access::Granted,
        (false, false) => return Access::Denied(403),
        _ => {}
    }
    let trees = require_trees(&scopes);
    match authz(&trees, &facts(None)) {
        Authz::Granted => return Access::Granted,
        Authz::Denied | Authz::Neutral => return Access::Denied(403),
        Authz::DeniedNoUser => {}
    }
    let last = |get: fn(&Scope) -> Option<&String>| scopes.iter().rev().find_map(|s| get(s));
    let basic = scopes.iter().rev().find_map(|s| s.auth_basic) == Some(true);
    let (Some(realm), Some(user_file), true) = (
        last(|s| s.auth_name.as_ref()),
        last(|s| s.user_file.as_ref()),
        basic,
    ) else {
        return Access::Denied(500);
    };
    let challenge = AuthChallenge {
        realm: realm.clone(),
        user_file: user_file.clone(),
    };
    match req.user {
        Some(user) if authz(&trees, &facts(Some(user))) == Authz::Granted => Access::Granted,
        _ => Access::NeedsAuth(challenge),
    }
}

/// The `Require` lists that make up the merged tree: from the last scope with `AuthMerging Off`
/// (or none) on, each combined with what precedes it.
fn require_trees<'r>(scopes: &[&'r Scope]) -> Vec<(AuthMerging, &'r [Require])> {
    let mut trees = Vec::new();
    for scope in scopes {
        if let Some(list) = &scope.require {
            let merging = scope.auth_merging.unwrap_or(AuthMerging::Off);
            if merging == AuthMerging::Off {
                trees.clear();
            }
            trees.push((merging, list.as_slice()));
        }
    }
    trees
}

fn authz(trees: &[(AuthMerging, &[Require])], facts: &Facts<'_>) -> Authz {
    let method = facts.method;
    // A scope's lines form an implicit <RequireAny>, checked as a member of a RequireAll (the
    // top level): when none of them counts for the method, it grants.
    let scope = |list: &[Require], in_all: bool| {
        if !list.iter().any(|r| r.applies(method)) {
            return if in_all {
                Authz::Granted
            } else {
                Authz::Neutral
            };
        }
        combine(false, list.iter().map(|r| r.check(false, facts)))
    };
    // The site's own `Require all granted` on the document root.
    let mut result = Authz::Granted;
    for (merging, list) in trees {
        result = match merging {
            AuthMerging::Off => scope(list, true),
            AuthMerging::And => combine(true, [result, scope(list, true)].into_iter()),
            AuthMerging::Or => combine(false, [result, scope(list, false)].into_iter()),
        };
    }
    result
}

/// The rewrite rules that run for `path` (decoded), whose file is in the chain's last
/// directory: those of the deepest file with rewrite directives, when its engine is on, with
/// what it inherits. `None` too when `path` names that file's directory without its final `/`:
/// Apache's mod_rewrite leaves that to mod_dir's redirect (unless `RewriteOptions AllowNoSlash`).
///
/// Apache answers 403 rather than run the rules when [`Options::rewrites_allowed`] says no
/// (see [`effective`]).
///
/// The caller runs [`RewriteSet::apply`]; when the path changed and the outcome does not say
/// `end`, it checks access for the new path and asks again with the new path's chain (Apache's
/// internal redirect), within a round limit; after `end`, no file's rules run again.
pub fn rewrite_set<'r>(chain: &[&'r DirRules], path: &str) -> Option<Cow<'r, RewriteSet>> {
    let mut engine = false;
    let mut options = RewriteOptions::default();
    let mut set: Option<Cow<'r, RewriteSet>> = None;
    // mod_rewrite's `config_perdir_merge`, file by file.
    for level in chain {
        let Some(conf) = &level.rewrite else {
            continue;
        };
        let parent_options = options;
        options = conf.options.unwrap_or(parent_options);
        engine = conf.engine.unwrap_or(engine);
        let mut merged = Cow::Borrowed(&conf.set);
        if options.merge_base && conf.set.base.is_none() {
            if let Some(base) = set.as_ref().and_then(|s| s.base.clone()) {
                merged.to_mut().base = Some(base);
            }
        }
        if let Some(parent) = set.filter(|p| !p.rules.is_empty()) {
            let pushed = !options.ignore_inherit;
            if options.inherit || (pushed && parent_options.inherit_down) {
                merged.to_mut().rules.extend(parent.rules.iter().cloned());
            } else if options.inherit_before || (pushed && parent_options.inherit_down_before) {
                merged
                    .to_mut()
                    .rules
                    .splice(0..0, parent.rules.iter().cloned());
            }
        }
        set = Some(merged);
    }
    let set = set.filter(|s| engine && !s.rules.is_empty())?;
    let dir = set.directory.as_deref().unwrap_or("/");
    if !options.allow_no_slash && dir.len() > 1 && path == dir.trim_end_matches('/') {
        return None;
    }
    Some(set)
}

/// Everything else the files say about a request that may be served.
#[derive(Debug, Clone, Default)]
pub struct Effective<'r> {
    /// `Redirect`/`RedirectMatch`: answer with this instead of serving.
    pub redirect: Option<RedirectTo>,
    /// Response header actions, in the order to apply them.
    pub headers: Vec<&'r HeaderAction>,
    /// Per status, the deepest `ErrorDocument`.
    pub error_documents: BTreeMap<u16, &'r ErrorDocument>,
    /// `DirectoryIndex` (empty: `disabled`); `None`: the site's own.
    pub directory_index: Option<&'r [String]>,
    /// Whether a script here may run: `false` under `php_flag engine off`, a non-PHP
    /// `SetHandler`, or a non-PHP `AddHandler`/`AddType` (or `RemoveHandler`/`RemoveType`) for
    /// the file's extension. The caller then serves the file as static (with `nosniff`) or
    /// denies it, per the site's `no_scripts` action.
    pub scripts: bool,
    /// `ForceType`, else the `AddType` for the file's extensions.
    pub content_type: Option<&'r str>,
    /// `php_value`/`php_flag` pairs (the deepest value of each name), for `PHP_VALUE`.
    pub php_values: Vec<(&'r str, &'r str)>,
    /// `SetEnvIf`, then `SetEnv`/`UnsetEnv`, for the script's environment.
    pub env: Vec<(String, String)>,
    pub options: Options,
}

/// `Options` as the files leave them; `None`: not said, the site's policy applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub indexes: Option<bool>,
    pub follow_symlinks: Option<bool>,
    pub symlinks_if_owner_match: Option<bool>,
    pub exec_cgi: Option<bool>,
    pub multiviews: Option<bool>,
    pub includes: Option<bool>,
}

impl Options {
    /// Everything off (`Options None`, and what an absolute `Options` line starts from).
    const NONE: Self = Self {
        indexes: Some(false),
        follow_symlinks: Some(false),
        symlinks_if_owner_match: Some(false),
        exec_cgi: Some(false),
        multiviews: Some(false),
        includes: Some(false),
    };

    /// Whether per-directory rewrite rules may run: Apache answers 403 instead when a file
    /// turned both `FollowSymLinks` and `SymLinksIfOwnerMatch` off (a rewrite could reach
    /// what a symbolic link may not).
    pub fn rewrites_allowed(&self) -> bool {
        self.follow_symlinks != Some(false) || self.symlinks_if_owner_match == Some(true)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTo {
    pub status: u16,
    /// The absolute `Location`; `None` for a status outside 3xx (`Redirect gone`: 410).
    pub location: Option<String>,
}

/// What the chain says about the request besides access and rewrites.
pub fn effective<'r>(
    chain: &[&'r DirRules],
    req: &Request<'_>,
    ctx: &dyn RewriteContext,
) -> Effective<'r> {
    let name = req.file_name();
    let scopes = scopes(chain, name);
    let mut out = Effective {
        redirect: redirect(&scopes, req, ctx),
        scripts: true,
        ..Effective::default()
    };
    let mut types: HashMap<&str, Option<&str>> = HashMap::new();
    let mut handlers: HashMap<&str, Option<&Handler>> = HashMap::new();
    let mut force_type = None;
    let mut handler = None;
    let mut engine = None;
    for scope in &scopes {
        out.headers.extend(&scope.headers);
        for (code, doc) in &scope.error_documents {
            out.error_documents.insert(*code, doc);
        }
        if let Some(list) = &scope.directory_index {
            out.directory_index = Some(list);
        }
        for change in &scope.mime {
            match change {
                MimeChange::AddType(t, exts) => {
                    types.extend(exts.iter().map(|e| (e.as_str(), Some(t.as_str()))))
                }
                MimeChange::RemoveType(exts) => {
                    types.extend(exts.iter().map(|e| (e.as_str(), None)))
                }
                MimeChange::AddHandler(h, exts) => {
                    handlers.extend(exts.iter().map(|e| (e.as_str(), Some(h))))
                }
                MimeChange::RemoveHandler(exts) => {
                    handlers.extend(exts.iter().map(|e| (e.as_str(), None)))
                }
            }
        }
        force_type = scope.force_type.as_ref().or(force_type);
        handler = scope.handler.as_ref().or(handler);
        engine = scope.engine.or(engine);
        for (key, value) in &scope.php {
            out.php_values.retain(|(k, _)| k != key);
            out.php_values.push((key, value));
        }
        for line in &scope.options {
            apply_options(&mut out.options, line);
        }
    }
    // mod_mime: every extension after the first dot, in order; the last with a type wins.
    let lower = name.to_ascii_lowercase();
    let exts: Vec<&str> = lower.split('.').skip(1).collect();
    out.content_type = match force_type {
        Some(forced) => forced.as_deref(),
        None => exts
            .iter()
            .rev()
            .find_map(|e| types.get(e).copied().flatten()),
    };
    let last = exts.last().copied().unwrap_or_default();
    out.scripts = engine != Some(false)
        && match handler {
            Some(h) => *h == Handler::Php,
            None => {
                let by_handler = handlers
                    .get(last)
                    .map(|h| h.is_some_and(|h| *h == Handler::Php));
                let by_type = types
                    .get(last)
                    .map(|t| t.is_some_and(|t| t.contains("php")));
                by_handler.or(by_type).unwrap_or(true)
            }
        };
    out.env = environment(&scopes, req, ctx);
    out
}

fn redirect(scopes: &[&Scope], req: &Request<'_>, ctx: &dyn RewriteContext) -> Option<RedirectTo> {
    let path = req.path;
    let (status, target) = scopes
        .iter()
        .rev()
        .flat_map(|s| &s.redirects)
        .find_map(|r| {
            let target = match &r.from {
                RedirectFrom::Prefix(from) => {
                    let rest = path.strip_prefix(from.as_str())?;
                    if !(from.ends_with('/') || rest.is_empty() || rest.starts_with('/')) {
                        return None;
                    }
                    r.to.as_ref()
                        .map(|to| format!("{to}{}", escape_location(rest)))
                }
                RedirectFrom::Regex(regex) => {
                    let captures = regex.captures(path)?;
                    r.to.as_ref().map(|to| {
                        let mut out = String::new();
                        captures.expand(&dollar_digits(to), &mut out);
                        // The path is escaped; a query or fragment the target has is kept.
                        let split = out.find(['?', '#']).unwrap_or(out.len());
                        let (target, rest) = out.split_at(split);
                        format!("{}{rest}", escape_location(target))
                    })
                }
            };
            Some((r.status, target))
        })?;
    let location = target.map(|mut location| {
        if location.starts_with('/') {
            location = origin(ctx) + &location;
        }
        if let Some(query) = req.query.filter(|_| !location.contains('?')) {
            location.push('?');
            location.push_str(query);
        }
        location
    });
    Some(RedirectTo { status, location })
}

/// Apache's `$N` as the regex crate's `${N}` (so `$1x` stays group 1 followed by `x`).
fn dollar_digits(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('$', Some(d)) if d.is_ascii_digit() => {
                out.push_str(&format!("${{{d}}}"));
                chars.next();
            }
            ('$', _) => out.push_str("$$"),
            ('\\', Some('$')) => {
                out.push_str("$$");
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

fn apply_options(options: &mut Options, line: &super::compile::OptionsLine) {
    if line.absolute {
        *options = Options::NONE;
    }
    for (word, on) in &line.words {
        let on = Some(*on);
        match word.as_str() {
            // Everything but MultiViews and SymLinksIfOwnerMatch, as Apache's OPT_ALL.
            "all" => {
                options.indexes = on;
                options.follow_symlinks = on;
                options.exec_cgi = on;
                options.includes = on;
            }
            "none" => *options = Options::NONE,
            "indexes" => options.indexes = on,
            "followsymlinks" => options.follow_symlinks = on,
            "symlinksifownermatch" => options.symlinks_if_owner_match = on,
            "execcgi" => options.exec_cgi = on,
            "multiviews" => options.multiviews = on,
            "includes" | "includesnoexec" => options.includes = on,
            _ => {}
        }
    }
}

/// `SetEnvIf`, in scope order, as mod_setenvif runs it before the access checks. A header that
/// is absent is tested as the variable of that name set so far, else as the empty string (so
/// `Authorization "(.*)"` sets an empty value).
fn set_env_if(
    scopes: &[&Scope],
    req: &Request<'_>,
    ctx: &dyn RewriteContext,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for rule in scopes.iter().flat_map(|s| &s.set_env_if) {
        let subject = match &rule.attribute {
            Attribute::Header(name) => ctx
                .variable(&format!("HTTP:{name}"))
                .or_else(|| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
                .unwrap_or_default(),
            Attribute::RemoteAddr => req.client.to_string(),
            Attribute::RequestMethod => req.method.to_string(),
            Attribute::RequestUri => req.path.to_string(),
            Attribute::RequestProtocol => ctx.variable("SERVER_PROTOCOL").unwrap_or_default(),
        };
        let Some(captures) = rule.regex.captures(&subject) else {
            continue;
        };
        for (name, value) in &rule.sets {
            let value = value.as_ref().map(|v| {
                let mut out = String::new();
                captures.expand(&dollar_digits(v), &mut out);
                out
            });
            set_var(&mut env, name, value);
        }
    }
    env
}

/// `SetEnvIf`'s variables, then `SetEnv`/`UnsetEnv` (mod_env runs later, and wins).
fn environment(
    scopes: &[&Scope],
    req: &Request<'_>,
    ctx: &dyn RewriteContext,
) -> Vec<(String, String)> {
    let mut env = set_env_if(scopes, req, ctx);
    for (name, value) in scopes.iter().flat_map(|s| &s.env) {
        set_var(&mut env, name, value.clone());
    }
    env
}

fn set_var(env: &mut Vec<(String, String)>, name: &str, value: Option<String>) {
    env.retain(|(n, _)| n != name);
    if let Some(value) = value {
        env.push((name.to_string(), value));
    }
}
