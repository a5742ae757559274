//! The rewrite engine: mod_rewrite's rules for paddock's own `rewrite` rules and for `.htaccess`.
//!
//! A [`RewriteSet`] is an ordered list of rules in one context: the site (server context: the
//! pattern sees the whole path, `/w/x`) or one directory (per-directory context, as in an
//! `.htaccess`: the pattern sees the path relative to the directory, `x`, and a relative
//! substitution is put back under `RewriteBase` or the directory). Paths are decoded and
//! normalised; the caller encodes the result again before routing it.
//!
//! [`RewriteSet::apply`] runs one pass. A changed path makes the caller route again; in a
//! directory context Apache then runs the directory's rules once more on the new path (an
//! internal redirect) unless the rule said `[END]`, which is why `RewriteCond %{REQUEST_FILENAME}
//! !-f` guards are everywhere: the caller does the same, bounded by a round limit.

mod cond;
mod template;
#[cfg(test)]
mod tests;

use regex::Regex;

pub use cond::{FileTest, RewriteCond};
use template::groups;
pub use template::Template;

use crate::pattern::compile_regex;
use crate::RuleError;
use protocol::site_rules::QueryMode;

/// What a path names on disk, as far as rewrite conditions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Missing,
    File { size: u64 },
    Dir,
}

/// What the engine asks of the request and the file system.
pub trait RewriteContext {
    /// A server variable (`REQUEST_URI`, `QUERY_STRING`, `HTTP_HOST`, `HTTPS`, `REQUEST_METHOD`,
    /// `REQUEST_FILENAME`, `HTTP:Name`, `ENV:name`, …); `None` when unknown or unset.
    fn variable(&self, name: &str) -> Option<String>;
    /// What a file-system path names.
    fn file_kind(&self, path: &str) -> FileKind;
    /// Whether a file-system path is a symbolic link.
    fn is_symlink(&self, path: &str) -> bool;
    /// The file-system path a URL path maps to. When given, `REQUEST_FILENAME` follows the path
    /// as the rules rewrite it during a pass (as Apache's does); without it, it is whatever
    /// [`RewriteContext::variable`] says.
    fn file_path(&self, _url_path: &str) -> Option<String> {
        None
    }
}

/// The caller's context, with `REQUEST_FILENAME` for the path as rewritten so far.
struct Current<'a> {
    inner: &'a dyn RewriteContext,
    path: &'a str,
}

impl RewriteContext for Current<'_> {
    fn variable(&self, name: &str) -> Option<String> {
        if name == "REQUEST_FILENAME" {
            if let Some(file) = self.inner.file_path(self.path) {
                return Some(file);
            }
        }
        self.inner.variable(name)
    }
    fn file_kind(&self, path: &str) -> FileKind {
        self.inner.file_kind(path)
    }
    fn is_symlink(&self, path: &str) -> bool {
        self.inner.is_symlink(path)
    }
}

/// One `RewriteRule`.
#[derive(Debug, Clone)]
pub struct RewriteRule {
    pattern: Regex,
    negate: bool,
    /// `None` for `-` (no substitution: only the flags act).
    substitution: Option<Template>,
    conditions: Vec<RewriteCond>,
    pub flags: RuleFlags,
}

/// The flags paddock honours (the rest are refused when the rule is compiled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleFlags {
    /// `[L]`: no further rule in this pass.
    pub last: bool,
    /// `[END]`: no further rule, and no further pass after the rewrite.
    pub end: bool,
    /// `None`: the target's query replaces the request's if the target has one (Apache's
    /// default), else the request's is kept.
    pub query: Option<QueryMode>,
    /// `[R=code]`: an external redirect.
    pub redirect: Option<u16>,
    /// `[F]`: 403.
    pub forbidden: bool,
    /// `[G]`: 410.
    pub gone: bool,
    /// `[NE]`: the redirect's location is not percent-encoded.
    pub no_escape: bool,
    /// `[E=VAR:value]`; the value may use `$N`, `%N` and `%{VAR}`.
    pub env: Vec<(String, Template)>,
    /// `[C]`: when this rule does not match, the rules chained after it are skipped.
    pub chain: bool,
    /// `[B]`, `[B=chars]`, `[BCTLS]`: back-references in the substitution are escaped as
    /// mod_rewrite's `escape_backref` does (letters, digits and `_` are never escaped; a blank
    /// becomes `+` unless `[BNP]`).
    pub escape_backrefs: Option<BackrefEscape>,
    /// `[BNP]`: with `[B]`, a blank as `%20`.
    pub escape_no_plus: bool,
}

