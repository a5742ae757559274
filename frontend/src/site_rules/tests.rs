//! The property the rules exist for: a denied path is never served and a denied script never
//! runs, however the request spells the path. Random spellings of denied paths (percent-encoding
//! of any byte, `.` and `x/..` segments, doubled slashes, PATH_INFO after a script) go through
//! the same steps as a request: the access phase, then the router, then the target check.

use std::fs;
use std::net::IpAddr;

use protocol::control::{ScriptRouteSpec, SiteSpec, SymlinkPolicy};
use protocol::site_rules::{
    DenyRuleSpec, NoScriptsAction, NoScriptsRuleSpec, PathPatternSpec, SiteRulesSpec,
};

use super::*;
use crate::http::router::{self, Route};

pub(super) fn site(root: std::path::PathBuf) -> SiteSpec {
    SiteSpec {
        name: "t".into(),
        hosts: vec!["*".into()],
        root,
        index: vec!["index.php".into()],
        script: Some(ScriptRouteSpec {
            prefix: None,
            pool: "php".into(),
            extensions: vec!["php".into()],
            front_controller: Some("/index.php".into()),
            unbuffered: Vec::new(),
            compress: false,
        }),
        routes: Vec::new(),
        mounts: Vec::new(),
        symlinks: SymlinkPolicy::InsideRoot,
        precompressed: false,
        cache_control: Vec::new(),
        default: true,
        error_pages: Vec::new(),
        https_redirect: false,
        hsts: None,
        redirects: Vec::new(),
        rules: SiteRulesSpec {
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
            no_scripts: vec![NoScriptsRuleSpec {
                pattern: PathPatternSpec::Prefix("/uploads/".into()),
                action: NoScriptsAction::Deny,
            }],
            ..SiteRulesSpec::default()
        },
        sendfile: Default::default(),
    }
}

/// A front controller's `.htaccess`, as WordPress ships it: every request tests its file (`-f`,
/// `-d`) before it goes to `index.php`.
pub(super) const WORDPRESS: &str =
    "RewriteEngine On\nRewriteBase /\nRewriteRule ^index\\.php$ - [L]\n\
    RewriteCond %{REQUEST_FILENAME} !-f\nRewriteCond %{REQUEST_FILENAME} !-d\n\
    RewriteRule . /index.php [L]\n";

/// A GET of `target`, as the rules phase takes it.
pub(super) fn get(target: &str) -> http::request::Parts {
    http::Request::get(target).body(()).unwrap().into_parts().0
}

/// A client on this machine, over plain HTTP.
pub(super) const LOCALHOST: Client = Client {
    ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    https: false,
};

/// [`site`] reading `.htaccess` files and no native rule, with its rules compiled.
pub(super) fn htaccess_site(root: std::path::PathBuf) -> (SiteSpec, CompiledSite) {
    let mut site = site(root);
    site.rules = SiteRulesSpec {
        htaccess: true,
        ..SiteRulesSpec::default()
    };
    let compiled = CompiledSite::new(SiteRules::compile(&site.rules).unwrap());
    (site, compiled)
}

/// A document root holding `index.php` and this `.htaccess`, as [`htaccess_site`] serves it.
pub(super) fn site_with_htaccess(htaccess: &str) -> (tempfile::TempDir, SiteSpec, CompiledSite) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    fs::write(root.join(".htaccess"), htaccess).unwrap();
    fs::write(root.join("index.php"), "x").unwrap();
    let (site, compiled) = htaccess_site(root);
    (dir, site, compiled)
}

/// A small deterministic generator (xorshift), so a failure replays.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One random spelling of `path` (segments separated by `/`).
fn respell(path: &str, random: &mut Random) -> String {
    let mut out = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        match random.below(6) {
            0 => out.push_str("./"),
            1 => out.push('/'),
            2 => out.push_str("zz/../"),
            _ => {}
        }
        for byte in segment.bytes() {
            if random.below(3) == 0 {
                out.push_str(&format!("%{byte:02X}"));
            } else {
                out.push(char::from(byte));
            }
        }
    }
    out
}

