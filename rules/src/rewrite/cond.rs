//! `RewriteCond`: a test string, expanded per request, checked against a regex, a comparison or a
//! file test. Conditions are ANDed unless one carries `[OR]`, which ORs it with the next.

use regex::Regex;

use super::template::{groups, Template};
use super::{FileKind, RewriteContext};
use crate::pattern::compile_regex;
use crate::RuleError;

#[derive(Debug, Clone)]
pub struct RewriteCond {
    test: Template,
    check: Check,
    negate: bool,
    /// `[OR]`: this condition or the next one.
    pub or_next: bool,
}

#[derive(Debug, Clone)]
enum Check {
    Regex(Regex),
    /// `=text` (`[NC]` compares without case).
    Equals(String, bool),
    Less(String),
    Greater(String),
    /// A regular file (`-f`).
    File,
    /// A directory (`-d`).
    Dir,
    /// A regular file that is not empty (`-s`).
    NonEmptyFile,
    /// A symbolic link (`-l`, `-L`, `-h`).
    Symlink,
    /// `-eq N`, `-lt N`, … on the test string read as an integer.
    IntCompare(IntOp, i64),
}

#[derive(Debug, Clone, Copy)]
enum IntOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl RewriteCond {
    /// Parses `RewriteCond TEST PATTERN [FLAGS]`'s pieces; `flags` without the brackets.
    pub fn parse(test: &str, pattern: &str, flags: &str) -> Result<Self, RuleError> {
        let mut nocase = false;
        let mut or_next = false;
        for flag in flags.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            match flag.to_ascii_lowercase().as_str() {
                "nc" | "nocase" => nocase = true,
                "or" | "ornext" => or_next = true,
                "nv" | "novary" => {}
                other => {
                    return Err(RuleError::Invalid(format!(
                        "unknown RewriteCond flag `{other}`"
                    )))
                }
            }
        }
        let (negate, pattern) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        let check = match pattern {
            // `-F` and `-U` ask Apache for a sub-request; paddock answers them as `-f`.
            "-f" | "-F" | "-U" => Check::File,
            "-d" => Check::Dir,
            "-s" => Check::NonEmptyFile,
            "-l" | "-L" | "-h" => Check::Symlink,
            _ => {
                if let Some(text) = pattern.strip_prefix('=') {
                    Check::Equals(unquote(text).to_string(), nocase)
                } else if let Some(text) = pattern.strip_prefix('<') {
                    Check::Less(text.to_string())
                } else if let Some(text) = pattern.strip_prefix('>') {
                    Check::Greater(text.to_string())
                } else if let Some(int) = int_compare(pattern)? {
                    int
                } else if pattern.starts_with('-') && pattern.len() == 2 {
                    return Err(RuleError::Invalid(format!(
                        "unsupported RewriteCond test `{pattern}`"
                    )));
                } else {
                    Check::Regex(compile_regex(pattern, nocase)?)
                }
            }
        };
        Ok(Self {
            test: Template::parse(test)?,
            check,
            negate,
            or_next,
        })
    }

    /// A file test on the request's file name (what paddock's native `when` compiles to).
    pub fn request_file(kind: FileTest, negate: bool) -> Self {
        Self {
            test: Template::parse("%{REQUEST_FILENAME}").expect("a valid template"),
            check: match kind {
                FileTest::File => Check::File,
                FileTest::Dir => Check::Dir,
            },
            negate,
            or_next: false,
        }
    }

    /// `Some(groups)` when the condition holds: a regex's groups become the `%N` of what
    /// follows (no groups for other tests, or for a negated regex, as in Apache).
    pub fn check(
        &self,
        rule: &[String],
        previous: &[String],
        ctx: &dyn RewriteContext,
    ) -> Option<Vec<String>> {
        let value = self.test.expand(rule, previous, ctx);
        let value = value.as_str();
        let mut captured = Vec::new();
        let holds = match &self.check {
            Check::Regex(regex) => match regex.captures(value) {
                Some(c) => {
                    captured = groups(&c);
                    true
                }
                None => false,
            },
            Check::Equals(text, nocase) => {
                if *nocase {
                    value.eq_ignore_ascii_case(text)
                } else {
                    value == text
                }
            }
            Check::Less(text) => value < text.as_str(),
            Check::Greater(text) => value > text.as_str(),
            Check::File => matches!(ctx.file_kind(value), FileKind::File { .. }),
            Check::Dir => ctx.file_kind(value) == FileKind::Dir,
            Check::NonEmptyFile => {
                matches!(ctx.file_kind(value), FileKind::File { size } if size > 0)
            }
            Check::Symlink => ctx.is_symlink(value),
            Check::IntCompare(op, n) => {
                let v = value.trim().parse::<i64>().unwrap_or(0);
                match op {
                    IntOp::Eq => v == *n,
                    IntOp::Ne => v != *n,
                    IntOp::Lt => v < *n,
                    IntOp::Le => v <= *n,
                    IntOp::Gt => v > *n,
                    IntOp::Ge => v >= *n,
                }
            }
        };
        match (holds, self.negate) {
            (true, false) => Some(captured),
            (false, true) => Some(Vec::new()),
            _ => None,
        }
    }
}

/// The file tests paddock's own rules offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileTest {
    File,
    Dir,
}

fn unquote(text: &str) -> &str {
    if text == "\"\"" {
        ""
    } else {
        text
    }
}

fn int_compare(pattern: &str) -> Result<Option<Check>, RuleError> {
    // Apache wants `"-eq 5"`, which arrives here as one quoted piece.
    let Some((op, value)) = pattern.split_once(' ') else {
        return Ok(None);
    };
    let op = match op {
        "-eq" => IntOp::Eq,
        "-ne" => IntOp::Ne,
        "-lt" => IntOp::Lt,
        "-le" => IntOp::Le,
        "-gt" => IntOp::Gt,
        "-ge" => IntOp::Ge,
        _ => return Ok(None),
    };
    let value = value
        .trim()
        .parse()
        .map_err(|_| RuleError::Invalid(format!("`{pattern}` needs an integer")))?;
    Ok(Some(Check::IntCompare(op, value)))
}
