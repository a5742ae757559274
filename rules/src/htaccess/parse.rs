//! `.htaccess` text to a tree of directives and sections, with 1-based line numbers.
//!
//! Apache's configuration syntax as `ap_cfg_getline` and `ap_getword_conf` read it: one
//! directive a line; a line ending in `\` (nothing after it, not even a blank) continues on the
//! next, a comment line too (the backslash goes, nothing is put in its place); `#` starts a
//! comment only as the first non-blank character of a line (a `#` later on is an argument, as in
//! Apache); arguments are separated by blanks, and an argument that starts with `"` or `'` runs to
//! the matching quote (`\"` inside stands for the quote). Sections are `<Name args>` …
//! `</Name>`, names without case. A section that is not closed, a close that does not match, or a
//! `<` line without `>` is an error with the line, as Apache answers 500 for such a file.
//!
//! Nothing is interpreted here: which directives and sections mean something is `compile`'s job.

/// One directive or section, where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Directive(Directive),
    Section(Section),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The line the directive starts on (1-based).
    pub line: usize,
    /// As written (`RewriteRule`); compare without case.
    pub name: String,
    pub args: Vec<String>,
    /// The whole logical line, trimmed, for messages.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub line: usize,
    /// As written, without `<` (`FilesMatch`).
    pub name: String,
    pub args: Vec<String>,
    /// The opening line, trimmed.
    pub text: String,
    pub body: Vec<Node>,
}

impl Node {
    pub fn line(&self) -> usize {
        match self {
            Self::Directive(d) => d.line,
            Self::Section(s) => s.line,
        }
    }
}

/// A file paddock cannot read as Apache would, and the line where that shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole file.
pub fn parse(text: &str) -> Result<Vec<Node>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Open sections: the section and the nodes collected so far at the level it opened.
    let mut stack: Vec<(Section, Vec<Node>)> = Vec::new();
    let mut nodes = Vec::new();
    for (line, logical) in logical_lines(text) {
        let trimmed = logical.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let error = |message: String| ParseError { line, message };
        if let Some(rest) = trimmed.strip_prefix("</") {
            let name = rest
                .strip_suffix('>')
                .ok_or_else(|| error(format!("`{trimmed}` lacks its closing `>`")))?
                .trim();
            let Some((mut open, outer)) = stack.pop() else {
                return Err(error(format!("`</{name}>` without an opening section")));
            };
            if !open.name.eq_ignore_ascii_case(name) {
                return Err(error(format!(
                    "`</{name}>` closes `<{}>` opened at line {}",
                    open.name, open.line
                )));
            }
            open.body = std::mem::replace(&mut nodes, outer);
            nodes.push(Node::Section(open));
        } else if let Some(rest) = trimmed.strip_prefix('<') {
            let inner = rest
                .strip_suffix('>')
                .ok_or_else(|| error(format!("`{trimmed}` lacks its closing `>`")))?;
            let (name, args) = match inner.find(char::is_whitespace) {
                Some(at) => (&inner[..at], &inner[at..]),
                None => (inner, ""),
            };
            if name.is_empty() {
                return Err(error(format!("`{trimmed}` has no section name")));
            }
            let section = Section {
                line,
                name: name.to_string(),
                args: split_args(args),
                text: trimmed.to_string(),
                body: Vec::new(),
            };
            stack.push((section, std::mem::take(&mut nodes)));
        } else {
            let mut args = split_args(trimmed);
            let name = args.remove(0);
            if name.eq_ignore_ascii_case("RewriteRule") || name.eq_ignore_ascii_case("RewriteCond")
            {
                if let Some(rest) = trimmed.get(name.len()..) {
                    args = split_rewrite_args(rest);
                }
            }
            nodes.push(Node::Directive(Directive {
                line,
                name,
                args,
                text: trimmed.to_string(),
            }));
        }
    }
    if let Some((open, _)) = stack.pop() {
        return Err(ParseError {
            line: open.line,
            message: format!("`<{}>` is never closed", open.name),
        });
    }
    Ok(nodes)
}

/// The file's logical lines (continuations joined) with the number of the line each starts on.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        // Only a backslash right before the line end continues (`ap_cfg_getline`).
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        match raw.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                pending = Some((start, joined));
            }
            None => {
                joined.push_str(raw);
                out.push((start, joined));
            }
        }
    }
    // A continuation on the last line continues into nothing.
    out.extend(pending);
    out
}