/// Which characters of a back-reference `[B]` escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackrefEscape {
    /// `[B]`: every one but letters, digits and `_`.
    All,
    /// `[B=chars]` (Apache 2.4.26): only these.
    Only(String),
    /// `[BCTLS]` (Apache 2.4.57): only control characters and blanks.
    Controls,
}

impl RewriteRule {
    /// A rule from its pattern (a leading `!` negates it), substitution (`-` for none) and
    /// conditions. `nocase` is `[NC]`.
    pub fn new(
        pattern: &str,
        substitution: &str,
        conditions: Vec<RewriteCond>,
        flags: RuleFlags,
        nocase: bool,
    ) -> Result<Self, RuleError> {
        let (negate, pattern) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        if let Some(code) = flags.redirect {
            if !(300..400).contains(&code) {
                return Err(RuleError::Invalid(format!(
                    "redirect status {code} is not a 3xx code"
                )));
            }
        }
        Ok(Self {
            pattern: compile_regex(pattern, nocase)?,
            negate,
            substitution: match substitution {
                "-" => None,
                text => Some(Template::parse(text)?),
            },
            conditions,
            flags,
        })
    }

    /// Parses a flag list as written between the brackets (`L,R=301,QSA`).
    pub fn parse_flags(text: &str) -> Result<(RuleFlags, bool), RuleError> {
        let mut flags = RuleFlags::default();
        let mut nocase = false;
        for flag in text.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (flag, None),
            };
            match name.to_ascii_lowercase().as_str() {
                "l" | "last" => flags.last = true,
                "end" => flags.end = true,
                "qsa" | "qsappend" => flags.query = Some(QueryMode::Append),
                "qsd" | "qsdiscard" => flags.query = Some(QueryMode::Discard),
                "nc" | "nocase" => nocase = true,
                "ne" | "noescape" => flags.no_escape = true,
                "f" | "forbidden" => flags.forbidden = true,
                "g" | "gone" => flags.gone = true,
                "c" | "chain" => flags.chain = true,
                "b" => {
                    flags.escape_backrefs = Some(match value {
                        None | Some("") => BackrefEscape::All,
                        Some(chars) => BackrefEscape::Only(chars.to_string()),
                    })
                }
                "bctls" => flags.escape_backrefs = Some(BackrefEscape::Controls),
                "bnp" | "backrefnoplus" => flags.escape_no_plus = true,
                // paddock maps rewritten paths to files itself: pass-through is what it always
                // does.
                "pt" | "passthrough" => {}
                "r" | "redirect" => {
                    let code = match value {
                        None => 302,
                        Some(v) if v.eq_ignore_ascii_case("permanent") => 301,
                        Some(v) if v.eq_ignore_ascii_case("temp") => 302,
                        Some(v) if v.eq_ignore_ascii_case("seeother") => 303,
                        Some(v) => v.parse().map_err(|_| {
                            RuleError::Invalid(format!("invalid redirect status `{v}`"))
                        })?,
                    };
                    flags.redirect = Some(code);
                }
                "e" | "env" => {
                    let Some((var, val)) = value.and_then(|v| v.split_once(':')) else {
                        return Err(RuleError::Invalid(format!(
                            "`{flag}` needs the form E=VAR:value"
                        )));
                    };
                    flags.env.push((var.to_string(), Template::parse(val)?));
                }
                other => {
                    return Err(RuleError::Invalid(format!(
                        "unsupported RewriteRule flag `{other}`"
                    )))
                }
            }
        }
        Ok((flags, nocase))
    }
}

