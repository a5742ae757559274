//! The arguments of single directives, read as the Apache module that owns each reads them
//! (mod_authz_core, mod_access_compat, mod_alias, core, mod_headers, mod_mime, mod_setenvif).
//! Each returns the compiled form or the reason it cannot, which `compile` turns into a note
//! (and, for access directives, a denial).

use super::access::{parse_hosts, Hosts, Methods, Order, Provider, Require};
use super::compile::{
    Attribute, ErrorDocument, Handler, HeaderAction, HeaderOp, OptionsLine, Redirect, RedirectFrom,
    SetEnvIf,
};

pub(super) fn parse_require(args: &[String], methods: &Methods) -> Result<Require, String> {
    let (negate, args) = match args.split_first() {
        Some((first, rest)) if first.eq_ignore_ascii_case("not") => (true, rest),
        _ => (false, args),
    };
    let Some((provider, rest)) = args.split_first() else {
        return Err("Require needs a provider".into());
    };
    let provider = match (provider.to_ascii_lowercase().as_str(), rest) {
        ("all", [v]) if v.eq_ignore_ascii_case("granted") => Provider::All(true),
        ("all", [v]) if v.eq_ignore_ascii_case("denied") => Provider::All(false),
        ("ip", list) if !list.is_empty() => Provider::Ip(parse_hosts(list)?),
        ("local", []) => Provider::Local,
        ("valid-user", []) => Provider::ValidUser,
        ("user", list) if !list.is_empty() => Provider::User(list.to_vec()),
        ("method", list) if !list.is_empty() => {
            Provider::Method(list.iter().map(|m| m.to_ascii_uppercase()).collect())
        }
        ("env", list) if !list.is_empty() => Provider::Env(list.to_vec()),
        _ => return Err(format!("`Require {}` is not supported", args.join(" "))),
    };
    Ok(Require::Leaf {
        provider,
        negate,
        methods: methods.clone(),
    })
}

pub(super) fn parse_order(text: &str) -> Result<Order, String> {
    match text.to_ascii_lowercase().as_str() {
        "allow,deny" => Ok(Order::AllowDeny),
        "deny,allow" => Ok(Order::DenyAllow),
        "mutual-failure" => Ok(Order::MutualFailure),
        _ => Err("expects Allow,Deny or Deny,Allow".into()),
    }
}

pub(super) fn parse_allow(args: &[String]) -> Result<Vec<Hosts>, String> {
    let Some((from, rest)) = args.split_first() else {
        return Err("expects `from` and hosts".into());
    };
    if !from.eq_ignore_ascii_case("from") || rest.is_empty() {
        return Err("expects `from` and hosts".into());
    }
    let mut hosts = Vec::new();
    let mut nets = Vec::new();
    for item in rest {
        match item.strip_prefix("env=") {
            Some(var) => match var.strip_prefix('!') {
                Some(var) => hosts.push(Hosts::Env(var.to_string(), true)),
                None => hosts.push(Hosts::Env(var.to_string(), false)),
            },
            None => nets.push(item.clone()),
        }
    }
    if !nets.is_empty() {
        hosts.push(Hosts::Nets(parse_hosts(&nets)?));
    }
    Ok(hosts)
}

pub(super) fn parse_redirect(name: &str, args: &[String]) -> Result<Redirect, String> {
    let keyword = |s: &str| match s.to_ascii_lowercase().as_str() {
        "permanent" => Some(301),
        "temp" => Some(302),
        "seeother" => Some(303),
        "gone" => Some(410),
        digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().ok()
        }
        _ => None,
    };
    let (status, rest) = match name {
        "redirectpermanent" => (301, args),
        "redirecttemp" => (302, args),
        _ => match args.split_first() {
            Some((first, rest)) if keyword(first).is_some() => {
                (keyword(first).unwrap_or(302), rest)
            }
            _ => (302, args),
        },
    };
    let redirect = (300..400).contains(&status);
    let (from, to) = match (rest, redirect) {
        ([from, to], true) => (from, Some(to.clone())),
        ([from], false) => (from, None),
        _ if redirect => return Err("expects a URL path and a target URL".into()),
        _ => return Err(format!("status {status} takes a URL path and no target")),
    };
    if !(300..600).contains(&status) {
        return Err(format!("status {status} is not a redirect or an error"));
    }
    if let Some(to) = &to {
        if !to.starts_with('/') && !to.contains("://") {
            return Err(format!("the target `{to}` is not a URL"));
        }
    }
    let from = if name == "redirectmatch" {
        RedirectFrom::Regex(crate::pattern::compile_regex(from, false).map_err(|e| e.to_string())?)
    } else if from.starts_with('/') {
        RedirectFrom::Prefix(from.clone())
    } else {
        return Err(format!("the URL path `{from}` must start with `/`"));
    };
    Ok(Redirect { from, status, to })
}

pub(super) fn parse_error_document(args: &[String]) -> Result<(u16, ErrorDocument), String> {
    let [code, doc] = args else {
        return Err("expects a status and a document (quote a message with blanks)".into());
    };
    let code: u16 = code
        .parse()
        .ok()
        .filter(|c| (400..600).contains(c))
        .ok_or_else(|| format!("`{code}` is not an error status"))?;
    let doc = doc.clone();
    // core.c's heuristic: blanks make a message; `/` a local page; a URL a redirect.
    let doc = if doc.eq_ignore_ascii_case("default") {
        ErrorDocument::Default
    } else if doc.contains(' ') {
        ErrorDocument::Text(doc)
    } else if doc.starts_with('/') {
        ErrorDocument::Local(doc)
    } else if doc.contains("://") {
        if code == 401 {
            return Err("a 401 document cannot be a full URL (Apache ignores it)".into());
        }
        ErrorDocument::Remote(doc)
    } else {
        ErrorDocument::Text(doc)
    };
    Ok((code, doc))
}

