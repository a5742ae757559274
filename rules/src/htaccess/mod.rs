//! `.htaccess` files, read with Apache 2.4's per-directory semantics.
//!
//! The front end finds the `.htaccess` of the document root and of every directory on the
//! request's path, reads each once per file version and compiles it here
//! ([`DirRules::compile`]); per request it hands the chain (root first) to [`check_access`],
//! [`rewrite_set`] and [`effective`]. Nothing here touches the file system: file tests in
//! rewrite conditions go through [`crate::rewrite::RewriteContext`], and `AuthUserFile` is a
//! name that the caller reads and checks with [`crate::htpasswd`].
//!
//! # Flow per request (Apache's order)
//! 1. [`check_access`] for the path's chain: `Granted`, `Denied(status)` or `NeedsAuth` (see
//!    [`Access`] for the two-call Basic flow).
//! 2. [`rewrite_set`] for the chain, then [`crate::rewrite::RewriteSet::apply`]; a changed path
//!    without `end` goes back to step 1 with the new path's chain (Apache's internal redirect),
//!    within a round limit.
//! 3. [`effective`]: a `Redirect` to answer with, whether scripts may run, response headers,
//!    error documents, `DirectoryIndex`, `php_value`s and environment variables.
//!
//! # Directives
//! Honoured: `Require` (`all`, `ip`, `local`, `valid-user`, `user`, `method`, `env`, `not`),
//! `<RequireAll|Any|None|NotAll>`, `AuthMerging`, `Order`, `Allow`, `Deny` (addresses, CIDR,
//! net masks, partial addresses, `env=`), `Satisfy`, `AuthType Basic|None`, `AuthName`,
//! `AuthUserFile`, `AuthBasicProvider file`, `<Files>`, `<Files ~>`, `<FilesMatch>`, `<Limit>`,
//! `<LimitExcept>`, `<IfModule>`, `<IfDefine>` (nothing is defined), `RewriteEngine`,
//! `RewriteBase`, `RewriteCond`, `RewriteRule`, `RewriteOptions` (`Inherit`, `InheritBefore`,
//! `InheritDown`, `InheritDownBefore`, `IgnoreInherit`, `MergeBase`, `AllowNoSlash`), `Redirect`,
//! `RedirectMatch`, `RedirectPermanent`, `RedirectTemp`, `ErrorDocument`, `DirectoryIndex`,
//! `Options` (recorded for the caller; paddock never lists directories), `Header set|append|add|
//! merge|setifempty|unset` (with `always`), `AddType`, `RemoveType`, `ForceType`, `SetHandler`,
//! `AddHandler`, `RemoveHandler`, `php_value`, `php_flag` (`engine off` stops scripts),
//! `SetEnv`, `UnsetEnv`, `SetEnvIf`, `SetEnvIfNoCase`, `BrowserMatch`, `BrowserMatchNoCase`.
//!
//! `<IfModule>` counts as loaded: mod_authz_core, mod_authz_host, mod_authz_user,
//! mod_authn_core, mod_authn_file, mod_auth_basic, mod_access_compat, mod_rewrite, mod_alias,
//! mod_headers, mod_mime, mod_env, mod_dir, mod_autoindex, mod_setenvif, mod_expires,
//! mod_deflate and mod_php (`php`, `php5`, `php7`, `php8`), by file (`mod_rewrite.c`) or
//! identifier (`rewrite_module`), compared exactly as Apache does.
//!
//! Ignored as harmless (noted as [`NoteKind::Ignored`]): caching, compression, listings and
//! charsets — `FileETag`, `Expires*`, `AddOutputFilter*`, `SetOutputFilter`, `AddEncoding`,
//! `AddCharset`, `AddDefaultCharset`, `AddLanguage`, `DefaultLanguage`, `LanguagePriority`,
//! `Index*`, `HeaderName`, `ReadmeName`, `AddIcon*`, `AddAlt*`, `AddDescription`, `DefaultType`
//! (a no-op in 2.4), `ContentDigest`, `EnableSendfile`, `EnableMMAP`, `ServerSignature`,
//! `AuthBasicAuthoritative`, and `LimitRequestBody` (paddock's own body limit applies).
//!
//! Everything else is [`NoteKind::Unknown`] (or [`NoteKind::Invalid`] when a known directive is
//! written in a way paddock cannot use); see `compile` for when that denies.
//!
//! # Where paddock differs from Apache, on purpose
//! - An unknown directive: Apache answers 500 for the directory; paddock notes it and goes on,
//!   except where it could matter for access (then 403, never a silent allow). Where paddock
//!   fails closed on an access directive Apache would reject too (`Order allow, deny`), the
//!   status is 403 where Apache's is 500.
//! - `SetHandler` to anything but PHP, `RemoveHandler`/`RemoveType` of the script's extension,
//!   or `AddType`/`AddHandler` mapping it to something else stop scripts. In Apache their
//!   effect depends on how PHP is wired (a server-level `<FilesMatch> SetHandler`, as Debian
//!   ships, overrides them); paddock follows what the file's author meant.
//! - `SetHandler`/`AddHandler` to PHP never makes a non-script extension run as PHP.
//! - `<IfModule mod_php5.c>` is entered (see above).
//! - `php_admin_value`/`php_admin_flag` are refused, as Apache refuses them in `.htaccess`;
//!   `php_value engine` is never passed to PHP (it becomes "no scripts here").
//! - Host names in `Allow`/`Deny`/`Require host` need DNS on the request path: not supported
//!   (an access directive paddock cannot honour, so it denies).
//! - `<If>`, `<ElseIf>`, `<Else>`, `<IfVersion>` are unknown sections.
//! - Rewrite directives inside `<Files>` are not honoured.
//! - `Header` with `%` formats, `env=`/`expr=` conditions, `edit`, `echo` or `note`: not
//!   honoured (noted).

mod access;
mod compile;
mod directives;
mod eval;
mod files;
pub mod parse;
#[cfg(test)]
mod tests;

pub use compile::{Denial, DirRules, ErrorDocument, HeaderAction, HeaderOp, Note, NoteKind};
pub use eval::{
    check_access, effective, rewrite_set, Access, AuthChallenge, Effective, Options, RedirectTo,
    Request,
};
