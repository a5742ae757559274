//! One `.htaccess` file compiled into [`DirRules`]: every regex, address and rewrite built once
//! per file version, each directive sorted into honoured, ignored as harmless, or not honoured.
//!
//! What fails closed (the directory and everything below it answer 403, see [`Denial`]):
//! - an access directive paddock cannot honour exactly: `Require` with a provider it lacks
//!   (`host`, `group`, `expr`, `ldap-*`, …), `Allow`/`Deny` naming a host name, `AuthType`
//!   other than `Basic`/`None`, `AuthBasicProvider` other than `file`, `AuthGroupFile`,
//!   `AuthDBM*`, `AuthLDAP*`, `AuthDigest*`, `SSLRequire`, `SSLRequireSSL`, any other `Auth*`;
//! - anything not honoured inside a section whose access directives restrict (`<Files>`,
//!   `<FilesMatch>`, `<Limit>`, `<RequireAll>`, …), or an unknown section (`<If>`, `<IfVersion>`,
//!   …) that holds one;
//! - a `RewriteRule` paddock cannot compile whose flags say `F` or `G`.
//!
//! A file that does not parse (unbalanced sections) answers 500 for its directory and below, as
//! Apache does. Apache also answers 500 for *any* directive it does not know; paddock instead
//! lists those in [`DirRules::notes`] (the front end logs them once per file version, and
//! `paddock check` prints them) and goes on, because paddock's "unknown" includes directives
//! Apache knows and that do not matter to paddock (caching, compression, listings).

use crate::rewrite::{RewriteCond, RewriteRule, RewriteSet};
use crate::RuleError;

use super::access::{Compat, Methods, Require};
use super::directives::{
    extensions, handler, parse_allow, parse_error_document, parse_header, parse_options,
    parse_order, parse_redirect, parse_require, parse_set_env_if, php_bool,
};
use super::files::FileMatcher;
use super::parse::{parse, Directive, Node, Section};

/// One `.htaccess` file, compiled.
#[derive(Debug, Clone)]
pub struct DirRules {
    pub(super) dir: String,
    pub(super) main: Scope,
    /// `<Files>`/`<FilesMatch>` sections in file order.
    pub(super) files: Vec<(FileMatcher, Scope)>,
    pub(super) rewrite: Option<RewriteConf>,
    notes: Vec<Note>,
    denial: Option<Denial>,
}

/// Why every request in a directory (and below it) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// 403 when paddock fails closed; 500 when the file cannot be parsed (Apache's answer).
    pub status: u16,
    pub line: usize,
    pub reason: String,
}

/// A directive paddock does not honour, for the log and for `paddock check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub line: usize,
    /// The directive as written.
    pub text: String,
    pub kind: NoteKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteKind {
    /// Performance or cosmetics (caching, compression, listings, charsets): no effect on what
    /// is served or who may see it.
    Ignored,
    /// A directive or section paddock does not implement.
    Unknown,
    /// A directive paddock knows, written in a way it cannot use (the reason says why).
    Invalid(String),
}

