//! The cache serves an outcome again only while what its evaluation read holds; every call
//! here also runs the debug cross-check against the full evaluation.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};

use http::request::Parts;
use protocol::site_rules::{
    AuthRuleSpec, ClientRuleSpec, PathPatternSpec, RateLimitRuleSpec, SiteRulesSpec,
};
use rules::site::SiteRules;

use super::super::tests::{get, htaccess_site, site, site_with_htaccess, LOCALHOST, WORDPRESS};
use super::*;

/// Whether the request was served from the cache, and the verdict.
fn ask(
    compiled: &CompiledSite,
    site: &SiteSpec,
    parts: &Parts,
    client: Client,
    files: &RuleFiles,
) -> (bool, Verdict) {
    let hit = would_hit(compiled, site, parts, client, files);
    (
        hit,
        super::super::before_routing(compiled, site, parts, client, files),
    )
}

fn routed(verdict: Verdict) -> Routing {
    match verdict {
        Verdict::Route(routing) => routing,
        Verdict::Respond(response) => panic!("answered {}", response.status()),
    }
}

fn native_site(rules: SiteRulesSpec) -> (tempfile::TempDir, SiteSpec, CompiledSite) {
    let dir = tempfile::tempdir().unwrap();
    let mut site = site(dir.path().canonicalize().unwrap());
    site.rules = rules;
    let compiled = CompiledSite::new(SiteRules::compile(&site.rules).unwrap());
    (dir, site, compiled)
}

#[test]
fn a_repeated_request_is_served_from_the_cache() {
    let (_dir, site, compiled) = site_with_htaccess(WORDPRESS);
    let files = RuleFiles::default();
    let parts = get("/hello-world/?p=1");
    let (hit, first) = ask(&compiled, &site, &parts, LOCALHOST, &files);
    assert!(!hit);
    let first = routed(first);
    assert_eq!(first.rewritten.as_ref().unwrap(), "/index.php?p=1");
    // Seen once: remembered the second time (see `Doorkeeper`), served the third.
    let (hit, second) = ask(&compiled, &site, &parts, LOCALHOST, &files);
    assert!(!hit);
    assert!(routed(second) == first);
    let (hit, third) = ask(&compiled, &site, &parts, LOCALHOST, &files);
    assert!(hit);
    assert!(routed(third) == first);
    // Another method or scheme is another request.
    let mut post = get("/hello-world/?p=1");
    post.method = Method::POST;
    assert!(!ask(&compiled, &site, &post, LOCALHOST, &files).0);
    let https = Client {
        https: true,
        ..LOCALHOST
    };
    assert!(!ask(&compiled, &site, &parts, https, &files).0);
}

#[test]
fn editing_creating_or_removing_an_htaccess_counts_from_the_next_request() {
    let (_dir, site, compiled) = site_with_htaccess("Header set X-A yes\n");
    fs::create_dir(site.root.join("a")).unwrap();
    fs::write(site.root.join("a/page.txt"), "x").unwrap();
    let files = RuleFiles::default();
    let parts = get("/a/page.txt");
    let ask = || ask(&compiled, &site, &parts, LOCALHOST, &files);
    routed(ask().1);
    routed(ask().1);
    assert!(ask().0);
    // Edited.
    fs::write(site.root.join(".htaccess"), "Require all denied\n").unwrap();
    let (hit, verdict) = ask();
    assert!(!hit);
    assert!(matches!(verdict, Verdict::Respond(r) if r.status() == 403));
    // Removed.
    fs::remove_file(site.root.join(".htaccess")).unwrap();
    let (hit, verdict) = ask();
    assert!(!hit);
    assert!(routed(verdict).headers.is_empty());
    assert!(ask().0);
    // Created, one level down.
    fs::write(site.root.join("a/.htaccess"), "Header set X-B yes\n").unwrap();
    let (hit, verdict) = ask();
    assert!(!hit);
    assert_eq!(&*routed(verdict).headers[0].name, "X-B");
    assert!(ask().0);
}

