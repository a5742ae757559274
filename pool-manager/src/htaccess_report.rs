//! `paddock check`'s look at the `.htaccess` files of each site that reads them: every file
//! found under the document root, and every directive in it that paddock does not honour
//! (ignored as harmless, unknown, or unusable), or that closes its directory. The front end
//! logs the same notes when it first reads a file version; this lists them before going live.

use std::path::Path;

use protocol::control::SiteSpec;
use rules::htaccess::{DirRules, NoteKind};

/// Directories looked at per site at most, so that a check of a huge tree stays quick.
const MAX_DIRECTORIES: usize = 100_000;

/// The report's lines for `site` (none when it does not read `.htaccess` or has no file).
pub fn report(site: &SiteSpec) -> Vec<String> {
    let mut lines = Vec::new();
    if !site.rules.htaccess {
        return lines;
    }
    let mut pending = vec![(site.root.clone(), String::from("/"))];
    let mut seen = 0;
    while let Some((dir, url)) = pending.pop() {
        seen += 1;
        if seen > MAX_DIRECTORIES {
            lines.push(format!(
                "site {}: stopped after {MAX_DIRECTORIES} directories",
                site.name
            ));
            break;
        }
        describe(site, &dir.join(".htaccess"), &url, &mut lines);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut children: Vec<_> = entries
            .filter_map(Result::ok)
            // Symbolic links are not followed here: the front end's symlink policy decides at
            // request time, and a check must not wander out of the tree.
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| Some((e.path(), e.file_name().into_string().ok()?)))
            .collect();
        children.sort();
        for (path, name) in children.into_iter().rev() {
            pending.push((path, format!("{url}{name}/")));
        }
    }
    lines
}

fn describe(site: &SiteSpec, file: &Path, url: &str, lines: &mut Vec<String>) {
    let Ok(text) = std::fs::read(file) else {
        return;
    };
    let rules = DirRules::compile(&String::from_utf8_lossy(&text), url);
    let shown = file.display();
    lines.push(format!("site {}: {shown}", site.name));
    if let Some(denial) = rules.denial() {
        lines.push(format!(
            "  {shown}:{}: closes the directory ({}): {}",
            denial.line, denial.status, denial.reason
        ));
    }
    for note in rules.notes() {
        let what = match &note.kind {
            NoteKind::Ignored => "ignored (no effect on what is served)".to_string(),
            NoteKind::Unknown => "not honoured".to_string(),
            NoteKind::Invalid(reason) => format!("not usable: {reason}"),
        };
        lines.push(format!("  {shown}:{}: {what}: {}", note.line, note.text));
    }
}