/// The directives of one scope: the file's top level, or one `<Files>` section.
#[derive(Debug, Clone, Default)]
pub(super) struct Scope {
    /// `Require` lines (an implicit `<RequireAny>`); `Some` once one is seen.
    pub require: Option<Vec<Require>>,
    pub auth_merging: Option<AuthMerging>,
    /// Any of `Order`, `Allow`, `Deny`, `Satisfy`.
    pub compat: Option<Compat>,
    /// `AuthType Basic` (`true`) or `None`.
    pub auth_basic: Option<bool>,
    pub auth_name: Option<String>,
    pub user_file: Option<String>,
    pub redirects: Vec<Redirect>,
    pub error_documents: Vec<(u16, ErrorDocument)>,
    pub directory_index: Option<Vec<String>>,
    pub options: Vec<OptionsLine>,
    pub headers: Vec<HeaderAction>,
    pub mime: Vec<MimeChange>,
    /// `ForceType` (`Some(None)`: `ForceType None`).
    pub force_type: Option<Option<String>>,
    pub handler: Option<Handler>,
    /// `php_value`/`php_flag`, in order (without `engine`).
    pub php: Vec<(String, String)>,
    /// `php_flag engine`.
    pub engine: Option<bool>,
    /// `SetEnv` (`Some`) and `UnsetEnv` (`None`), in order.
    pub env: Vec<(String, Option<String>)>,
    pub set_env_if: Vec<SetEnvIf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthMerging {
    Off,
    And,
    Or,
}

/// mod_rewrite's per-directory configuration of one file.
#[derive(Debug, Clone)]
pub(super) struct RewriteConf {
    /// `RewriteEngine`; `None`: inherited from the parent.
    pub engine: Option<bool>,
    /// `RewriteOptions` (all lines together); `None`: inherited from the parent.
    pub options: Option<RewriteOptions>,
    /// `directory` is the file's directory, `base` its `RewriteBase`.
    pub set: RewriteSet,
}

/// The `RewriteOptions` that change what paddock does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RewriteOptions {
    /// `Inherit`: the parent's rules after this file's.
    pub inherit: bool,
    /// `InheritBefore`: the parent's rules before this file's.
    pub inherit_before: bool,
    /// `InheritDown`/`InheritDownBefore`: as `Inherit`/`InheritBefore` for every file below.
    pub inherit_down: bool,
    pub inherit_down_before: bool,
    /// `IgnoreInherit`: refuse what a parent's `InheritDown*` pushes.
    pub ignore_inherit: bool,
    /// `MergeBase`: a `RewriteBase` carries into files below that set none.
    pub merge_base: bool,
    /// `AllowNoSlash`: rules run for the directory itself named without its `/`.
    pub allow_no_slash: bool,
}

/// `Redirect`/`RedirectMatch`.
#[derive(Debug, Clone)]
pub(super) struct Redirect {
    pub from: RedirectFrom,
    pub status: u16,
    /// `None` for a status outside 3xx (`gone`).
    pub to: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) enum RedirectFrom {
    /// A URL-path prefix, matched on whole segments.
    Prefix(String),
    Regex(regex::Regex),
}

/// `ErrorDocument code …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorDocument {
    /// A local URL path: an internal redirect to it.
    Local(String),
    /// An absolute URL: a 302 redirect to it.
    Remote(String),
    /// A message sent as the body.
    Text(String),
    /// `default`: back to the server's own page.
    Default,
}

/// One `Options` line: `absolute` when no word has `+`/`-` (it then replaces all).
#[derive(Debug, Clone)]
pub(super) struct OptionsLine {
    pub absolute: bool,
    pub words: Vec<(String, bool)>,
}

/// `Header [always] set|append|add|merge|setifempty|unset name [value]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderAction {
    /// `always`: on error responses too (Apache's second table).
    pub always: bool,
    pub op: HeaderOp,
    /// Shared (`Arc`): every request under the directory carries a copy of its actions.
    pub name: std::sync::Arc<str>,
    /// Empty for `unset`.
    pub value: std::sync::Arc<str>,
    /// `name` and `value` parsed once per file version, not for every response (`None`: a
    /// value that is no header value, which is skipped as Apache's mod_headers skips it).
    pub header: http::HeaderName,
    pub header_value: Option<http::HeaderValue>,
}