#[test]
fn a_deploy_switching_the_root_symlink_counts_from_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    for release in ["r1", "r2"] {
        fs::create_dir(base.join(release)).unwrap();
        fs::write(base.join(release).join("page.txt"), "x").unwrap();
        let header = format!("Header set X-Release {release}\n");
        fs::write(base.join(release).join(".htaccess"), header).unwrap();
    }
    // The same file in both releases (as `rsync --link-dest` deploys make it): only the
    // root's identity tells the releases apart.
    fs::remove_file(base.join("r2/page.txt")).unwrap();
    fs::hard_link(base.join("r1/page.txt"), base.join("r2/page.txt")).unwrap();
    std::os::unix::fs::symlink("r1", base.join("current")).unwrap();
    let (site, compiled) = htaccess_site(base.join("current"));
    let files = RuleFiles::default();
    let parts = get("/page.txt");
    let ask = || ask(&compiled, &site, &parts, LOCALHOST, &files);
    let release = |verdict| routed(verdict).headers[0].value.to_string();
    assert_eq!(release(ask().1), "r1");
    assert!(
        files.htaccess.version(&site.root).1,
        "the root's path is watched: no stat of it per request"
    );
    ask();
    assert!(ask().0);
    std::os::unix::fs::symlink("r2", base.join("next")).unwrap();
    fs::rename(base.join("next"), base.join("current")).unwrap();
    let (hit, verdict) = ask();
    assert!(!hit);
    assert_eq!(release(verdict), "r2");
    assert!(ask().0);
}

#[test]
fn creating_the_file_a_condition_tested_counts_from_the_next_request() {
    let (_dir, site, compiled) = site_with_htaccess(WORDPRESS);
    let files = RuleFiles::default();
    let parts = get("/robots.txt");
    let ask = || ask(&compiled, &site, &parts, LOCALHOST, &files);
    assert!(routed(ask().1).rewritten.is_some());
    ask();
    assert!(ask().0);
    fs::write(site.root.join("robots.txt"), "x").unwrap();
    let (hit, verdict) = ask();
    assert!(!hit);
    assert!(routed(verdict).rewritten.is_none());
    assert!(ask().0);
    // Emptied: `-f` does not care, the fingerprint (`-s`) does; the outcome is the same.
    fs::write(site.root.join("robots.txt"), "").unwrap();
    let (hit, verdict) = ask();
    assert!(!hit);
    assert!(routed(verdict).rewritten.is_none());
}

