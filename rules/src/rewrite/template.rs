//! Expansion of a rewrite's substitution or a condition's test string: `$N` (the rule's
//! captures), `%N` (the last matched condition's captures), `%{VAR}`, `%{HTTP:Header}`,
//! `%{ENV:name}`; `\$` and `\%` stand for themselves.

use super::RewriteContext;
use crate::RuleError;

/// A parsed template: literal text and references, checked once when the rule is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    RuleCapture(usize),
    CondCapture(usize),
    Variable(String),
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let next = chars.peek().map(|&(_, n)| n);
            match (c, next) {
                ('\\', Some(n @ ('$' | '%' | '\\'))) => {
                    literal.push(n);
                    chars.next();
                }
                ('$' | '%', Some(d)) if d.is_ascii_digit() => {
                    flush(&mut pieces, &mut literal);
                    let n = d as usize - '0' as usize;
                    pieces.push(if c == '$' {
                        Piece::RuleCapture(n)
                    } else {
                        Piece::CondCapture(n)
                    });
                    chars.next();
                }
                ('%', Some('{')) => {
                    let rest = &text[i + 2..];
                    let Some(end) = rest.find('}') else {
                        return Err(RuleError::Invalid(format!(
                            "`%{{` without `}}` in `{text}`"
                        )));
                    };
                    flush(&mut pieces, &mut literal);
                    pieces.push(Piece::Variable(rest[..end].to_string()));
                    for _ in 0..end + 2 {
                        chars.next();
                    }
                }
                ('$', Some('{')) => {
                    return Err(RuleError::Invalid(format!(
                        "rewrite maps (`${{map:key}}`) are not supported: `{text}`"
                    )));
                }
                _ => literal.push(c),
            }
        }
        flush(&mut pieces, &mut literal);
        Ok(Self(pieces))
    }

    /// The text for one request: `rule` and `cond` are the capture groups (`$N`, `%N`); a group
    /// that is missing or did not take part expands to nothing.
    pub fn expand(&self, rule: &[String], cond: &[String], ctx: &dyn RewriteContext) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::RuleCapture(n) => out.push_str(capture(rule, *n)),
                Piece::CondCapture(n) => out.push_str(capture(cond, *n)),
                Piece::Variable(name) => out.push_str(&ctx.variable(name).unwrap_or_default()),
            }
        }
        out
    }

    /// Whether the template is only literal text.
    pub fn literal(&self) -> Option<&str> {
        match self.0.as_slice() {
            [] => Some(""),
            [Piece::Text(text)] => Some(text),
            _ => None,
        }
    }
}

fn capture(groups: &[String], n: usize) -> &str {
    groups.get(n).map_or("", String::as_str)
}

/// The groups of a regex match as owned text (a group that did not take part is empty).
pub(super) fn groups(captures: &regex::Captures<'_>) -> Vec<String> {
    captures
        .iter()
        .map(|m| m.map_or_else(String::new, |m| m.as_str().to_string()))
        .collect()
}

fn flush(pieces: &mut Vec<Piece>, literal: &mut String) {
    if !literal.is_empty() {
        pieces.push(Piece::Text(std::mem::take(literal)));
    }
}
