//! What the rules phase and the router cost per request, in nanoseconds, without a network or
//! a worker in the way: the tree and the rules of the benchmark harness's scenario 7 (50
//! native rules, an `.htaccess` at each of 5 levels), the same path routed by a site without
//! rules. Each is timed with every rule evaluated and as requests run it, from the verdict
//! cache. A diagnostic, not a test: it asserts nothing about time.
//!
//! `cargo test --release -p paddock-frontend -- --ignored rules_cost --nocapture`

use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use http::Request;
use protocol::control::{ScriptRouteSpec, SiteSpec, SymlinkPolicy};
use protocol::site_rules::{
    ClientRuleSpec, DenyRuleSpec, HeaderRuleSpec, NoScriptsAction, NoScriptsRuleSpec,
    PathPatternSpec, QueryMode, RewriteRuleSpec, SiteRulesSpec,
};
use rules::site::SiteRules;

use super::*;
use crate::http::router;

const LEVELS: [&str; 5] = ["a", "b", "c", "d", "e"];

fn build_tree(root: &Path) {
    fs::write(
        root.join(".htaccess"),
        "<IfModule mod_rewrite.c>\nRewriteEngine On\nRewriteBase /\n\
         RewriteRule ^index\\.php$ - [L]\nRewriteCond %{REQUEST_FILENAME} !-f\n\
         RewriteCond %{REQUEST_FILENAME} !-d\nRewriteRule . /index.php [L]\n</IfModule>\n",
    )
    .unwrap();
    let mut dir = root.to_path_buf();
    for level in LEVELS {
        dir.push(level);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(".htaccess"),
            "<FilesMatch \"\\.(bak|sql|log)$\">\nRequire all denied\n</FilesMatch>\n\
             <IfModule mod_headers.c>\nHeader set X-Level yes\n</IfModule>\nOptions -Indexes\n",
        )
        .unwrap();
    }
    fs::write(dir.join("static-1k.txt"), [b'x'; 1024]).unwrap();
    fs::write(dir.join("hello.php"), "<?php echo 1;").unwrap();
    fs::write(root.join("index.php"), "<?php echo 1;").unwrap();
}

fn fifty_rules() -> SiteRulesSpec {
    let deny = |pattern| DenyRuleSpec {
        pattern,
        status: 404,
    };
    let mut spec = SiteRulesSpec {
        htaccess: true,
        ..SiteRulesSpec::default()
    };
    spec.deny
        .extend((0..15).map(|i| deny(PathPatternSpec::Prefix(format!("/private-{i}/")))));
    spec.deny
        .extend((0..8).map(|i| deny(PathPatternSpec::Glob(format!("/uploads-{i}/**/*.php")))));
    spec.deny.extend((0..7).map(|i| {
        deny(PathPatternSpec::Regex(format!(
            "^/(cache|tmp)-{i}/.*\\.(sql|bak)$"
        )))
    }));
    spec.no_scripts.extend((0..5).map(|i| NoScriptsRuleSpec {
        pattern: PathPatternSpec::Prefix(format!("/files-{i}/")),
        action: NoScriptsAction::Deny,
    }));
    spec.rewrites.extend((0..5).map(|i| RewriteRuleSpec {
        pattern: format!("^/old-{i}/(.*)$"),
        case_insensitive: false,
        to: format!("/new-{i}/$1"),
        when: Vec::new(),
        query: QueryMode::Append,
        redirect: None,
        last: true,
    }));
    spec.clients.extend((0..5).map(|i| ClientRuleSpec {
        pattern: PathPatternSpec::Prefix(format!("/admin-{i}/")),
        allow: vec!["127.0.0.0/8".into()],
        deny: Vec::new(),
        status: 403,
    }));
    spec.headers.extend((0..5).map(|i| HeaderRuleSpec {
        pattern: PathPatternSpec::Prefix("/a/".into()),
        set: vec![(format!("X-Rule-{i}"), "yes".into())],
        unset: Vec::new(),
    }));
    spec
}

fn site(root: &Path, rules: SiteRulesSpec) -> SiteSpec {
    SiteSpec {
        name: "bench".into(),
        hosts: vec!["*".into()],
        root: root.to_path_buf(),
        index: vec!["index.php".into()],
        routes: Vec::new(),
        script: Some(ScriptRouteSpec {
            prefix: None,
            pool: "php".into(),
            extensions: vec!["php".into()],
            front_controller: None,
            unbuffered: Vec::new(),
            compress: false,
        }),
        symlinks: SymlinkPolicy::InsideRoot,
        precompressed: false,
        cache_control: Vec::new(),
        default: true,
        error_pages: Vec::new(),
        https_redirect: false,
        hsts: None,
        redirects: Vec::new(),
        rules,
        sendfile: Default::default(),
        mounts: Vec::new(),
    }
}

/// How the probe runs the rules phase.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    /// Every rule evaluated ([`evaluate`]), as on a verdict cache miss.
    Full,
    /// As a request does ([`before_routing`]): after the first, a verdict cache hit.
    Cached,
    /// As a request does, each with a query never seen before: a verdict cache miss, and what
    /// remembering its outcome costs (a client sending a new target with every request).
    Missed,
}

/// Nanoseconds per request for the rules phase and the router on `path`.
fn cost(site: &SiteSpec, path: &str, rounds: u32, phase: Phase) -> (f64, f64) {
    let compiled = CompiledSite::new(SiteRules::compile(&site.rules).unwrap());
    let files = RuleFiles::default();
    let client = Client {
        ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        https: false,
    };
    let request = |target: &str| {
        Request::get(target)
            .header("host", "localhost")
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    let mut parts = request(path);
    let (mut rules_ns, mut route_ns) = (0u128, 0u128);
    for round in 0..rounds {
        if phase == Phase::Missed {
            parts = request(&format!("{path}?{round}-{}", replica::next_id()));
        }
        let start = Instant::now();
        let verdict = match phase {
            Phase::Full => evaluate(&compiled, site, &parts, client, &files).0,
            Phase::Cached | Phase::Missed => {
                before_routing(&compiled, site, &parts, client, &files)
            }
        };
        let Verdict::Route(routing) = verdict else {
            panic!("{path} is served");
        };
        let routed = Instant::now();
        let route = router::route_with_index(site, path, &site.index, &routing.stats);
        assert!(matches!(route, Route::Static(_) | Route::Script(_)));
        route_ns += routed.elapsed().as_nanos();
        rules_ns += (routed - start).as_nanos();
    }
    let per = |ns: u128| ns as f64 / f64::from(rounds);
    (per(rules_ns), per(route_ns))
}

#[test]
#[ignore = "a diagnostic that prints figures; run it in release"]
fn rules_cost() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    build_tree(&root);
    let plain = site(&root, SiteRulesSpec::default());
    let ruled = site(&root, fifty_rules());
    for file in ["static-1k.txt", "hello.php"] {
        let path = format!("/{}/{file}", LEVELS.join("/"));
        for (name, site) in [("no rules", &plain), ("50 rules + 5 .htaccess", &ruled)] {
            // `PROBE_ROUNDS=1000000` for a profile.
            let rounds = std::env::var("PROBE_ROUNDS")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(50_000);
            let phases = [
                (Phase::Full, "evaluated"),
                (Phase::Cached, "cache hit"),
                (Phase::Missed, "miss"),
            ];
            for (phase, label) in phases {
                cost(site, &path, 2_000, phase);
                let (rules, route) = cost(site, &path, rounds, phase);
                println!(
                    "{path:28} {name:24} {label:9} rules {rules:8.0} ns  router {route:8.0} ns"
                );
            }
        }
    }
}