const OPTION_NAMES: &[&str] = &[
    "all",
    "none",
    "indexes",
    "followsymlinks",
    "symlinksifownermatch",
    "execcgi",
    "includes",
    "includesnoexec",
    "multiviews",
];

pub(super) fn parse_options(args: &[String]) -> Result<OptionsLine, String> {
    let mut words = Vec::new();
    let mut signed = 0;
    for arg in args {
        let (on, word) = match arg.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => match arg.strip_prefix('-') {
                Some(rest) => (false, rest),
                None => (true, arg.as_str()),
            },
        };
        if word.len() != arg.len() {
            signed += 1;
        }
        let word = word.to_ascii_lowercase();
        if !OPTION_NAMES.contains(&word.as_str()) {
            return Err(format!("unknown option `{arg}`"));
        }
        words.push((word, on));
    }
    if signed != 0 && signed != words.len() {
        return Err("either every option has + or -, or none has".into());
    }
    Ok(OptionsLine {
        absolute: signed == 0,
        words,
    })
}

/// `Ok(None)`: a form paddock does not implement (edit, echo, note, conditions, formats).
pub(super) fn parse_header(args: &[String]) -> Result<Option<HeaderAction>, String> {
    let (always, args) = match args.split_first() {
        Some((first, rest)) if first.eq_ignore_ascii_case("always") => (true, rest),
        Some((first, rest)) if first.eq_ignore_ascii_case("onsuccess") => (false, rest),
        _ => (false, args),
    };
    let Some((op, rest)) = args.split_first() else {
        return Err("expects an action and a header".into());
    };
    let op = match op.to_ascii_lowercase().as_str() {
        "set" => HeaderOp::Set,
        "append" => HeaderOp::Append,
        "add" => HeaderOp::Add,
        "merge" => HeaderOp::Merge,
        "setifempty" => HeaderOp::SetIfEmpty,
        "unset" => HeaderOp::Unset,
        "echo" | "edit" | "edit*" | "note" => return Ok(None),
        other => return Err(format!("unknown action `{other}`")),
    };
    let (name, value) = match (op, rest) {
        (HeaderOp::Unset, [name]) => (name, String::new()),
        (HeaderOp::Unset, _) => return Ok(None),
        (_, [name, value]) => (name, value.clone()),
        (_, [_, _, ..]) => return Ok(None),
        _ => return Err("expects a header and a value".into()),
    };
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("`{name}` is not a header name"));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err("control characters in the value".into());
    }
    if value.contains('%') {
        // mod_headers' format specifiers (`%t`, `%{VAR}e`) are not implemented.
        return Ok(None);
    }
    let header = http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("`{name}` is not a header name"))?;
    let header_value = http::HeaderValue::from_str(&value).ok();
    Ok(Some(HeaderAction {
        always,
        op,
        name: name.as_str().into(),
        value: value.into(),
        header,
        header_value,
    }))
}

pub(super) fn extensions(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
        .collect()
}

pub(super) fn handler(name: &str) -> Handler {
    if name.to_ascii_lowercase().contains("php") {
        Handler::Php
    } else {
        Handler::Static
    }
}

pub(super) fn php_bool(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "on" | "1" | "true" | "yes"
    )
}

pub(super) fn parse_set_env_if(name: &str, args: &[String]) -> Result<SetEnvIf, String> {
    let (attribute, rest) = if name.starts_with("browsermatch") {
        ("User-Agent", args)
    } else {
        match args.split_first() {
            Some((attribute, rest)) => (attribute.as_str(), rest),
            None => return Err("expects an attribute, a regex and variables".into()),
        }
    };
    let Some((regex, sets)) = rest.split_first() else {
        return Err("expects a regex and variables".into());
    };
    if sets.is_empty() {
        return Err("expects at least one variable".into());
    }
    let attribute = match attribute.to_ascii_lowercase().as_str() {
        "remote_addr" => Attribute::RemoteAddr,
        "request_method" => Attribute::RequestMethod,
        "request_uri" => Attribute::RequestUri,
        "request_protocol" => Attribute::RequestProtocol,
        "remote_host" | "server_addr" => {
            return Err(format!("the attribute `{attribute}` is not supported"))
        }
        _ if attribute
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Attribute::Header(attribute.to_string())
        }
        _ => return Err(format!("the attribute `{attribute}` is not supported")),
    };
    let regex = crate::pattern::compile_regex(regex, name.ends_with("nocase"))
        .map_err(|e| e.to_string())?;
    let sets = sets
        .iter()
        .map(|s| match s.strip_prefix('!') {
            Some(var) => (var.to_string(), None),
            None => match s.split_once('=') {
                Some((var, value)) => (var.to_string(), Some(value.to_string())),
                None => (s.clone(), Some("1".to_string())),
            },
        })
        .collect();
    Ok(SetEnvIf {
        attribute,
        regex,
        sets,
    })
}
