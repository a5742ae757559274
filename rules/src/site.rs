//! A site's native rules, compiled once per configuration generation from the spec the master
//! sent. Every pattern is built here, so a request only matches.

use std::path::PathBuf;

use protocol::site_rules::{
    NoScriptsAction, PathPatternSpec, QueryMode, RewriteCondition, SiteRulesSpec,
};

use crate::clients::{AddressList, ClientFilter};
use crate::pattern::PathPattern;
use crate::rewrite::{FileTest, RewriteCond, RewriteRule, RewriteSet, RuleFlags};
use crate::RuleError;

#[derive(Debug, Clone, Default)]
pub struct SiteRules {
    pub deny: Vec<(PathPattern, u16)>,
    pub no_scripts: Vec<(PathPattern, NoScriptsAction)>,
    pub rewrites: RewriteSet,
    pub headers: Vec<HeaderRule>,
    pub auth: Vec<AuthRule>,
    pub clients: Vec<ClientRule>,
    pub rate_limits: Vec<RateLimitRule>,
    pub htaccess: bool,
}

/// `Clone` copies the parsed headers deeply (see [`crate::header`]).
#[derive(Debug)]
pub struct HeaderRule {
    pub pattern: PathPattern,
    /// Parsed once when the rules compile, not for every response.
    pub set: Vec<(http::HeaderName, http::HeaderValue)>,
    pub unset: Vec<http::HeaderName>,
}

