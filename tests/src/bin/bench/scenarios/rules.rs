//! Scenario 7 (issue 13): what a site's rules cost. The same tree served twice by paddock: once
//! with no rules and `.htaccess` off, once with 50 native rules (deny by prefix, glob and regex,
//! client and header rules, no-scripts paths, rewrites that do not match) and an `.htaccess` in
//! each of the 5 directory levels above the files (WordPress's rewrite block at the root, a
//! `<FilesMatch>` denial, headers and an `<IfModule>` below). A static 1 KiB file and hello.php
//! five levels down, 64 and 32 connections; the target is "within 3 %".

use std::fs;
use std::path::Path;

use crate::load::Client;
use crate::report::{ratio, Table};
use crate::servers::paddock::{self, Sizing};
use crate::Bench;

const DEPTH: [&str; 5] = ["a", "b", "c", "d", "e"];

/// The site: the shared bench files copied five levels down, an `.htaccess` at each level.
fn build_site(shared_site: &Path, root: &Path) -> String {
    let mut dir = root.to_path_buf();
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join(".htaccess"),
        "# BEGIN WordPress\n<IfModule mod_rewrite.c>\nRewriteEngine On\nRewriteBase /\n\
         RewriteRule ^index\\.php$ - [L]\nRewriteCond %{REQUEST_FILENAME} !-f\n\
         RewriteCond %{REQUEST_FILENAME} !-d\nRewriteRule . /index.php [L]\n</IfModule>\n# END WordPress\n",
    )
    .unwrap();
    for level in DEPTH {
        dir.push(level);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(".htaccess"),
            "<FilesMatch \"\\.(bak|sql|log)$\">\nRequire all denied\n</FilesMatch>\n\
             <IfModule mod_headers.c>\nHeader set X-Level yes\n</IfModule>\nOptions -Indexes\n",
        )
        .unwrap();
    }
    for file in ["static-1k.txt", "hello.php"] {
        fs::copy(shared_site.join(file), dir.join(file)).unwrap();
    }
    format!("/{}/", DEPTH.join("/"))
}

/// 50 native rules, none of which refuses the measured requests.
fn fifty_rules() -> String {
    let mut toml = String::from("htaccess = true\n");
    for i in 0..15 {
        toml += &format!("[[sites.bench.deny]]\nprefix = \"/private-{i}/\"\n");
    }
    for i in 0..8 {
        toml += &format!("[[sites.bench.deny]]\nglob = \"/uploads-{i}/**/*.php\"\n");
    }
    for i in 0..7 {
        toml += &format!("[[sites.bench.deny]]\nregex = '^/(cache|tmp)-{i}/.*\\.(sql|bak)$'\n");
    }
    for i in 0..5 {
        toml += &format!("[[sites.bench.no_scripts]]\nprefix = \"/files-{i}/\"\n");
    }
    for i in 0..5 {
        toml += &format!(
            "[[sites.bench.rewrite]]\npattern = '^/old-{i}/(.*)$'\nto = \"/new-{i}/$1\"\n"
        );
    }
    for i in 0..5 {
        toml += &format!(
            "[[sites.bench.clients]]\nprefix = \"/admin-{i}/\"\nallow = [\"127.0.0.0/8\"]\n"
        );
    }
    for i in 0..5 {
        toml += &format!(
            "[[sites.bench.headers]]\nprefix = \"/{}/\"\nset = {{ \"X-Rule-{i}\" = \"yes\" }}\n",
            DEPTH[0]
        );
    }
    toml
}

pub(crate) fn run(bench: &mut Bench) {
    let tree = tempfile::tempdir().expect("temp dir");
    let prefix = build_site(&bench.shared.site, tree.path());
    let plain = paddock::start_site(
        &bench.shared,
        "no rules",
        Sizing::Static(4),
        tree.path(),
        "htaccess = false\n",
    );
    let ruled = paddock::start_site(
        &bench.shared,
        "50 rules + 5 .htaccess",
        Sizing::Static(4),
        tree.path(),
        &fifty_rules(),
    );
    let servers = [plain, ruled];
    let mut table = Table::new(
        "Scenario 7: a site's rules (50 native rules, an .htaccess at each of 5 levels)",
        &[
            "request",
            "site",
            "req/s",
            "spread",
            "p50 ms",
            "p99 ms",
            "errors",
            "with rules / without",
        ],
    );
    let mut json = serde_json::Map::new();
    for (file, connections) in [("static-1k.txt", 64), ("hello.php", 32)] {
        let path = format!("{prefix}{file}");
        let loads: Vec<_> = servers
            .iter()
            .map(|s| {
                let label = format!("{}-{file}", s.name.replace([' ', '+', '.'], "_"));
                (label, bench.load(s.url(&path), connections, Client::Wrk))
            })
            .collect();
        let summaries = super::interleaved(bench, "rules", &loads);
        let base = summaries[0].rps();
        for (server, summary) in servers.iter().zip(&summaries) {
            let mut cells = vec![path.clone(), server.name.clone()];
            cells.extend(summary.cells());
            cells.push(if server.name == "no rules" {
                String::new()
            } else {
                ratio(summary.rps(), base)
            });
            table.row(cells);
            json.insert(format!("{file}/{}", server.name), summary.to_json());
        }
    }
    table.note(
        "Both instances serve the same tree with 4 php-cgi workers; the one with rules checks 50 \
         native rules and the 6 .htaccess files on the path (parsed once per file version, kept \
         current by inotify) and adds 6 response headers."
            .to_string(),
    );
    bench.report.table(&table);
    bench.report.record("rules", json.into());
}
