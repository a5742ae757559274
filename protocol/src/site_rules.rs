//! A site's native rules as the master validated them and sends them to the front end: plain data
//! (patterns still as text). The front end compiles them once per configuration generation with
//! the `rules` crate; the master compiles them too, only to report a bad pattern at start-up with
//! the file, line and key.
//!
//! Every path pattern matches the request's path after percent-decoding and normalisation (`//`,
//! `.` and `..` resolved), so no encoding of a path can slip past a rule written for its plain form.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Every native rule of one site, by kind. The front end applies them in the order of Apache's
/// phases: deny, client addresses, rate limits, basic auth, rewrites; then routing (where
/// `no_scripts` and `deny` are checked again against the script or file that was chosen); then
/// response headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteRulesSpec {
    pub deny: Vec<DenyRuleSpec>,
    pub no_scripts: Vec<NoScriptsRuleSpec>,
    pub rewrites: Vec<RewriteRuleSpec>,
    pub headers: Vec<HeaderRuleSpec>,
    pub auth: Vec<AuthRuleSpec>,
    pub clients: Vec<ClientRuleSpec>,
    pub rate_limits: Vec<RateLimitRuleSpec>,
    /// Read `.htaccess` files under the document root.
    pub htaccess: bool,
}

/// Which request paths a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathPatternSpec {
    /// Paths that start with this (`/wp-admin/`); a prefix ending in `/` also matches the
    /// directory itself without its slash.
    Prefix(String),
    /// A glob over the whole path: `*` stays within one segment, `**` crosses segments,
    /// `?`, `[abc]` and `{a,b}` as in a shell.
    Glob(String),
    /// A regular expression searched in the path (anchor it with `^`/`$` as needed).
    Regex(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenyRuleSpec {
    pub pattern: PathPatternSpec,
    /// 403 or 404.
    pub status: u16,
}

/// What happens to a script under a `no_scripts` path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoScriptsAction {
    /// Served as a plain file, with `X-Content-Type-Options: nosniff` (MediaWiki's `/images/`).
    Static,
    /// Answered 403.
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoScriptsRuleSpec {
    pub pattern: PathPatternSpec,
    pub action: NoScriptsAction,
}

/// A condition on the rewrite's target before it is applied (`RewriteCond %{REQUEST_FILENAME}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewriteCondition {
    /// The request path names a regular file under the root (`-f`).
    File,
    /// … a directory (`-d`).
    Dir,
    /// … no regular file (`!-f`).
    NotFile,
    /// … no directory (`!-d`).
    NotDir,
}

/// What becomes of the request's query string when a rewrite's target has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryMode {
    /// The target's query, then the request's (`QSA`).
    Append,
    /// The target's query alone (Apache's default when the target has one).
    Replace,
    /// No query at all (`QSD`).
    Discard,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewriteRuleSpec {
    /// Regular expression matched against the decoded path; `$1`… in `to` are its captures.
    pub pattern: String,
    pub case_insensitive: bool,
    /// The new path (and optionally `?query`), or an absolute URL for a redirect.
    pub to: String,
    /// All must hold.
    pub when: Vec<RewriteCondition>,
    pub query: QueryMode,
    /// An external redirect with this status (301, 302, 303, 307, 308) instead of an internal
    /// rewrite.
    pub redirect: Option<u16>,
    /// Stop at this rule when it applies (`[L]`); otherwise the next rules see the new path.
    pub last: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderRuleSpec {
    pub pattern: PathPatternSpec,
    /// Header name and value, set on every response (replacing the application's).
    pub set: Vec<(String, String)>,
    /// Header names removed from every response.
    pub unset: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRuleSpec {
    pub pattern: PathPatternSpec,
    /// Shown by the browser's login prompt.
    pub realm: String,
    /// An Apache htpasswd file (bcrypt, apr1-md5 or {SHA} entries); re-read when it changes.
    pub htpasswd: PathBuf,
    /// Only these users; empty for any user of the file (`Require valid-user`).
    pub users: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRuleSpec {
    pub pattern: PathPatternSpec,
    /// Addresses or CIDR networks let in; empty for everyone not in `deny`.
    pub allow: Vec<String>,
    /// Addresses or CIDR networks kept out (they win over `allow`).
    pub deny: Vec<String>,
    /// 403 or 404.
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitRuleSpec {
    pub pattern: PathPatternSpec,
    /// Requests per second each client address may make on average.
    pub per_second: f64,
    /// Requests a client may make at once before the average applies.
    pub burst: u32,
    /// Only requests with these methods count (and are limited); empty for all.
    pub methods: Vec<String>,
}