#[test]
fn no_spelling_of_a_denied_path_is_served_or_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    for file in [
        "index.php",
        "private/notes.txt",
        "vendor/lib/tool.php",
        "uploads/evil.php",
    ] {
        let path = root.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "x").unwrap();
    }
    let site = site(root.clone());
    let compiled = CompiledSite::new(SiteRules::compile(&site.rules).unwrap());
    let client = LOCALHOST;
    let files = RuleFiles::default();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut tried = 0;
    for denied in [
        "/private/notes.txt",
        "/vendor/lib/tool.php",
        "/vendor/lib/tool.php/more/path",
        "/uploads/evil.php",
        "/uploads/evil.php/x",
    ] {
        for _ in 0..500 {
            let spelled = respell(denied, &mut random);
            let Ok((parts, ())) = http::Request::get(spelled.as_str())
                .body(())
                .map(http::Request::into_parts)
            else {
                continue;
            };
            tried += 1;
            if let Verdict::Respond(response) =
                before_routing(&compiled, &site, &parts, client, &files)
            {
                assert!(response.status().is_client_error(), "{spelled}");
                continue;
            }
            let route = router::route(&site, parts.uri.path());
            if let Some(TargetCheck::Respond(response)) =
                check_target(&compiled, &Routing::default(), &route)
            {
                assert!(response.status().is_client_error(), "{spelled}");
                continue;
            }
            match &route {
                Route::Static(file) => {
                    assert!(
                        !file.path.starts_with(root.join("private")),
                        "{spelled} served"
                    )
                }
                Route::Script(target) => {
                    assert_eq!(target.name, "/index.php", "{spelled} ran {}", target.name)
                }
                _ => {}
            }
        }
    }
    assert!(tried > 2000, "only {tried} spellings parsed as URIs");
}

#[test]
fn a_rewritten_query_with_a_blank_is_refused_as_apache_does() {
    let (_dir, site, compiled) =
        site_with_htaccess("RewriteEngine On\nRewriteRule ^p/(.*)$ index.php?v=$1 [L]\n");
    let client = LOCALHOST;
    let files = RuleFiles::default();
    let verdict = |target: &str| {
        let (parts, ()) = http::Request::get(target).body(()).unwrap().into_parts();
        before_routing(&compiled, &site, &parts, client, &files)
    };
    // `$1` is the decoded path: "x y" would put a blank into the query.
    match verdict("/p/x%20y") {
        Verdict::Respond(response) => assert_eq!(response.status(), 403),
        Verdict::Route(routing) => panic!("routed to {:?}", routing.rewritten),
    }
    match verdict("/p/xy") {
        Verdict::Route(routing) => {
            assert_eq!(routing.rewritten.unwrap().to_string(), "/index.php?v=xy")
        }
        Verdict::Respond(response) => panic!("answered {}", response.status()),
    }
}

#[test]
fn the_user_an_htaccess_login_admits_is_handed_on() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("root");
    fs::create_dir(&root).unwrap();
    let users = base.join("users");
    fs::write(&users, "ali:{SHA}CEo1Ae3vaEXy8eQZjsOiuBz1xrw=\n").unwrap();
    fs::write(
        root.join(".htaccess"),
        format!(
            "AuthType Basic\nAuthName x\nAuthUserFile {}\nRequire valid-user\n",
            users.display()
        ),
    )
    .unwrap();
    fs::write(root.join("index.php"), "x").unwrap();
    let (site, compiled) = htaccess_site(root);
    let client = LOCALHOST;
    let files = RuleFiles::default();
    // ali:sesame
    let (parts, ()) = http::Request::get("/index.php")
        .header("Authorization", "Basic YWxpOnNlc2FtZQ==")
        .body(())
        .unwrap()
        .into_parts();
    match before_routing(&compiled, &site, &parts, client, &files) {
        Verdict::Route(routing) => assert_eq!(routing.user.as_deref(), Some("ali")),
        Verdict::Respond(response) => panic!("answered {}", response.status()),
    }
    // Where no login is asked for, there is no user, whatever the request sends.
    fs::write(site.root.join(".htaccess"), "Require all granted\n").unwrap();
    match before_routing(&compiled, &site, &parts, client, &files) {
        Verdict::Route(routing) => assert_eq!(routing.user, None),
        Verdict::Respond(response) => panic!("answered {}", response.status()),
    }
}