/// A back-reference escaped for `[B]` as mod_rewrite's `escape_backref` does: ASCII letters,
/// digits and `_` kept, a blank as `+` (`%20` with `no_plus`), every other byte as `%xx` with
/// lower-case hex digits.
fn escape_backref(text: &str, which: &BackrefEscape, no_plus: bool) -> String {
    // Bytes, not chars: a character outside ASCII is either copied whole or escaped whole.
    let mut out = Vec::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        let chosen = match which {
            BackrefEscape::All => true,
            BackrefEscape::Only(chars) => chars.as_bytes().contains(&byte),
            BackrefEscape::Controls => byte.is_ascii_control() || byte == b' ',
        };
        match byte {
            b if !chosen || b.is_ascii_alphanumeric() || b == b'_' => out.push(b),
            b' ' if !no_plus => out.push(b'+'),
            b => out.extend_from_slice(format!("%{b:02x}").as_bytes()),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Rules in one context.
#[derive(Debug, Clone, Default)]
pub struct RewriteSet {
    pub rules: Vec<RewriteRule>,
    /// The directory's URL path (`/w/`, always ending in `/`); `None` in server context.
    pub directory: Option<String>,
    /// `RewriteBase`: where relative substitutions go instead of the directory.
    pub base: Option<String>,
}

/// The result of one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewriteOutcome {
    Unchanged {
        env: Vec<(String, String)>,
    },
    /// Serve this decoded path (and query) instead.
    Rewritten {
        path: String,
        query: Option<String>,
        env: Vec<(String, String)>,
        /// `[END]`: no further pass.
        end: bool,
    },
    Redirect {
        status: u16,
        location: String,
    },
    Forbidden,
    Gone,
}

impl RewriteSet {
    /// One pass over the rules for the decoded `path` and the raw `query`.
    pub fn apply(
        &self,
        path: &str,
        query: Option<&str>,
        ctx: &dyn RewriteContext,
    ) -> RewriteOutcome {
        let mut current = path.to_string();
        let mut query = query.map(str::to_string);
        let mut env = Vec::new();
        let mut changed = false;
        let mut end = false;
        // Skipping the rules chained (`[C]`) after one that did not match.
        let mut skipping = false;
        for rule in &self.rules {
            if skipping {
                skipping = rule.flags.chain;
                continue;
            }
            let Some(subject) = self.subject(&current) else {
                break;
            };
            let ctx = &Current {
                inner: ctx,
                path: &current,
            };
            let captures = rule.pattern.captures(subject);
            if captures.is_some() == rule.negate {
                skipping = rule.flags.chain;
                continue;
            }
            // A negated pattern sets no back-references.
            let captures = match (&captures, rule.negate) {
                (Some(c), false) => groups(c),
                _ => Vec::new(),
            };
            let Some(cond_captures) = conditions_hold(&rule.conditions, &captures, ctx) else {
                skipping = rule.flags.chain;
                continue;
            };
            env.extend(
                rule.flags.env.iter().map(|(name, value)| {
                    (name.clone(), value.expand(&captures, &cond_captures, ctx))
                }),
            );
            if rule.flags.forbidden {
                return RewriteOutcome::Forbidden;
            }
            if rule.flags.gone {
                return RewriteOutcome::Gone;
            }
            let Some(substitution) = &rule.substitution else {
                if rule.flags.last || rule.flags.end {
                    end |= rule.flags.end;
                    break;
                }
                continue;
            };
            let expanded = if let Some(which) = &rule.flags.escape_backrefs {
                let escape = |groups: &[String]| -> Vec<String> {
                    groups
                        .iter()
                        .map(|g| escape_backref(g, which, rule.flags.escape_no_plus))
                        .collect()
                };
                substitution.expand(&escape(&captures), &escape(&cond_captures), ctx)
            } else {
                substitution.expand(&captures, &cond_captures, ctx)
            };
            let (target, target_query) = match expanded.split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (expanded, None),
            };
            query = merge_query(target_query, query, rule.flags.query);
            if is_absolute_url(&target) {
                return RewriteOutcome::Redirect {
                    status: rule.flags.redirect.unwrap_or(302),
                    location: with_query(target, query.as_deref(), rule.flags.no_escape),
                };
            }
            let target = self.absolute(self.url_of_file(target, ctx));
            if let Some(status) = rule.flags.redirect {
                let origin = origin(ctx);
                return RewriteOutcome::Redirect {
                    status,
                    location: origin + &with_query(target, query.as_deref(), rule.flags.no_escape),
                };
            }
            current = target;
            changed = true;
            if rule.flags.last || rule.flags.end {
                end |= rule.flags.end;
                break;
            }
        }
        if changed {
            RewriteOutcome::Rewritten {
                path: current,
                query,
                env,
                end,
            }
        } else {
            RewriteOutcome::Unchanged { env }
        }
    }

    /// What a rule's pattern sees of `path`: all of it in server context, the part below the
    /// directory in directory context (`None` when the path is not below it).
    fn subject<'p>(&self, path: &'p str) -> Option<&'p str> {
        match &self.directory {
            None => Some(path),
            Some(dir) => path
                .strip_prefix(dir.as_str())
                .or_else(|| (path == dir.trim_end_matches('/')).then_some("")),
        }
    }

    /// In a directory, a substitution that names a file under the document root
    /// (`%{DOCUMENT_ROOT}/w/index.php`, as MediaWiki's short-URL recipe writes it) goes back to
    /// a URL path as Apache's mod_rewrite turns it back (its fix-up hook): with `RewriteBase`,
    /// the directory's file-system path is replaced by the base; without one, the document root
    /// is stripped. Anything else, and every substitution in server context, is left as it is.
    fn url_of_file(&self, target: String, ctx: &dyn RewriteContext) -> String {
        let Some(directory) = &self.directory else {
            return target;
        };
        let Some(root) = ctx.variable("DOCUMENT_ROOT") else {
            return target;
        };
        let root = root.trim_end_matches('/');
        if root.is_empty() {
            return target;
        }
        let Some(below_root) = target.strip_prefix(root).filter(|r| r.starts_with('/')) else {
            return target;
        };
        // `%{DOCUMENT_ROOT}/w` with a root written `/srv/`: one slash, as the file is the same.
        let below_root = format!("/{}", below_root.trim_start_matches('/'));
        match &self.base {
            None => below_root,
            Some(base) => match below_root.strip_prefix(directory.as_str()) {
                Some(below_dir) if base.ends_with('/') => format!("{base}{below_dir}"),
                Some(below_dir) => format!("{base}/{below_dir}"),
                None => target,
            },
        }
    }

    /// A substitution as an absolute URL path.
    fn absolute(&self, target: String) -> String {
        if target.starts_with('/') {
            return target;
        }
        let base = self
            .base
            .as_deref()
            .or(self.directory.as_deref())
            .unwrap_or("/");
        if base.ends_with('/') {
            format!("{base}{target}")
        } else {
            format!("{base}/{target}")
        }
    }
}

