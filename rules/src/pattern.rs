//! Path patterns: which request paths a rule applies to.
//!
//! Patterns match the path after percent-decoding and normalisation (the front end decodes once
//! with `protocol::cgi::decode_url_path` and joins the segments with `/`), so `/%2egit/`,
//! `//.git/` and `/a/../.git/` all reach a rule as `/.git/`.

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;

use protocol::site_rules::PathPatternSpec;

use crate::RuleError;

#[derive(Debug, Clone)]
pub enum PathPattern {
    Prefix(String),
    Glob(GlobMatcher),
    Regex(Regex),
}

impl PathPattern {
    pub fn compile(spec: &PathPatternSpec) -> Result<Self, RuleError> {
        Ok(match spec {
            PathPatternSpec::Prefix(prefix) => {
                if !prefix.starts_with('/') {
                    return Err(RuleError::Invalid(format!(
                        "the prefix `{prefix}` must start with `/`"
                    )));
                }
                Self::Prefix(prefix.clone())
            }
            PathPatternSpec::Glob(glob) => {
                let compiled = GlobBuilder::new(glob)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| RuleError::Glob {
                        pattern: glob.clone(),
                        reason: e.kind().to_string(),
                    })?;
                Self::Glob(compiled.compile_matcher())
            }
            PathPatternSpec::Regex(pattern) => Self::Regex(compile_regex(pattern, false)?),
        })
    }

    /// Whether the decoded, normalised `path` (starting with `/`) is covered.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Self::Prefix(prefix) => {
                path.starts_with(prefix.as_str())
                    || prefix
                        .strip_suffix('/')
                        .is_some_and(|dir| !dir.is_empty() && path == dir)
            }
            Self::Glob(glob) => glob.is_match(path),
            Self::Regex(regex) => regex.is_match(path),
        }
    }
}

/// Compiles a regular expression, naming it in the error.
pub fn compile_regex(pattern: &str, case_insensitive: bool) -> Result<Regex, RuleError> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        // A hostile `.htaccess` must not make the front end build a huge automaton.
        .size_limit(1 << 20)
        .build()
        .map_err(|e| RuleError::Regex {
            pattern: pattern.to_string(),
            reason: e.to_string().lines().last().unwrap_or_default().to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(spec: PathPatternSpec) -> PathPattern {
        PathPattern::compile(&spec).unwrap()
    }

    #[test]
    fn a_prefix_ending_in_a_slash_covers_the_directory_itself() {
        let p = pattern(PathPatternSpec::Prefix("/.git/".into()));
        assert!(p.matches("/.git/config"));
        assert!(p.matches("/.git"));
        assert!(!p.matches("/.github"));
        assert!(!p.matches("/x/.git/config"));
    }

    #[test]
    fn a_single_star_stays_in_its_segment_and_a_double_star_crosses() {
        let one = pattern(PathPatternSpec::Glob("/uploads/*.php".into()));
        assert!(one.matches("/uploads/x.php"));
        assert!(!one.matches("/uploads/2024/x.php"));
        let any = pattern(PathPatternSpec::Glob("/uploads/**/*.php".into()));
        assert!(any.matches("/uploads/2024/01/x.php"));
        assert!(any.matches("/uploads/x.php"));
        assert!(!any.matches("/uploads/x.php.txt"));
    }

    #[test]
    fn a_regex_is_searched_and_errors_name_the_pattern() {
        let p = pattern(PathPatternSpec::Regex(r"\.(bak|old)$".into()));
        assert!(p.matches("/wp-config.php.bak"));
        assert!(!p.matches("/x.bakery"));
        let e = PathPattern::compile(&PathPatternSpec::Regex("(".into())).unwrap_err();
        assert!(e.to_string().contains("`(`"), "{e}");
        let e = PathPattern::compile(&PathPatternSpec::Prefix("x/".into())).unwrap_err();
        assert!(e.to_string().contains("start with"), "{e}");
    }
}
