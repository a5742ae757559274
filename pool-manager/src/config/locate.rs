//! Maps an error back to a line and a dotted key in the TOML source.
//!
//! serde reports a byte span, validation reports a key path; operators want both as "line 12,
//! key `pools.php.workers`". A span-preserving parse of the same text (toml_edit) answers either
//! question.

use std::ops::Range;

use toml_edit::{Document, Item, Table};

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Line and dotted key of the innermost entry whose key or value covers `span`.
pub(super) fn locate_span(text: &str, span: Option<Range<usize>>) -> (Option<usize>, String) {
    let Some(span) = span else {
        return (None, String::new());
    };
    let line = Some(line_of(text, span.start));
    let Ok(doc) = Document::parse(text) else {
        return (line, String::new());
    };
    let mut path = Vec::new();
    innermost(doc.as_table(), &span, &mut path);
    (line, path.join("."))
}

fn innermost(table: &Table, span: &Range<usize>, path: &mut Vec<String>) {
    for (key, item) in table.iter() {
        let key_span = table.key(key).and_then(|k| k.span());
        let covers = |s: Option<Range<usize>>| {
            s.is_some_and(|s| s.start <= span.start && span.start < s.end.max(s.start + 1))
        };
        if covers(key_span.clone()) {
            path.push(key.to_string());
            return;
        }
        let item_covers = covers(item.span());
        match item {
            Item::Table(child) => {
                let before = path.len();
                path.push(key.to_string());
                innermost(child, span, path);
                if path.len() == before + 1 && !item_covers {
                    path.truncate(before);
                    continue;
                }
                return;
            }
            Item::Value(toml_edit::Value::InlineTable(inline)) if item_covers => {
                path.push(key.to_string());
                let child = inline.clone().into_table();
                innermost(&child, span, path);
                return;
            }
            _ if item_covers => {
                path.push(key.to_string());
                return;
            }
            _ => {}
        }
    }
}

/// Line of the entry at a dotted key path (the deepest part of the path that exists).
pub(super) fn locate_key(text: &str, path: &[String]) -> (Option<usize>, String) {
    let key = path.join(".");
    let Ok(doc) = Document::parse(text) else {
        return (None, key);
    };
    let mut table = doc.as_table();
    let mut line = None;
    for part in path {
        // `deny[1]`: the second `[[…deny]]` table.
        let (name, index) = match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
            Some((name, index)) => (name, index.parse::<usize>().ok()),
            None => (part.as_str(), None),
        };
        let Some((k, item)) = table.get_key_value(name) else {
            break;
        };
        if let Some(span) = k.span().or_else(|| item.span()) {
            line = Some(line_of(text, span.start));
        }
        let child = match (item, index) {
            (Item::ArrayOfTables(array), Some(i)) => array.get(i),
            _ => item.as_table(),
        };
        let Some(child) = child else {
            break;
        };
        if let Some(span) = child.span() {
            line = Some(line_of(text, span.start));
        }
        table = child;
    }
    (line, key)
}