impl HeaderAction {
    /// A copy whose parsed header has buffers of its own (see [`crate::header`]).
    fn own_copy(&self) -> Self {
        Self {
            header: crate::header::own_name(&self.header),
            header_value: self.header_value.as_ref().map(crate::header::own_value),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderOp {
    Set,
    Append,
    Add,
    Merge,
    SetIfEmpty,
    Unset,
}

/// mod_mime's per-extension mappings, applied in order. Extensions are lower-case, without dot.
#[derive(Debug, Clone)]
pub(super) enum MimeChange {
    AddType(String, Vec<String>),
    RemoveType(Vec<String>),
    AddHandler(Handler, Vec<String>),
    RemoveHandler(Vec<String>),
}

/// What `SetHandler`/`AddHandler` ask for, as paddock reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Handler {
    /// A PHP handler (`application/x-httpd-php`, `php-script`, `proxy:…php…`): scripts run as
    /// the pool runs them.
    Php,
    /// Anything else (`none`, `default-handler`, Drupal's made-up name, `cgi-script`): the file
    /// is never executed.
    Static,
}

/// `SetEnvIf attribute regex [!]var[=value] …`.
#[derive(Debug, Clone)]
pub(super) struct SetEnvIf {
    pub attribute: Attribute,
    pub regex: regex::Regex,
    /// `(name, Some(value))` sets (value may hold `$N`), `(name, None)` unsets.
    pub sets: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
pub(super) enum Attribute {
    /// A request header (compared without case).
    Header(String),
    RemoteAddr,
    RequestMethod,
    RequestUri,
    RequestProtocol,
}

/// The modules `<IfModule>` sees as loaded: those whose directives paddock honours or ignores
/// harmlessly, and every generation of mod_php (`php`, `php5`, `php7`, `php8`): paddock always
/// runs PHP, and `<IfModule mod_php5.c> php_flag engine off` is how older apps (Drupal 7) switch
/// scripts off; Apache with PHP 8 would skip that block, paddock keeps the protection.
const MODULES: &[&str] = &[
    "authz_core",
    "authz_host",
    "authz_user",
    "authn_core",
    "authn_file",
    "auth_basic",
    "access_compat",
    "rewrite",
    "alias",
    "headers",
    "mime",
    "env",
    "php",
    "php5",
    "php7",
    "php8",
    "dir",
    "autoindex",
    "setenvif",
    "expires",
    "deflate",
];

/// Directives that change only caching, compression, listings or charsets.
const HARMLESS: &[&str] = &[
    "fileetag",
    "expiresactive",
    "expiresbytype",
    "expiresdefault",
    "addoutputfilterbytype",
    "addoutputfilter",
    "setoutputfilter",
    "removeoutputfilter",
    "addencoding",
    "removeencoding",
    "addcharset",
    "adddefaultcharset",
    "addlanguage",
    "defaultlanguage",
    "languagepriority",
    "forcelanguagepriority",
    "indexignore",
    "indexoptions",
    "indexorderdefault",
    "indexstylesheet",
    "headername",
    "readmename",
    "addicon",
    "addiconbytype",
    "addiconbyencoding",
    "addalt",
    "addaltbytype",
    "addaltbyencoding",
    "adddescription",
    "defaulticon",
    "defaulttype",
    "contentdigest",
    "limitrequestbody",
    "enablesendfile",
    "enablemmap",
    "serversignature",
    "authbasicauthoritative",
];

/// The compiler's position: what encloses the directives being read.
#[derive(Debug, Clone, Default)]
struct Cx {
    methods: Methods,
    /// Inside a section whose access directives restrict.
    guarded: bool,
    in_files: bool,
}

impl DirRules {
    /// Compiles the text of the `.htaccess` in the directory whose URL path is `dir` (`/`,
    /// `/wp-content/uploads/`; a missing final `/` is added).
    pub fn compile(text: &str, dir: &str) -> Self {
        let mut dir = dir.to_string();
        if !dir.ends_with('/') {
            dir.push('/');
        }
        let mut compiler = Compiler {
            rules: Self {
                dir,
                main: Scope::default(),
                files: Vec::new(),
                rewrite: None,
                notes: Vec::new(),
                denial: None,
            },
            pending_conds: Vec::new(),
        };
        match parse(text) {
            Ok(nodes) => {
                let mut main = Scope::default();
                // `RewriteCond`s left without a rule at the end are dropped, as Apache does.
                compiler.walk(&nodes, &mut main, &Cx::default());
                compiler.rules.main = main;
            }
            Err(e) => {
                compiler.rules.denial = Some(Denial {
                    status: 500,
                    line: e.line,
                    reason: e.message,
                })
            }
        }
        compiler.rules
    }

    /// The directory's URL path, ending in `/`.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// Directives not honoured, in file order.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// Set when every request here and below is refused.
    pub fn denial(&self) -> Option<&Denial> {
        self.denial.as_ref()
    }

    /// A copy for one runtime thread: as `clone`, with the parsed headers' buffers its own (see
    /// [`crate::header`]; a plain `clone`, made for each request that carries the actions on,
    /// shares them).
    pub fn thread_copy(&self) -> Self {
        let mut copy = self.clone();
        for scope in std::iter::once(&mut copy.main).chain(copy.files.iter_mut().map(|(_, s)| s)) {
            for action in &mut scope.headers {
                *action = action.own_copy();
            }
        }
        copy
    }

    /// Whether any directive of the file may look at the client's address (`Require ip`,
    /// `Require local`, `Allow from`/`Deny from` a network, `SetEnvIf Remote_Addr`): a caller
    /// that remembers an outcome must then tie it to the address.
    pub fn reads_client_address(&self) -> bool {
        std::iter::once(&self.main)
            .chain(self.files.iter().map(|(_, scope)| scope))
            .any(Scope::reads_client_address)
    }
}

impl Scope {
    fn reads_client_address(&self) -> bool {
        self.require
            .iter()
            .flatten()
            .any(Require::reads_client_address)
            || self
                .compat
                .as_ref()
                .is_some_and(Compat::reads_client_address)
            || self
                .set_env_if
                .iter()
                .any(|rule| matches!(rule.attribute, Attribute::RemoteAddr))
    }
}

struct Compiler {
    rules: DirRules,
    /// `RewriteCond`s waiting for their rule (an error when one did not compile).
    pending_conds: Vec<Result<RewriteCond, String>>,
}

impl Compiler {
    fn note(&mut self, line: usize, text: &str, kind: NoteKind) {
        self.rules.notes.push(Note {
            line,
            text: text.to_string(),
            kind,
        });
    }

    fn fail_closed(&mut self, line: usize, reason: String) {
        if self.rules.denial.is_none() {
            self.rules.denial = Some(Denial {
                status: 403,
                line,
                reason,
            });
        }
    }

    /// A directive paddock does not honour: noted, and denying when it sits among access rules.
    fn not_honoured(&mut self, d: &Directive, kind: NoteKind, cx: &Cx) {
        let access = is_access_name(&d.name.to_ascii_lowercase());
        if access || cx.guarded {
            let why = match &kind {
                NoteKind::Invalid(reason) => reason.clone(),
                _ => "not supported".to_string(),
            };
            let place = if access {
                "an access directive paddock cannot honour"
            } else {
                "inside a section with restricting access rules"
            };
            self.fail_closed(d.line, format!("`{}`: {place} ({why})", d.text));
        }
        self.note(d.line, &d.text, kind);
    }

    fn walk(&mut self, nodes: &[Node], scope: &mut Scope, cx: &Cx) {
        for node in nodes {
            match node {
                Node::Directive(d) => self.directive(d, scope, cx),
                Node::Section(s) => self.section(s, scope, cx),
            }
        }
    }

    fn section(&mut self, s: &Section, scope: &mut Scope, cx: &Cx) {
        let name = s.name.to_ascii_lowercase();
        let guarded = cx.guarded || restricts(&s.body);
        match name.as_str() {
            "ifmodule" | "ifdefine" => {
                let Some(arg) = s.args.first() else {
                    return self.section_invalid(s, "needs an argument", guarded);
                };
                let (negate, module) = match arg.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, arg.as_str()),
                };
                // `<IfDefine>`: paddock defines no parameters.
                let present = name == "ifmodule" && module_present(module);
                if present != negate {
                    self.walk(&s.body, scope, cx);
                }
            }
            "files" | "filesmatch" if !cx.in_files => {
                match FileMatcher::from_section(&s.name, &s.args) {
                    Ok(matcher) => {
                        let mut inner = Scope::default();
                        let inner_cx = Cx {
                            guarded,
                            in_files: true,
                            ..cx.clone()
                        };
                        self.walk(&s.body, &mut inner, &inner_cx);
                        self.rules.files.push((matcher, inner));
                    }
                    Err(e) => self.section_invalid(s, &e.to_string(), guarded),
                }
            }
            "limit" | "limitexcept" => {
                let methods: Vec<String> = s.args.iter().map(|m| m.to_ascii_uppercase()).collect();
                if methods.is_empty() {
                    return self.section_invalid(s, "needs at least one method", guarded);
                }
                let methods = if name == "limit" {
                    Methods::Only(methods)
                } else {
                    Methods::Except(methods)
                };
                let inner_cx = Cx {
                    methods,
                    guarded,
                    ..cx.clone()
                };
                self.walk(&s.body, scope, &inner_cx);
            }
            "requireall" | "requireany" | "requirenone" | "requirenotall" => {
                match self.require_group(s, cx).and_then(|group| {
                    if group.can_grant() {
                        Ok(group)
                    } else {
                        Err(format!("<{}> has no effect outside <RequireAll>", s.name))
                    }
                }) {
                    Ok(group) => scope.require.get_or_insert_with(Vec::new).push(group),
                    Err(reason) => {
                        self.fail_closed(s.line, format!("`{}`: {reason}", s.text));
                        self.note(s.line, &s.text, NoteKind::Invalid(reason));
                    }
                }
            }
            _ => {
                if guarded {
                    self.fail_closed(
                        s.line,
                        format!(
                            "`{}`: a section paddock does not know, holding restricting access rules",
                            s.text
                        ),
                    );
                }
                self.note(s.line, &s.text, NoteKind::Unknown);
            }
        }
    }

    fn section_invalid(&mut self, s: &Section, reason: &str, guarded: bool) {
        if guarded {
            self.fail_closed(s.line, format!("`{}`: {reason}", s.text));
        }
        self.note(s.line, &s.text, NoteKind::Invalid(reason.to_string()));
    }

    /// `<RequireAll|Any|None>`: only `Require` lines and nested containers.
    fn require_group(&mut self, s: &Section, cx: &Cx) -> Result<Require, String> {
        let name = s.name.to_ascii_lowercase();
        let all = name == "requireall" || name == "requirenotall";
        let mut children = Vec::new();
        for node in &s.body {
            match node {
                Node::Directive(d) if d.name.eq_ignore_ascii_case("require") => {
                    let leaf = parse_require(&d.args, &cx.methods)?;
                    if !leaf.can_grant() && !all {
                        return Err(format!(
                            "line {}: a negated Require has no effect in <{}>",
                            d.line, s.name
                        ));
                    }
                    children.push(leaf);
                }
                Node::Section(inner)
                    if ["requireall", "requireany", "requirenone", "requirenotall"]
                        .contains(&inner.name.to_ascii_lowercase().as_str()) =>
                {
                    let group = self.require_group(inner, cx)?;
                    if !group.can_grant() && !all {
                        return Err(format!(
                            "line {}: <{}> has no effect in <{}>",
                            inner.line, inner.name, s.name
                        ));
                    }
                    children.push(group);
                }
                other => {
                    return Err(format!(
                        "line {}: only Require may stand in <{}>",
                        other.line(),
                        s.name
                    ))
                }
            }
        }
        if !children.iter().any(Require::can_grant) {
            return Err(format!("<{}> holds only negated Require lines", s.name));
        }
        Ok(Require::Group {
            all,
            negate: name == "requirenone" || name == "requirenotall",
            children,
        })
    }

    fn directive(&mut self, d: &Directive, scope: &mut Scope, cx: &Cx) {
        let name = d.name.to_ascii_lowercase();
        if HARMLESS.contains(&name.as_str()) {
            return self.note(d.line, &d.text, NoteKind::Ignored);
        }
        let result = match name.as_str() {
            "require" => parse_require(&d.args, &cx.methods).and_then(|leaf| {
                if leaf.can_grant() {
                    scope.require.get_or_insert_with(Vec::new).push(leaf);
                    Ok(())
                } else {
                    Err("a negated Require has no effect outside <RequireAll>".into())
                }
            }),
            "order" => one(d).and_then(parse_order).map(|order| {
                compat(scope).order.push((cx.methods.clone(), order));
            }),
            "allow" | "deny" => parse_allow(&d.args).map(|hosts| {
                let list = if name == "allow" {
                    &mut compat(scope).allow
                } else {
                    &mut compat(scope).deny
                };
                list.extend(hosts.into_iter().map(|h| (cx.methods.clone(), h)));
            }),
            "satisfy" => keyword(d, &[("any", true), ("all", false)])
                .map(|any| compat(scope).satisfy_any.push((cx.methods.clone(), any))),
            "authtype" => keyword(d, &[("basic", true), ("none", false)])
                .map(|basic| scope.auth_basic = Some(basic)),
            "authname" => one(d).map(|name| scope.auth_name = Some(name.to_string())),
            "authuserfile" => one(d).map(|path| scope.user_file = Some(path.to_string())),
            "authbasicprovider" => {
                if !d.args.is_empty() && d.args.iter().all(|p| p.eq_ignore_ascii_case("file")) {
                    Ok(())
                } else {
                    Err("only the `file` provider is supported".into())
                }
            }
            "authmerging" => keyword(
                d,
                &[
                    ("off", AuthMerging::Off),
                    ("and", AuthMerging::And),
                    ("or", AuthMerging::Or),
                ],
            )
            .map(|merging| scope.auth_merging = Some(merging)),
            "rewriteengine" | "rewritebase" | "rewritecond" | "rewriterule" | "rewriteoptions"
                if cx.in_files =>
            {
                return self.not_honoured(
                    d,
                    NoteKind::Invalid("rewrites inside <Files> are not supported".into()),
                    cx,
                );
            }
            "rewriteengine" => keyword(d, &[("on", true), ("off", false)])
                .map(|on| self.rewrite().engine = Some(on)),
            "rewritebase" => match one(d) {
                Ok(base) if base.starts_with('/') => {
                    self.rewrite().set.base = Some(base.to_string());
                    Ok(())
                }
                _ => Err("expects a URL path starting with `/`".into()),
            },
            "rewriteoptions" => {
                let mut result = Ok(());
                let mut options = self.rewrite().options.unwrap_or_default();
                for option in &d.args {
                    match option.to_ascii_lowercase().as_str() {
                        "inherit" => options.inherit = true,
                        "inheritbefore" => options.inherit_before = true,
                        "inheritdown" => options.inherit_down = true,
                        "inheritdownbefore" => options.inherit_down_before = true,
                        "ignoreinherit" => options.ignore_inherit = true,
                        "mergebase" => options.merge_base = true,
                        "allownoslash" => options.allow_no_slash = true,
                        // Removed in Apache 2.4, which ignores it with a warning.
                        max if max.starts_with("maxredirects=") => {}
                        other => result = Err(format!("option `{other}` is not supported")),
                    }
                }
                self.rewrite().options = Some(options);
                result
            }
            "rewritecond" => {
                let cond = match d.args.as_slice() {
                    [test, pattern] => RewriteCond::parse(test, pattern, ""),
                    [test, pattern, flags] => match brackets(flags) {
                        Some(flags) => RewriteCond::parse(test, pattern, flags),
                        None => Err(RuleError::Invalid(format!("bad flag list `{flags}`"))),
                    },
                    _ => Err(RuleError::Invalid(
                        "expects a test, a pattern and flags".into(),
                    )),
                };
                self.rewrite();
                self.pending_conds.push(cond.map_err(|e| e.to_string()));
                Ok(())
            }
            "rewriterule" => return self.rewrite_rule(d, cx),
            "redirect" | "redirectpermanent" | "redirecttemp" | "redirectmatch" => {
                parse_redirect(&name, &d.args).map(|r| scope.redirects.push(r))
            }
            "errordocument" => parse_error_document(&d.args).map(|e| scope.error_documents.push(e)),
            "directoryindex" if !d.args.is_empty() => {
                let list = if d.args.len() == 1 && d.args[0].eq_ignore_ascii_case("disabled") {
                    Vec::new()
                } else {
                    d.args.clone()
                };
                scope.directory_index = Some(list);
                Ok(())
            }
            "options" => parse_options(&d.args).map(|o| scope.options.push(o)),
            "header" => match parse_header(&d.args) {
                Ok(Some(action)) => {
                    scope.headers.push(action);
                    Ok(())
                }
                Ok(None) => return self.not_honoured(d, NoteKind::Unknown, cx),
                Err(e) => Err(e),
            },
            "addtype" | "addhandler" if d.args.len() >= 2 => {
                let exts = extensions(&d.args[1..]);
                scope.mime.push(if name == "addtype" {
                    MimeChange::AddType(d.args[0].to_ascii_lowercase(), exts)
                } else {
                    MimeChange::AddHandler(handler(&d.args[0]), exts)
                });
                Ok(())
            }
            "removetype" | "removehandler" if !d.args.is_empty() => {
                let exts = extensions(&d.args);
                scope.mime.push(if name == "removetype" {
                    MimeChange::RemoveType(exts)
                } else {
                    MimeChange::RemoveHandler(exts)
                });
                Ok(())
            }
            "forcetype" => one(d).map(|t| {
                scope.force_type = Some(Some(t.to_ascii_lowercase()).filter(|t| t != "none"));
            }),
            "sethandler" => one(d).map(|h| scope.handler = Some(handler(h))),
            "php_flag" | "php_value" => match d.args.as_slice() {
                // `engine` becomes "no scripts here"; it is never handed to PHP, where `engine=0`
                // under CGI would not stop the script being read.
                [key, value] if key.eq_ignore_ascii_case("engine") => {
                    scope.engine = Some(php_bool(value));
                    Ok(())
                }
                // mod_php hands PHP a flag as "1" or "0", whatever the file says ("On", "off").
                [key, value] if name == "php_flag" => {
                    let flag = if php_bool(value) { "1" } else { "0" };
                    scope.php.push((key.clone(), flag.to_owned()));
                    Ok(())
                }
                [key, value] => {
                    scope.php.push((key.clone(), value.clone()));
                    Ok(())
                }
                // `php_value name` alone is how PHP clears a value; paddock has nothing to clear.
                _ => Err("expects a name and a value".into()),
            },
            "php_admin_flag" | "php_admin_value" => {
                Err("not allowed in .htaccess (Apache answers 500): set it in the pool".into())
            }
            "setenv" => match d.args.as_slice() {
                [name] | [name, _] => {
                    let value = d.args.get(1).cloned().unwrap_or_default();
                    scope.env.push((name.clone(), Some(value)));
                    Ok(())
                }
                _ => Err("expects a name and a value".into()),
            },
            "unsetenv" if !d.args.is_empty() => {
                scope.env.extend(d.args.iter().map(|n| (n.clone(), None)));
                Ok(())
            }
            "setenvif" | "setenvifnocase" | "browsermatch" | "browsermatchnocase" => {
                parse_set_env_if(&name, &d.args).map(|s| scope.set_env_if.push(s))
            }
            _ => return self.not_honoured(d, NoteKind::Unknown, cx),
        };
        if let Err(reason) = result {
            self.not_honoured(d, NoteKind::Invalid(reason), cx);
        }
    }

    fn rewrite(&mut self) -> &mut RewriteConf {
        let dir = self.rules.dir.clone();
        self.rules.rewrite.get_or_insert_with(|| RewriteConf {
            engine: None,
            options: None,
            set: RewriteSet {
                rules: Vec::new(),
                directory: Some(dir),
                base: None,
            },
        })
    }

    fn rewrite_rule(&mut self, d: &Directive, cx: &Cx) {
        let conds = std::mem::take(&mut self.pending_conds);
        let flags_text = match d.args.get(2) {
            Some(f) => brackets(f),
            None => Some(""),
        };
        let compiled = (|| {
            let (pattern, substitution) = match d.args.as_slice() {
                [p, s] | [p, s, _] => (p, s),
                _ => return Err("expects a pattern, a substitution and flags".to_string()),
            };
            let flags = flags_text.ok_or("the flags must be in brackets")?;
            let conds = conds.into_iter().collect::<Result<Vec<_>, _>>()?;
            let (flags, nocase) = RewriteRule::parse_flags(flags).map_err(|e| e.to_string())?;
            RewriteRule::new(pattern, substitution, conds, flags, nocase).map_err(|e| e.to_string())
        })();
        match compiled {
            Ok(rule) => self.rewrite().set.rules.push(rule),
            Err(reason) => {
                let refuses = flags_text.unwrap_or_default().split(',').any(|f| {
                    let f = f.trim().to_ascii_lowercase();
                    ["f", "forbidden", "g", "gone"].contains(&f.as_str())
                });
                if refuses {
                    self.fail_closed(
                        d.line,
                        format!(
                            "`{}`: a refusing rule paddock cannot compile ({reason})",
                            d.text
                        ),
                    );
                }
                self.not_honoured(d, NoteKind::Invalid(reason), cx);
            }
        }
    }
}

fn compat(scope: &mut Scope) -> &mut Compat {
    scope.compat.get_or_insert_with(Compat::default)
}

fn one(d: &Directive) -> Result<&str, String> {
    match d.args.as_slice() {
        [only] => Ok(only),
        _ => Err("expects one argument".into()),
    }
}

/// The single argument as one of `choices` (without case).
fn keyword<T: Copy>(d: &Directive, choices: &[(&str, T)]) -> Result<T, String> {
    let arg = one(d)?;
    choices
        .iter()
        .find(|(word, _)| arg.eq_ignore_ascii_case(word))
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
            format!("expects one of {}", words.join(", "))
        })
}