impl Clone for HeaderRule {
    fn clone(&self) -> Self {
        use crate::header::{own_name, own_value};
        Self {
            pattern: self.pattern.clone(),
            set: self
                .set
                .iter()
                .map(|(name, value)| (own_name(name), own_value(value)))
                .collect(),
            unset: self.unset.iter().map(own_name).collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthRule {
    pub pattern: PathPattern,
    pub realm: String,
    pub htpasswd: PathBuf,
    /// Empty: any user of the file.
    pub users: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ClientRule {
    pub pattern: PathPattern,
    pub filter: ClientFilter,
    pub status: u16,
}

#[derive(Debug, Clone)]
pub struct RateLimitRule {
    /// Its place among the site's rate limits: buckets are kept per rule and client.
    pub index: usize,
    pub pattern: PathPattern,
    pub per_second: f64,
    pub burst: u32,
    /// Upper-case; empty for every method.
    pub methods: Vec<String>,
}

impl RateLimitRule {
    pub fn applies_to(&self, method: &str, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
            && self.pattern.matches(path)
    }
}

/// Which kind of rule (as the configuration file names its table: `rewrite`, `rate_limit`, …),
/// and its position in that kind's list, for errors that the configuration loader turns into a
/// line number.
#[derive(Debug, thiserror::Error)]
#[error("{kind}[{index}]: {source}")]
pub struct SiteRuleError {
    pub kind: &'static str,
    pub index: usize,
    #[source]
    pub source: RuleError,
}

impl SiteRules {
    pub fn compile(spec: &SiteRulesSpec) -> Result<Self, SiteRuleError> {
        let at = |kind, index| {
            move |source| SiteRuleError {
                kind,
                index,
                source,
            }
        };
        let pattern = |spec: &PathPatternSpec, kind, index| {
            PathPattern::compile(spec).map_err(at(kind, index))
        };
        let mut rules = Self {
            htaccess: spec.htaccess,
            ..Self::default()
        };
        for (i, rule) in spec.deny.iter().enumerate() {
            let status = deny_status(rule.status).map_err(at("deny", i))?;
            rules
                .deny
                .push((pattern(&rule.pattern, "deny", i)?, status));
        }
        for (i, rule) in spec.no_scripts.iter().enumerate() {
            rules
                .no_scripts
                .push((pattern(&rule.pattern, "no_scripts", i)?, rule.action));
        }
        for (i, rule) in spec.rewrites.iter().enumerate() {
            let conditions = rule
                .when
                .iter()
                .map(|c| match c {
                    RewriteCondition::File => RewriteCond::request_file(FileTest::File, false),
                    RewriteCondition::Dir => RewriteCond::request_file(FileTest::Dir, false),
                    RewriteCondition::NotFile => RewriteCond::request_file(FileTest::File, true),
                    RewriteCondition::NotDir => RewriteCond::request_file(FileTest::Dir, true),
                })
                .collect();
            let flags = RuleFlags {
                last: rule.last,
                query: match rule.query {
                    QueryMode::Replace => None,
                    mode => Some(mode),
                },
                redirect: rule.redirect,
                ..RuleFlags::default()
            };
            let compiled = RewriteRule::new(
                &rule.pattern,
                &rule.to,
                conditions,
                flags,
                rule.case_insensitive,
            )
            .map_err(at("rewrite", i))?;
            rules.rewrites.rules.push(compiled);
        }
        for (i, rule) in spec.headers.iter().enumerate() {
            let set = rule
                .set
                .iter()
                .map(|(name, value)| {
                    let (name, value) = header(name, Some(value))?;
                    Ok((name, value.expect("a value was given")))
                })
                .collect::<Result<_, RuleError>>()
                .map_err(at("headers", i))?;
            let unset = rule
                .unset
                .iter()
                .map(|name| header(name, None).map(|(name, _)| name))
                .collect::<Result<_, RuleError>>()
                .map_err(at("headers", i))?;
            rules.headers.push(HeaderRule {
                pattern: pattern(&rule.pattern, "headers", i)?,
                set,
                unset,
            });
        }
        for (i, rule) in spec.auth.iter().enumerate() {
            if rule.realm.contains(['"', '\r', '\n']) {
                return Err(at("auth", i)(RuleError::Invalid(
                    "the realm may not contain quotes or line breaks".into(),
                )));
            }
            rules.auth.push(AuthRule {
                pattern: pattern(&rule.pattern, "auth", i)?,
                realm: rule.realm.clone(),
                htpasswd: rule.htpasswd.clone(),
                users: rule.users.clone(),
            });
        }
        for (i, rule) in spec.clients.iter().enumerate() {
            let filter = ClientFilter {
                allow: AddressList::parse(&rule.allow).map_err(at("clients", i))?,
                deny: AddressList::parse(&rule.deny).map_err(at("clients", i))?,
            };
            let status = deny_status(rule.status).map_err(at("clients", i))?;
            rules.clients.push(ClientRule {
                pattern: pattern(&rule.pattern, "clients", i)?,
                filter,
                status,
            });
        }
        for (i, rule) in spec.rate_limits.iter().enumerate() {
            if !(rule.per_second > 0.0 && rule.per_second.is_finite()) || rule.burst == 0 {
                return Err(at("rate_limit", i)(RuleError::Invalid(
                    "the rate and the burst must be above zero".into(),
                )));
            }
            rules.rate_limits.push(RateLimitRule {
                index: i,
                pattern: pattern(&rule.pattern, "rate_limit", i)?,
                per_second: rule.per_second,
                burst: rule.burst,
                methods: rule
                    .methods
                    .iter()
                    .map(|m| m.to_ascii_uppercase())
                    .collect(),
            });
        }
        Ok(rules)
    }

    /// The status of the first deny rule that covers `path`.
    pub fn denied(&self, path: &str) -> Option<u16> {
        self.deny
            .iter()
            .find(|(pattern, _)| pattern.matches(path))
            .map(|(_, status)| *status)
    }

    /// What happens to a script at `path` (its URL name), if a `no_scripts` rule covers it.
    pub fn no_scripts(&self, path: &str) -> Option<NoScriptsAction> {
        self.no_scripts
            .iter()
            .find(|(pattern, _)| pattern.matches(path))
            .map(|(_, action)| *action)
    }
}

fn deny_status(status: u16) -> Result<u16, RuleError> {
    match status {
        403 | 404 => Ok(status),
        other => Err(RuleError::Invalid(format!(
            "status {other}: a denied path is answered 403 or 404"
        ))),
    }
}

/// A header name is an HTTP token; a value has no control characters.
/// A header rule's name and value, checked and parsed.
fn header(
    name: &str,
    value: Option<&str>,
) -> Result<(http::HeaderName, Option<http::HeaderValue>), RuleError> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(RuleError::Header(name.to_string()));
    }
    let parsed_name = http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| RuleError::Header(name.to_string()))?;
    let control = || RuleError::Header(format!("{name}: (control characters)"));
    let value = match value {
        Some(v) if v.chars().any(|c| c.is_control() && c != '\t') => return Err(control()),
        Some(v) => Some(http::HeaderValue::from_str(v).map_err(|_| control())?),
        None => None,
    };
    Ok((parsed_name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::site_rules::{DenyRuleSpec, RateLimitRuleSpec, RewriteRuleSpec};

    #[test]
    fn errors_name_the_rule_and_its_position() {
        let spec = SiteRulesSpec {
            deny: vec![
                DenyRuleSpec {
                    pattern: PathPatternSpec::Prefix("/.git/".into()),
                    status: 404,
                },
                DenyRuleSpec {
                    pattern: PathPatternSpec::Regex("[".into()),
                    status: 403,
                },
            ],
            ..Default::default()
        };
        let e = SiteRules::compile(&spec).unwrap_err();
        assert_eq!((e.kind, e.index), ("deny", 1));
        let spec = SiteRulesSpec {
            rate_limits: vec![RateLimitRuleSpec {
                pattern: PathPatternSpec::Prefix("/".into()),
                per_second: 0.0,
                burst: 1,
                methods: vec![],
            }],
            ..Default::default()
        };
        assert_eq!(SiteRules::compile(&spec).unwrap_err().kind, "rate_limit");
    }

    #[test]
    fn deny_and_rewrites_compile() {
        let spec = SiteRulesSpec {
            deny: vec![DenyRuleSpec {
                pattern: PathPatternSpec::Glob("/wp-content/uploads/**/*.php".into()),
                status: 403,
            }],
            rewrites: vec![RewriteRuleSpec {
                pattern: "^/wiki/(.*)$".into(),
                case_insensitive: false,
                to: "/w/index.php?title=$1".into(),
                when: vec![RewriteCondition::NotFile],
                query: QueryMode::Append,
                redirect: None,
                last: true,
            }],
            ..Default::default()
        };
        let rules = SiteRules::compile(&spec).unwrap();
        assert_eq!(rules.denied("/wp-content/uploads/2024/x.php"), Some(403));
        assert_eq!(rules.denied("/wp-content/uploads/2024/x.png"), None);
        assert_eq!(rules.rewrites.rules.len(), 1);
    }
}
