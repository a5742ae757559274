//! paddock's site rules, sans-IO: what a site's configuration and its `.htaccess` files say about
//! a request, decided from the request and from answers to "is this a file?" that the caller
//! gives. The front end owns everything with state or I/O (the caches of `.htaccess` and htpasswd
//! files, the rate-limit buckets per client); the master uses this crate only to check a
//! configuration's patterns at start-up.
//!
//! # Layout
//! - [`pattern`] — path patterns (prefix, glob, regex) matched on the decoded, normalised path.
//! - [`rewrite`] — the rewrite engine: rules with captures and conditions, query handling,
//!   internal rewrites and external redirects (mod_rewrite's semantics, server and directory
//!   context).
//! - [`clients`] — allow/deny lists of addresses and CIDR networks.
//! - [`htpasswd`] — Apache password files: bcrypt, apr1-md5 and `{SHA}` entries.
//! - [`token_bucket`] — the per-client request budget behind rate limits.
//! - [`site`] — a site's native rules compiled from `protocol::site_rules`.
//! - [`htaccess`] — `.htaccess` files compiled once per version and applied root to leaf with
//!   Apache 2.4's per-directory semantics (access, rewrites, redirects, headers, no-exec).
#![forbid(unsafe_code)]

pub mod clients;
pub mod header;
pub mod htaccess;
pub mod htpasswd;
pub mod pattern;
pub mod rewrite;
pub mod site;
pub mod token_bucket;

/// A rule that cannot be compiled; the message names the pattern and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("invalid regular expression `{pattern}`: {reason}")]
    Regex { pattern: String, reason: String },
    #[error("invalid glob `{pattern}`: {reason}")]
    Glob { pattern: String, reason: String },
    #[error("invalid address or network `{0}` (expected e.g. 192.0.2.1, 10.0.0.0/8 or ::1)")]
    Address(String),
    #[error("invalid header `{0}`")]
    Header(String),
    #[error("{0}")]
    Invalid(String),
}