#[test]
fn variables_from_before_an_internal_redirect_are_renamed_as_apache_does() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    fs::write(
        root.join(".htaccess"),
        "SetEnv S set\nRewriteEngine On\nRewriteRule ^env$ index.php [E=V:hello,L]\n\
         RewriteRule ^index\\.php$ - [E=V:direct]\n",
    )
    .unwrap();
    fs::write(root.join("index.php"), "x").unwrap();
    let (site, compiled) = htaccess_site(root);
    let client = LOCALHOST;
    let files = RuleFiles::default();
    let env = |target: &str| {
        let (parts, ()) = http::Request::get(target).body(()).unwrap().into_parts();
        match before_routing(&compiled, &site, &parts, client, &files) {
            Verdict::Route(routing) => routing.env,
            Verdict::Respond(response) => panic!("answered {}", response.status()),
        }
    };
    let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
    // SetEnv applies in both passes, as the pass before the redirect ran to its end.
    assert_eq!(
        env("/env"),
        [
            pair("REDIRECT_V", "hello"),
            pair("REDIRECT_S", "set"),
            pair("V", "direct"),
            pair("S", "set")
        ]
    );
    // No internal redirect, no renaming.
    assert_eq!(env("/index.php"), [pair("V", "direct"), pair("S", "set")]);
}

#[test]
fn a_directory_without_its_slash_is_redirected_before_its_rewrite_as_apache_does() {
    let (_dir, site, compiled) =
        site_with_htaccess("RewriteEngine On\nRewriteRule ^(.+)$ index.php?dir=$1 [END]\n");
    fs::create_dir(site.root.join("adir")).unwrap();
    let client = LOCALHOST;
    let files = RuleFiles::default();
    let verdict = |target: &str| {
        let (parts, ()) = http::Request::get(target).body(()).unwrap().into_parts();
        before_routing(&compiled, &site, &parts, client, &files)
    };
    // mod_dir's Location carries the query the rewrite made (an Apache quirk, kept).
    match verdict("/adir?x=1") {
        Verdict::Respond(response) => {
            assert_eq!(response.status(), 301);
            assert_eq!(response.headers()["location"], "/adir/?dir=adir");
        }
        Verdict::Route(routing) => panic!("routed to {:?}", routing.rewritten),
    }
    for (target, rewritten) in [
        ("/adir/", "/index.php?dir=adir/"),
        ("/file", "/index.php?dir=file"),
    ] {
        match verdict(target) {
            Verdict::Route(routing) => {
                assert_eq!(routing.rewritten.unwrap().to_string(), rewritten)
            }
            Verdict::Respond(response) => panic!("{target}: answered {}", response.status()),
        }
    }
}

#[test]
fn a_refusal_carries_the_directory_s_header_always_actions() {
    let (_dir, site, compiled) = site_with_htaccess(
        "Require all denied\nHeader always set X-Always yes\nHeader set X-Success yes\n",
    );
    let client = LOCALHOST;
    let (parts, ()) = http::Request::get("/index.php")
        .body(())
        .unwrap()
        .into_parts();
    match before_routing(&compiled, &site, &parts, client, &RuleFiles::default()) {
        Verdict::Respond(response) => {
            assert_eq!(response.status(), 403);
            assert_eq!(response.headers()["x-always"], "yes");
            assert!(response.headers().get("x-success").is_none());
        }
        Verdict::Route(_) => panic!("routed"),
    }
}

