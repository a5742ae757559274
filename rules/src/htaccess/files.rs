//! Which file names a `<Files>` or `<FilesMatch>` section covers. Apache tests the last
//! component of the file the request maps to (after PATH_INFO is split off): `<Files>` with
//! shell wildcards (`*`, `?`, `[...]`, as `apr_fnmatch` reads them, case-sensitive and never
//! across `/`), `<Files ~ "re">` and `<FilesMatch "re">` with a regular expression searched
//! anywhere in the name.

use regex::Regex;

use crate::pattern::compile_regex;
use crate::RuleError;

#[derive(Debug, Clone)]
pub(super) enum FileMatcher {
    Wildcard(String),
    Regex(Regex),
}

impl FileMatcher {
    /// From a section's arguments: `<Files pat>`, `<Files ~ re>`, `<FilesMatch re>`.
    pub(super) fn from_section(name: &str, args: &[String]) -> Result<Self, RuleError> {
        let regex = name.eq_ignore_ascii_case("FilesMatch");
        match args {
            [pattern] if regex => Ok(Self::Regex(compile_regex(pattern, false)?)),
            [tilde, pattern] if !regex && tilde == "~" => {
                Ok(Self::Regex(compile_regex(pattern, false)?))
            }
            [pattern] => Ok(Self::Wildcard(pattern.clone())),
            _ => Err(RuleError::Invalid(format!(
                "<{name}> takes one pattern, not {}",
                args.len()
            ))),
        }
    }

    pub(super) fn matches(&self, name: &str) -> bool {
        match self {
            Self::Wildcard(pattern) => fnmatch(pattern.as_bytes(), name.as_bytes()),
            Self::Regex(regex) => regex.is_match(name),
        }
    }
}

/// Shell wildcard match of the whole name: `*` any run, `?` one character, `[a-z]`/`[!a-z]`
/// a class, `\x` the character itself.
fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative with one backtrack point for the last `*`: linear enough for short names.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') if name[n] != b'/' => Some(p + 1),
            Some(b'[') => class(&pattern[p..], name[n]).map(|len| p + len),
            Some(b'\\') if pattern.get(p + 1) == Some(&name[n]) => Some(p + 2),
            Some(&c) if c == name[n] && c != b'\\' => Some(p + 1),
            _ => None,
        };
        match step {
            Some(next) => {
                p = next;
                n += 1;
            }
            None => match star {
                Some((sp, sn)) if name[sn] != b'/' => {
                    star = Some((sp, sn + 1));
                    p = sp + 1;
                    n = sn + 1;
                }
                _ => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at the start of `pattern`: its length when `c` is in it.
fn class(pattern: &[u8], c: u8) -> Option<usize> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *pattern.get(i)?;
        if lo == b']' && !first {
            break;
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pattern[i + 2];
            hit |= (lo..=hi).contains(&c);
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
    (hit != negate).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let m = |p: &str, n: &str| fnmatch(p.as_bytes(), n.as_bytes());
        assert!(m("*.php", "x.php"));
        assert!(m("*.php", ".php"));
        assert!(!m("*.php", "x.php.txt"));
        assert!(!m("*.php", "x.PHP"));
        assert!(m("wp-config.php", "wp-config.php"));
        assert!(m("?.t[a-c]t", "x.tbt"));
        assert!(!m("?.t[!a-c]t", "x.tbt"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("\\*x", "*x"));
        assert!(!m("[", "["));
        assert!(m("*", ""));
    }

    #[test]
    fn sections() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let re = FileMatcher::from_section("FilesMatch", &s(&["\\.(bak|sql)$"])).unwrap();
        assert!(re.matches("dump.sql"));
        assert!(!re.matches("dump.sql.gz"));
        let tilde = FileMatcher::from_section("Files", &s(&["~", "^\\.ht"])).unwrap();
        assert!(tilde.matches(".htpasswd"));
        assert!(FileMatcher::from_section("Files", &s(&["a", "b"])).is_err());
        assert!(FileMatcher::from_section("FilesMatch", &s(&["("])).is_err());
    }
}
