//! The property of the `rules_path` fuzz target, shared with the corpus replay in
//! frontend/tests/fuzz_corpus.rs.
//!
//! A site with native deny rules (a prefix and a glob) and `.htaccess` files (a directory closed
//! with `Require all denied`, an uploads directory whose `<Files *.php>` is denied, WordPress's
//! rewrite block at the root) is built once. For any request path, the rules and the router must
//! not panic, and when the rules let the request through, what the router then serves is never
//! one of the protected files: however the path is spelled (percent-encoding, `..`, doubled
//! slashes, case, trailing dots) or continued (PATH_INFO), and whatever a rewrite made of it.

use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

use frontend::router::{route, Route};
use frontend::site_rules::{
    before_routing, check_target, Client, CompiledSite, RuleFiles, TargetCheck, Verdict,
};
use protocol::control::{ScriptRouteSpec, SiteSpec, SymlinkPolicy};
use protocol::site_rules::{DenyRuleSpec, PathPatternSpec, SiteRulesSpec};

struct Fixture {
    _dir: tempfile::TempDir,
    site: SiteSpec,
    compiled: CompiledSite,
    files: RuleFiles,
}

/// Files that must never be served or run, relative to the root.
const PROTECTED: [&str; 6] = [
    "private/notes.txt",
    "vendor/lib/tool.php",
    "closed/a.txt",
    "closed/x.php",
    "closed/sub/deep.txt",
    "uploads/x.php",
];

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().unwrap().join("site");
        let files: [(&str, &str); 11] = [
            ("index.php", "<?php"),
            ("style.css", "body{}"),
            (
                ".htaccess",
                "RewriteEngine On\nRewriteBase /\nRewriteRule ^index\\.php$ - [L]\n\
                 RewriteCond %{REQUEST_FILENAME} !-f\nRewriteCond %{REQUEST_FILENAME} !-d\n\
                 RewriteRule . /index.php [L]\n",
            ),
            ("closed/.htaccess", "Require all denied\n"),
            (
                "uploads/.htaccess",
                "<Files *.php>\ndeny from all\n</Files>\n",
            ),
            ("uploads/ok.txt", "ok"),
            ("private/notes.txt", "secret"),
            ("vendor/lib/tool.php", "<?php"),
            ("closed/a.txt", "secret"),
            ("closed/x.php", "<?php"),
            ("closed/sub/deep.txt", "secret"),
        ];
        for (name, text) in files.iter().chain([("uploads/x.php", "<?php")].iter()) {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let rules = SiteRulesSpec {
            deny: vec![
                DenyRuleSpec {
                    pattern: PathPatternSpec::Prefix("/private/".into()),
                    status: 404,
                },
                DenyRuleSpec {
                    pattern: PathPatternSpec::Glob("/vendor/**/*.php".into()),
                    status: 403,
                },
            ],
            htaccess: true,
            ..SiteRulesSpec::default()
        };
        let site = SiteSpec {
            name: "fuzz".into(),
            hosts: vec!["*".into()],
            root,
            index: vec!["index.php".into()],
            routes: Vec::new(),
            mounts: Vec::new(),
            script: Some(ScriptRouteSpec {
                prefix: None,
                pool: "php".into(),
                extensions: vec!["php".into()],
                front_controller: None,
                compress: false,
                unbuffered: Vec::new(),
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
        };
        let compiled = CompiledSite::new(rules::site::SiteRules::compile(&site.rules).unwrap());
        Fixture {
            _dir: dir,
            site,
            compiled,
            files: RuleFiles::default(),
        }
    })
}

/// Checks one input: a request target (path and query).
pub(crate) fn check(data: &[u8]) {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((parts, ())) = http::Request::get(target)
        .body(())
        .map(http::Request::into_parts)
    else {
        return;
    };
    if parts.uri.path_and_query().is_none() || parts.uri.authority().is_some() {
        return;
    }
    let f = fixture();
    let client = Client {
        ip: IpAddr::from([192, 0, 2, 1]),
        https: false,
    };
    let routing = match before_routing(&f.compiled, &f.site, &parts, client, &f.files) {
        Verdict::Respond(_) => return,
        Verdict::Route(routing) => routing,
    };
    let uri = routing.rewritten.as_ref().unwrap_or(&parts.uri);
    let routed = route(&f.site, uri.path());
    if let Some(TargetCheck::Respond(_)) = check_target(&f.compiled, &routing, &routed) {
        return;
    }
    let served = match &routed {
        Route::Static(file) => &file.path,
        Route::Script(script) => script.filename.as_deref().expect("a script has a file"),
        _ => return,
    };
    assert_not_protected(&f.site.root, served, target);
}

fn assert_not_protected(root: &Path, served: &Path, target: &str) {
    let real = served
        .canonicalize()
        .unwrap_or_else(|_| served.to_path_buf());
    for protected in PROTECTED {
        assert_ne!(
            real,
            root.join(protected),
            "{target:?} reaches the protected {protected}"
        );
    }
}