/// Splits a directive's arguments as `ap_getword_conf` does.
pub fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(first) = chars.next() else {
            return args;
        };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            // Quoted: to the matching quote (or the end of the line, as Apache allows).
            while let Some(c) = chars.next() {
                if c == '\\' && chars.peek() == Some(&first) {
                    word.push(first);
                    chars.next();
                } else if c == first {
                    break;
                } else {
                    word.push(c);
                }
            }
        } else {
            word.push(first);
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
        }
        args.push(word);
    }
}

/// Splits `RewriteRule`/`RewriteCond` arguments as mod_rewrite's own `parseargline` does: only
/// double quotes quote, and a backslash before a blank keeps the blank in the word (the
/// backslash stays too, so that `^a\ b$` is the regex `a\ b`, a space).
fn split_rewrite_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let quoted = chars.next_if_eq(&'"').is_some();
        if chars.peek().is_none() && !quoted {
            return args;
        }
        let mut word = String::new();
        while let Some(c) = chars.next() {
            if c == '\\' && matches!(chars.peek(), Some(' ' | '\t')) {
                word.push(c);
                word.extend(chars.next());
            } else if (quoted && c == '"') || (!quoted && (c == ' ' || c == '\t')) {
                break;
            } else {
                word.push(c);
            }
        }
        args.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directive(node: &Node) -> &Directive {
        match node {
            Node::Directive(d) => d,
            Node::Section(s) => panic!("a section at line {}", s.line),
        }
    }

    #[test]
    fn quotes_continuations_and_comments() {
        let text = "# comment\n  Header set X-A \"a b\" \nRewriteRule ^a$ \\\n   /b [L]\n\
                    ErrorDocument 403 'it\\'s \"no\"'\nDeny from all # not a comment\n";
        let nodes = parse(text).unwrap();
        let d: Vec<_> = nodes.iter().map(directive).collect();
        assert_eq!(
            (d[0].line, d[0].args.as_slice()),
            (2, &["set", "X-A", "a b"].map(String::from)[..])
        );
        assert_eq!(
            (d[1].line, d[1].args.as_slice()),
            (3, &["^a$", "/b", "[L]"].map(String::from)[..])
        );
        assert_eq!(d[2].args, ["403", "it's \"no\""]);
        assert_eq!(d[3].args, ["from", "all", "#", "not", "a", "comment"]);
        assert_eq!(d[3].line, 6);
        // A blank after the backslash ends the line; a comment continues like any line.
        let nodes = parse("A x \\ \nB y\n# c \\\nC z\nD\r\n").unwrap();
        let names: Vec<&str> = nodes.iter().map(|n| directive(n).name.as_str()).collect();
        assert_eq!(names, ["A", "B", "D"]);
    }

    #[test]
    fn rewrite_arguments_split_as_mod_rewrite_does() {
        let nodes = parse(
            "RewriteRule ^a\\ b$ \"x y.php\" [L]\nRewriteCond %{QUERY_STRING} 'a\nRewriteRule \"^c d$\" - [F]\n",
        )
        .unwrap();
        let d: Vec<_> = nodes.iter().map(directive).collect();
        assert_eq!(d[0].args, ["^a\\ b$", "x y.php", "[L]"]);
        let pattern = crate::pattern::compile_regex(&d[0].args[0], false).unwrap();
        assert!(pattern.is_match("a b"));
        // Single quotes are ordinary characters to mod_rewrite.
        assert_eq!(d[1].args, ["%{QUERY_STRING}", "'a"]);
        assert_eq!(d[2].args, ["^c d$", "-", "[F]"]);
    }

    #[test]
    fn nested_sections_and_their_errors() {
        let nodes = parse(
            "<IfModule mod_rewrite.c>\n<Files \"x y\">\nDeny from all\n</files>\n</IfModule>\n",
        )
        .unwrap();
        let Node::Section(outer) = &nodes[0] else {
            panic!()
        };
        let Node::Section(inner) = &outer.body[0] else {
            panic!()
        };
        assert_eq!(
            (inner.line, inner.args.as_slice()),
            (2, &["x y"].map(String::from)[..])
        );
        assert_eq!(directive(&inner.body[0]).line, 3);

        let e = parse("<Files x>\nDeny from all\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("<Files x>\n</FilesMatch>\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("line 1"), "{e}");
        assert_eq!(parse("\n\n</Files>\n").unwrap_err().line, 3);
        assert_eq!(parse("<Files x\n").unwrap_err().line, 1);
        assert_eq!(parse("<>\n").unwrap_err().line, 1);
    }
}
