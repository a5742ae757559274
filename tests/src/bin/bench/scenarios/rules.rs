//! Scenario 7 (issue 13): what a site's rules cost. The same files served by three paddock
//! instances: one with no rules and `.htaccess` off; one with 50 native rules (deny by prefix,
//! glob and regex, client and header rules, no-scripts paths, rewrites) and an `.htaccess` in
//! each of the 5 directory levels above the files (WordPress's rewrite block at the root, a
//! `<FilesMatch>` denial, headers and an `<IfModule>` below), none of which changes the answer
//! to the measured requests; and the same with the header rules applying, so that the answer
//! carries 6 more headers. A static 1 KiB file and hello.php five levels down, 64 and 32
//! connections; the target is "within 3 %" for the rules that leave the answer as it is (the
//! third instance also measures sending 6 more headers, which a site without rules does not).

use std::fs;
use std::path::Path;

use crate::load::Client;
use crate::report::{ratio, Table};
use crate::servers::paddock::{self, Sizing};
use crate::Bench;

const DEPTH: [&str; 5] = ["a", "b", "c", "d", "e"];

/// Whether the rules' `Header` directives apply to the measured requests.
#[derive(Clone, Copy, PartialEq)]
enum Headers {
    /// They apply to style sheets and scripts only (as real `.htaccess` files set caching
    /// headers): the answer is the one the site without rules gives.
    Elsewhere,
    /// They apply: the answer carries `X-Level` and 5 × `X-Rule-N`.
    Added,
}

/// The site: the shared bench files copied five levels down, an `.htaccess` at each level.
fn build_site(shared_site: &Path, root: &Path, headers: Headers) -> String {
    let mut dir = root.to_path_buf();
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join(".htaccess"),
        "# BEGIN WordPress\n<IfModule mod_rewrite.c>\nRewriteEngine On\nRewriteBase /\n\
         RewriteRule ^index\\.php$ - [L]\nRewriteCond %{REQUEST_FILENAME} !-f\n\
         RewriteCond %{REQUEST_FILENAME} !-d\nRewriteRule . /index.php [L]\n</IfModule>\n# END WordPress\n",
    )
    .unwrap();
    let header = match headers {
        Headers::Elsewhere => {
            "<FilesMatch \"\\.(css|js)$\">\nHeader set Cache-Control \"max-age=3600\"\n</FilesMatch>\n"
        }
        Headers::Added => "Header set X-Level yes\n",
    };
    for level in DEPTH {
        dir.push(level);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(".htaccess"),
            format!(
                "<FilesMatch \"\\.(bak|sql|log)$\">\nRequire all denied\n</FilesMatch>\n\
                 <IfModule mod_headers.c>\n{header}</IfModule>\nOptions -Indexes\n"
            ),
        )
        .unwrap();
    }
    for file in ["static-1k.txt", "hello.php"] {
        fs::copy(shared_site.join(file), dir.join(file)).unwrap();
    }
    format!("/{}/", DEPTH.join("/"))
}

/// 50 native rules, none of which refuses the measured requests.
fn fifty_rules(headers: Headers) -> String {
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
        let prefix = match headers {
            Headers::Elsewhere => format!("assets-{i}"),
            Headers::Added => DEPTH[0].to_string(),
        };
        toml += &format!(
            "[[sites.bench.headers]]\nprefix = \"/{prefix}/\"\nset = {{ \"X-Rule-{i}\" = \"yes\" }}\n"
        );
    }
    toml
}

pub(crate) fn run(bench: &mut Bench) {
    let same = tempfile::tempdir().expect("temp dir");
    let added = tempfile::tempdir().expect("temp dir");
    let prefix = build_site(&bench.shared.site, same.path(), Headers::Elsewhere);
    build_site(&bench.shared.site, added.path(), Headers::Added);
    let instances = [
        ("no rules", same.path(), "htaccess = false\n".to_string()),
        (
            "50 rules + 5 .htaccess",
            same.path(),
            fifty_rules(Headers::Elsewhere),
        ),
        (
            "the same, adding 6 headers",
            added.path(),
            fifty_rules(Headers::Added),
        ),
    ];
    let servers = instances.map(|(name, root, rules)| {
        paddock::start_site(&bench.shared, name, Sizing::Static(4), root, &rules)
    });
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
        "Each instance has 4 php-cgi workers. Those with rules check 50 native rules and the 6 \
         .htaccess files on the path (parsed once per file version, kept current by inotify); \
         the second gives the same answers as the site without rules (its header rules are for \
         other paths and for .css/.js), the third adds 6 response headers (X-Level, 5 x X-Rule-N)."
            .to_string(),
    );
    bench.report.table(&table);
    bench.report.record("rules", json.into());
}