#[test]
fn request_uri_in_rewrite_conditions_is_the_decoded_path() {
    // MediaWiki's thumbnail 404 handler: `RewriteCond %{DOCUMENT_ROOT}%{REQUEST_URI} !-f` must
    // see an existing thumbnail however the request spells its name, as Apache's does.
    use rules::rewrite::{RewriteCond, RewriteContext, RewriteOutcome, RewriteRule, RewriteSet};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let thumbs = root.join("images/thumb/Caf\u{e9}.png");
    fs::create_dir_all(&thumbs).unwrap();
    fs::write(thumbs.join("50px-Caf\u{e9}.png"), "png").unwrap();
    let site = site(root.clone());
    let client = LOCALHOST;
    let (flags, _) = RewriteRule::parse_flags("L").unwrap();
    let cond = RewriteCond::parse("%{DOCUMENT_ROOT}%{REQUEST_URI}", "!-f", "").unwrap();
    let handler = RewriteSet {
        rules: vec![RewriteRule::new(
            "^images/thumb/",
            "/thumb_handler.php",
            vec![cond],
            flags,
            false,
        )
        .unwrap()],
        directory: Some("/".into()),
        base: None,
    };
    let outcome = |raw: &str| {
        let (parts, ()) = http::Request::get(raw).body(()).unwrap().into_parts();
        let ctx = RequestContext::new(&site, &parts, client);
        let path = decoded_path(raw).unwrap();
        (
            ctx.variable("REQUEST_URI"),
            ctx.variable("THE_REQUEST"),
            handler.apply(&path, None, &ctx),
        )
    };
    let (uri, request, rewritten) = outcome("/images//thumb/Caf%C3%A9.png/50px-Caf%C3%A9.png");
    assert_eq!(
        uri.as_deref(),
        Some("/images/thumb/Caf\u{e9}.png/50px-Caf\u{e9}.png")
    );
    assert!(request
        .unwrap()
        .contains("/images//thumb/Caf%C3%A9.png/50px-Caf%C3%A9.png"));
    assert!(
        matches!(rewritten, RewriteOutcome::Unchanged { .. }),
        "{rewritten:?}"
    );
    // A size not rendered yet goes to the handler.
    let (_, _, rewritten) = outcome("/images/thumb/Caf%C3%A9.png/60px-Caf%C3%A9.png");
    assert!(
        matches!(&rewritten, RewriteOutcome::Rewritten { path, .. } if path == "/thumb_handler.php"),
        "{rewritten:?}"
    );
}

#[test]
fn after_an_internal_redirect_request_uri_and_query_string_are_the_rewritten_ones() {
    // Apache 2.4 (checked): GET /first with this .htaccess serves third.txt, because the
    // per-directory phase runs again for /second and its %{REQUEST_URI} is /second.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    fs::write(root.join("third.txt"), "third").unwrap();
    fs::write(root.join("fourth.txt"), "fourth").unwrap();
    fs::write(
        root.join(".htaccess"),
        "RewriteEngine On\n\
         RewriteRule ^first$ /second [L]\n\
         RewriteCond %{REQUEST_URI} =/second\n\
         RewriteRule ^second$ /third.txt [L]\n\
         RewriteRule ^query$ /again?step=2 [L]\n\
         RewriteCond %{QUERY_STRING} =step=2\n\
         RewriteRule ^again$ /fourth.txt? [L]\n",
    )
    .unwrap();
    let mut site = site(root);
    site.rules.htaccess = true;
    let compiled = CompiledSite::new(SiteRules::compile(&site.rules).unwrap());
    let client = LOCALHOST;
    let files = RuleFiles::default();
    let routed = |raw: &str| {
        let (parts, ()) = http::Request::get(raw).body(()).unwrap().into_parts();
        match before_routing(&compiled, &site, &parts, client, &files) {
            Verdict::Route(routing) => routing.rewritten.map(|uri| uri.to_string()),
            Verdict::Respond(response) => panic!("{raw}: {}", response.status()),
        }
    };
    assert_eq!(routed("/first").as_deref(), Some("/third.txt"));
    assert_eq!(routed("/query?step=1").as_deref(), Some("/fourth.txt"));
}
