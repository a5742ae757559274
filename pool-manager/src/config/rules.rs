//! A site's rule tables checked and turned into [`SiteRulesSpec`]. Every pattern is compiled here
//! once (with the same code the front end uses), so a bad regex or glob fails at start-up and on
//! reload with its file, line and key, never at the first request.

use std::path::Path;

use protocol::site_rules::{
    AuthRuleSpec, ClientRuleSpec, DenyRuleSpec, HeaderRuleSpec, NoScriptsAction, NoScriptsRuleSpec,
    PathPatternSpec, QueryMode, RateLimitRuleSpec, RewriteCondition, RewriteRuleSpec,
    SiteRulesSpec,
};
use rules::site::SiteRules;

use super::error::{invalid, Invalid};
use super::raw::RawSite;

pub(super) fn validate_rules(
    name: &str,
    site: &RawSite,
    base: &Path,
) -> Result<SiteRulesSpec, Invalid> {
    let at = |kind: &str, i: usize| {
        vec![
            "sites".to_string(),
            name.to_string(),
            format!("{kind}[{i}]"),
        ]
    };
    let fail = |key: Vec<String>, message: String| Invalid { path: key, message };
    let mut spec = SiteRulesSpec {
        htaccess: site.htaccess.unwrap_or(true),
        ..SiteRulesSpec::default()
    };
    for (i, rule) in site.deny.iter().enumerate() {
        let key = at("deny", i);
        spec.deny.push(DenyRuleSpec {
            pattern: pattern(&key, &rule.prefix, &rule.glob, &rule.regex)?,
            status: rule.status.unwrap_or(403),
        });
    }
    for (i, rule) in site.no_scripts.iter().enumerate() {
        let key = at("no_scripts", i);
        let action = match rule.action.as_deref() {
            None | Some("deny") => NoScriptsAction::Deny,
            Some("static") => NoScriptsAction::Static,
            Some(other) => {
                return Err(fail(
                    key,
                    format!("action {other:?}: \"deny\" or \"static\""),
                ))
            }
        };
        spec.no_scripts.push(NoScriptsRuleSpec {
            pattern: pattern(&key, &rule.prefix, &rule.glob, &rule.regex)?,
            action,
        });
    }
    for (i, rule) in site.rewrite.iter().enumerate() {
        let key = at("rewrite", i);
        let when = rule
            .when
            .iter()
            .map(|w| match w.as_str() {
                "file" => Ok(RewriteCondition::File),
                "dir" => Ok(RewriteCondition::Dir),
                "not_file" => Ok(RewriteCondition::NotFile),
                "not_dir" => Ok(RewriteCondition::NotDir),
                other => Err(fail(
                    key.clone(),
                    format!("when {other:?}: \"file\", \"dir\", \"not_file\" or \"not_dir\""),
                )),
            })
            .collect::<Result<_, _>>()?;
        let query = match rule.query.as_deref() {
            None | Some("replace") => QueryMode::Replace,
            Some("append") => QueryMode::Append,
            Some("discard") => QueryMode::Discard,
            Some(other) => {
                return Err(fail(
                    key,
                    format!("query {other:?}: \"replace\", \"append\" or \"discard\""),
                ))
            }
        };
        if let Some(status) = rule.redirect {
            if ![301, 302, 303, 307, 308].contains(&status) {
                return Err(fail(
                    key,
                    format!("redirect {status} is not a redirect status (301, 302, 303, 307, 308)"),
                ));
            }
        }
        spec.rewrites.push(RewriteRuleSpec {
            pattern: rule.pattern.clone(),
            case_insensitive: rule.case_insensitive,
            to: rule.to.clone(),
            when,
            query,
            redirect: rule.redirect,
            last: rule.last.unwrap_or(true),
        });
    }
    for (i, rule) in site.headers.iter().enumerate() {
        let key = at("headers", i);
        if rule.set.is_empty() && rule.unset.is_empty() {
            return Err(fail(key, "set or unset at least one header".into()));
        }
        spec.headers.push(HeaderRuleSpec {
            pattern: pattern(&key, &rule.prefix, &rule.glob, &rule.regex)?,
            set: rule
                .set
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            unset: rule.unset.clone(),
        });
    }
    for (i, rule) in site.auth.iter().enumerate() {
        let key = at("auth", i);
        let htpasswd = base.join(&rule.htpasswd);
        if let Err(e) = std::fs::read_to_string(&htpasswd) {
            return Err(fail(
                key,
                format!("cannot read the htpasswd file {}: {e}", htpasswd.display()),
            ));
        }
        spec.auth.push(AuthRuleSpec {
            pattern: pattern(&key, &rule.prefix, &rule.glob, &rule.regex)?,
            realm: rule.realm.clone().unwrap_or_else(|| "Restricted".into()),
            htpasswd,
            users: rule.users.clone(),
        });
    }
    for (i, rule) in site.clients.iter().enumerate() {
        let key = at("clients", i);
        if rule.allow.is_empty() && rule.deny.is_empty() {
            return Err(fail(key, "list addresses to allow or to deny".into()));
        }
        spec.clients.push(ClientRuleSpec {
            pattern: pattern(&key, &rule.prefix, &rule.glob, &rule.regex)?,
            allow: rule.allow.clone(),
            deny: rule.deny.clone(),
            status: rule.status.unwrap_or(403),
        });
    }
    for (i, rule) in site.rate_limit.iter().enumerate() {
        let key = at("rate_limit", i);
        let per_second = parse_rate(&rule.rate).ok_or_else(|| {
            fail(
                key.clone(),
                format!("rate {:?}: e.g. \"10/s\", \"30/m\" or \"100/h\"", rule.rate),
            )
        })?;
        spec.rate_limits.push(RateLimitRuleSpec {
            pattern: pattern(&key, &rule.prefix, &rule.glob, &rule.regex)?,
            per_second,
            // One minute's worth (at least one): a client can make a short burst of normal use.
            burst: rule
                .burst
                .unwrap_or_else(|| (per_second * 60.0).clamp(1.0, 100.0) as u32),
            methods: rule.methods.clone(),
        });
    }
    // Compiled as the front end will: the error names the rule kind and its position.
    SiteRules::compile(&spec).map_err(|e| fail(at(e.kind, e.index), e.source.to_string()))?;
    Ok(spec)
}

/// Exactly one of `prefix`, `glob`, `regex`.
fn pattern(
    key: &[String],
    prefix: &Option<String>,
    glob: &Option<String>,
    regex: &Option<String>,
) -> Result<PathPatternSpec, Invalid> {
    match (prefix, glob, regex) {
        (Some(p), None, None) => Ok(PathPatternSpec::Prefix(p.clone())),
        (None, Some(g), None) => Ok(PathPatternSpec::Glob(g.clone())),
        (None, None, Some(r)) => Ok(PathPatternSpec::Regex(r.clone())),
        _ => {
            let key: Vec<&str> = key.iter().map(String::as_str).collect();
            Err(invalid(&key, "give exactly one of prefix, glob or regex"))
        }
    }
}

/// `N/s`, `N/m`, `N/h` as requests per second.
fn parse_rate(rate: &str) -> Option<f64> {
    let (count, unit) = rate.trim().split_once('/')?;
    let count: f64 = count
        .trim()
        .parse()
        .ok()
        .filter(|c: &f64| *c > 0.0 && c.is_finite())?;
    let seconds = match unit.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        _ => return None,
    };
    Some(count / seconds)
}