fn brackets(text: &str) -> Option<&str> {
    text.strip_prefix('[')?.strip_suffix(']')
}

/// Names whose directives decide who may see what: not honouring one must deny.
fn is_access_name(lower: &str) -> bool {
    matches!(lower, "require" | "allow" | "deny" | "order" | "satisfy")
        || lower.starts_with("auth")
        || lower.starts_with("sslrequire")
}

/// Whether a section's body (at any depth) restricts access: anything but the forms that let
/// everyone in (`Require all granted`, `Allow from all`, and `Order`/`Satisfy`). Only
/// there does a directive paddock does not know make it fail closed: a cache plugin's
/// `<FilesMatch "\.css$"> … Allow from all` block must not close a directory.
fn restricts(nodes: &[Node]) -> bool {
    let is = |args: &[String], words: &[&str]| {
        args.len() == words.len()
            && args
                .iter()
                .zip(words)
                .all(|(a, w)| a.eq_ignore_ascii_case(w))
    };
    nodes.iter().any(|node| match node {
        Node::Directive(d) => match d.name.to_ascii_lowercase().as_str() {
            "require" => !is(&d.args, &["all", "granted"]),
            "allow" => !is(&d.args, &["from", "all"]),
            // They only arrange what `Allow`/`Deny` say.
            "order" | "satisfy" => false,
            name => is_access_name(name),
        },
        Node::Section(s) => restricts(&s.body),
    })
}

/// Whether `<IfModule>`'s argument names a module paddock counts as loaded. Apache compares
/// exactly with the source file (`mod_rewrite.c`) or the identifier (`rewrite_module`).
fn module_present(name: &str) -> bool {
    let short = name
        .strip_prefix("mod_")
        .and_then(|n| n.strip_suffix(".c"))
        .or_else(|| name.strip_suffix("_module"));
    short.is_some_and(|short| MODULES.contains(&short))
}