#[test]
fn another_value_of_a_header_a_condition_read_is_another_outcome() {
    let (_dir, site, compiled) = site_with_htaccess(
        "RewriteEngine On\nRewriteCond %{HTTP:X-Mode} ^on$\nRewriteRule ^page$ /index.php [L]\n",
    );
    let files = RuleFiles::default();
    let with = |mode: &str| {
        http::Request::get("/page")
            .header("x-mode", mode)
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    let (on, off) = (with("on"), with("off"));
    assert!(routed(ask(&compiled, &site, &on, LOCALHOST, &files).1)
        .rewritten
        .is_some());
    ask(&compiled, &site, &on, LOCALHOST, &files);
    assert!(ask(&compiled, &site, &on, LOCALHOST, &files).0);
    let (hit, verdict) = ask(&compiled, &site, &off, LOCALHOST, &files);
    assert!(!hit);
    assert!(routed(verdict).rewritten.is_none());
    // A header no condition reads changes nothing.
    let mut other = with("off");
    other
        .headers
        .insert("x-other", http::HeaderValue::from_static("1"));
    assert!(ask(&compiled, &site, &other, LOCALHOST, &files).0);
}

#[test]
fn the_client_address_counts_only_where_a_rule_read_it() {
    let (_dir, site, compiled) = native_site(SiteRulesSpec {
        htaccess: true,
        clients: vec![ClientRuleSpec {
            pattern: PathPatternSpec::Prefix("/admin/".into()),
            allow: vec!["127.0.0.0/8".into(), "10.0.0.0/8".into()],
            deny: Vec::new(),
            status: 403,
        }],
        ..SiteRulesSpec::default()
    });
    let files = RuleFiles::default();
    let other = Client {
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        https: false,
    };
    let admin = get("/admin/x");
    routed(ask(&compiled, &site, &admin, LOCALHOST, &files).1);
    routed(ask(&compiled, &site, &admin, LOCALHOST, &files).1);
    assert!(ask(&compiled, &site, &admin, LOCALHOST, &files).0);
    assert!(!ask(&compiled, &site, &admin, other, &files).0);
    let page = get("/page");
    routed(ask(&compiled, &site, &page, LOCALHOST, &files).1);
    routed(ask(&compiled, &site, &page, LOCALHOST, &files).1);
    assert!(ask(&compiled, &site, &page, other, &files).0);
}

#[test]
fn an_htaccess_address_rule_ties_the_outcome_to_the_address() {
    let (_dir, site, compiled) = site_with_htaccess("Require ip 127.0.0.1 10.0.0.1\n");
    let files = RuleFiles::default();
    let other = Client {
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        https: false,
    };
    let parts = get("/index.php");
    routed(ask(&compiled, &site, &parts, LOCALHOST, &files).1);
    routed(ask(&compiled, &site, &parts, LOCALHOST, &files).1);
    assert!(ask(&compiled, &site, &parts, LOCALHOST, &files).0);
    assert!(!ask(&compiled, &site, &parts, other, &files).0);
}

#[test]
fn rate_limits_and_logins_are_never_remembered() {
    let (_dir, site, compiled) = native_site(SiteRulesSpec {
        htaccess: true,
        rate_limits: vec![RateLimitRuleSpec {
            pattern: PathPatternSpec::Prefix("/".into()),
            per_second: 1000.0,
            burst: 1000,
            methods: Vec::new(),
        }],
        ..SiteRulesSpec::default()
    });
    let files = RuleFiles::default();
    let parts = get("/page");
    for _ in 0..3 {
        let (hit, verdict) = ask(&compiled, &site, &parts, LOCALHOST, &files);
        assert!(!hit);
        routed(verdict);
    }

    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    fs::write(&users, "ali:{SHA}CEo1Ae3vaEXy8eQZjsOiuBz1xrw=\n").unwrap();
    let (_dir, site, compiled) = native_site(SiteRulesSpec {
        htaccess: true,
        auth: vec![AuthRuleSpec {
            pattern: PathPatternSpec::Prefix("/".into()),
            realm: "x".into(),
            htpasswd: users.clone(),
            users: Vec::new(),
        }],
        ..SiteRulesSpec::default()
    });
    let files = RuleFiles::default();
    // ali:sesame
    let parts = http::Request::get("/page")
        .header("Authorization", "Basic YWxpOnNlc2FtZQ==")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    for _ in 0..3 {
        let (hit, verdict) = ask(&compiled, &site, &parts, LOCALHOST, &files);
        assert!(!hit);
        routed(verdict);
    }

    let (_dir, site, compiled) = site_with_htaccess(&format!(
        "AuthType Basic\nAuthName x\nAuthUserFile {}\nRequire valid-user\n",
        users.display()
    ));
    for _ in 0..3 {
        let (hit, verdict) = ask(&compiled, &site, &parts, LOCALHOST, &files);
        assert!(!hit);
        assert_eq!(routed(verdict).user.as_deref(), Some("ali"));
    }
}

#[test]
fn refusals_are_never_remembered() {
    let (_dir, site, compiled) = site_with_htaccess("Require all denied\n");
    let files = RuleFiles::default();
    let parts = get("/index.php");
    for _ in 0..2 {
        let (hit, verdict) = ask(&compiled, &site, &parts, LOCALHOST, &files);
        assert!(!hit);
        assert!(matches!(verdict, Verdict::Respond(_)));
    }
}

#[test]
fn a_target_seen_once_is_not_remembered() {
    let (_dir, site, compiled) = site_with_htaccess(WORDPRESS);
    let files = RuleFiles::default();
    for i in 0..1000 {
        let parts = get(&format!("/unique-{i}"));
        routed(super::super::before_routing(
            &compiled, &site, &parts, LOCALHOST, &files,
        ));
    }
    assert_eq!(remembered(), 0);
}

#[test]
fn the_bound_holds_under_100k_unique_paths() {
    let (_dir, site, compiled) = site_with_htaccess(WORDPRESS);
    let files = RuleFiles::default();
    let mut peak = 0;
    for i in 0..100_000 {
        let parts = get(&format!("/unique-{i}/{}", "x".repeat(i % 300)));
        // Each twice, past the doorkeeper.
        for _ in 0..2 {
            routed(super::super::before_routing(
                &compiled, &site, &parts, LOCALHOST, &files,
            ));
        }
        assert!(remembered_bytes() <= MAX_BYTES);
        peak = peak.max(remembered_bytes());
    }
    // The cache did fill up to its bound (and was emptied) on the way.
    assert!(peak > MAX_BYTES / 2, "{peak}");
}