/// The conditions, ANDed, where `[OR]` joins a condition with the next into a group that holds
/// when one member does. On success: the groups of the last regex condition that matched (`%N`).
fn conditions_hold(
    conditions: &[RewriteCond],
    captures: &[String],
    ctx: &dyn RewriteContext,
) -> Option<Vec<String>> {
    let mut last = Vec::new();
    let mut group_holds = false;
    for cond in conditions {
        if !group_holds {
            if let Some(groups) = cond.check(captures, &last, ctx) {
                group_holds = true;
                if !groups.is_empty() {
                    last = groups;
                }
            }
        }
        if !cond.or_next {
            if !group_holds {
                return None;
            }
            group_holds = false;
        }
    }
    Some(last)
}

/// Apache's query rules: `QSD` drops the request's query, `QSA` appends it to the target's, and
/// otherwise a target with a query replaces it (an empty one, `target?`, removes it).
fn merge_query(
    target: Option<String>,
    request: Option<String>,
    mode: Option<QueryMode>,
) -> Option<String> {
    match (mode, target) {
        (Some(QueryMode::Discard), target) => target.filter(|q| !q.is_empty()),
        (Some(QueryMode::Append), Some(target)) => match request.filter(|q| !q.is_empty()) {
            Some(request) if target.is_empty() => Some(request),
            Some(request) => Some(format!("{target}&{request}")),
            None => Some(target).filter(|q| !q.is_empty()),
        },
        (_, Some(target)) => Some(target).filter(|q| !q.is_empty()),
        (_, None) => request,
    }
}

fn is_absolute_url(target: &str) -> bool {
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// `scheme://host` of the request, for redirects (Apache always sends an absolute Location).
pub(crate) fn origin(ctx: &dyn RewriteContext) -> String {
    let scheme = match ctx.variable("HTTPS").as_deref() {
        Some("on") => "https",
        _ => "http",
    };
    match ctx.variable("HTTP_HOST") {
        Some(host) if !host.is_empty() => format!("{scheme}://{host}"),
        _ => String::new(),
    }
}

/// A redirect's location: the path percent-encoded (unless `[NE]`), then the query as it is.
fn with_query(target: String, query: Option<&str>, no_escape: bool) -> String {
    let mut location = if no_escape {
        target
    } else {
        escape_location(&target)
    };
    if let Some(query) = query {
        location.push('?');
        location.push_str(query);
    }
    location
}

/// Percent-encodes what cannot stand in a Location path (spaces, controls, non-ASCII, `%`
/// itself, quotes and angle brackets), leaving the URL's own punctuation.
pub(crate) fn escape_location(text: &str) -> String {
    const KEEP: &[u8] = b"/:@!$&'()*+,;=-._~";
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || KEEP.contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
