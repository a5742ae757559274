use std::collections::HashMap;

use super::*;

/// A request to `host` with these files and directories under the document root `/srv`.
struct Fake {
    files: HashMap<String, u64>,
    dirs: Vec<String>,
    vars: HashMap<&'static str, String>,
    path: String,
}

impl Fake {
    fn new(path: &str, files: &[&str], dirs: &[&str]) -> Self {
        let mut vars = HashMap::new();
        vars.insert("HTTP_HOST", "example.test".to_string());
        Self {
            files: files.iter().map(|f| (format!("/srv{f}"), 1)).collect(),
            dirs: dirs.iter().map(|d| format!("/srv{d}")).collect(),
            vars,
            path: path.to_string(),
        }
    }
}

impl RewriteContext for Fake {
    fn variable(&self, name: &str) -> Option<String> {
        match name {
            "REQUEST_FILENAME" => Some(format!("/srv{}", self.path)),
            "REQUEST_URI" => Some(self.path.clone()),
            _ => self.vars.get(name).cloned(),
        }
    }
    fn file_kind(&self, path: &str) -> FileKind {
        if let Some(size) = self.files.get(path) {
            FileKind::File { size: *size }
        } else if self.dirs.iter().any(|d| d == path) {
            FileKind::Dir
        } else {
            FileKind::Missing
        }
    }
    fn is_symlink(&self, _: &str) -> bool {
        false
    }
}

fn rule(pattern: &str, to: &str, conds: &[(&str, &str, &str)], flags: &str) -> RewriteRule {
    let (flags, nocase) = RewriteRule::parse_flags(flags).unwrap();
    let conds = conds
        .iter()
        .map(|(t, p, f)| RewriteCond::parse(t, p, f).unwrap())
        .collect();
    RewriteRule::new(pattern, to, conds, flags, nocase).unwrap()
}

fn server(rules: Vec<RewriteRule>) -> RewriteSet {
    RewriteSet {
        rules,
        directory: None,
        base: None,
    }
}

fn rewritten(path: &str, query: Option<&str>) -> RewriteOutcome {
    RewriteOutcome::Rewritten {
        path: path.into(),
        query: query.map(Into::into),
        env: vec![],
        end: false,
    }
}

#[test]
fn wordpress_front_controller_in_a_directory() {
    // WordPress's own .htaccess, in the document root.
    let set = RewriteSet {
        rules: vec![
            rule("^index\\.php$", "-", &[], "L"),
            rule(
                ".",
                "/index.php",
                &[
                    ("%{REQUEST_FILENAME}", "!-f", ""),
                    ("%{REQUEST_FILENAME}", "!-d", ""),
                ],
                "L",
            ),
        ],
        directory: Some("/".into()),
        base: Some("/".into()),
    };
    let fake = Fake::new(
        "/hello-world/",
        &["/index.php", "/style.css"],
        &["/wp-admin"],
    );
    assert_eq!(
        set.apply("/hello-world/", Some("x=1"), &fake),
        rewritten("/index.php", Some("x=1"))
    );
    let fake = Fake::new("/style.css", &["/index.php", "/style.css"], &[]);
    assert!(matches!(
        set.apply("/style.css", None, &fake),
        RewriteOutcome::Unchanged { .. }
    ));
    let fake = Fake::new("/index.php", &["/index.php"], &[]);
    assert!(matches!(
        set.apply("/index.php", None, &fake),
        RewriteOutcome::Unchanged { .. }
    ));
}

#[test]
fn per_directory_patterns_are_relative_and_substitutions_go_under_the_base() {
    let set = RewriteSet {
        rules: vec![rule("^(.*)$", "index.php?title=$1", &[], "L,QSA")],
        directory: Some("/wiki/".into()),
        base: Some("/w/".into()),
    };
    let fake = Fake::new("/wiki/Main_Page", &[], &[]);
    assert_eq!(
        set.apply("/wiki/Main_Page", Some("action=edit"), &fake),
        rewritten("/w/index.php", Some("title=Main_Page&action=edit"))
    );
    // Without a base, under the directory itself.
    let set = RewriteSet { base: None, ..set };
    assert_eq!(
        set.apply("/wiki/X", None, &fake),
        rewritten("/wiki/index.php", Some("title=X"))
    );
}

#[test]
fn query_replace_discard_and_empty() {
    let fake = Fake::new("/a", &[], &[]);
    let replace = server(vec![rule("^/a$", "/b?x=1", &[], "")]);
    assert_eq!(
        replace.apply("/a", Some("y=2"), &fake),
        rewritten("/b", Some("x=1"))
    );
    let keep = server(vec![rule("^/a$", "/b", &[], "")]);
    assert_eq!(
        keep.apply("/a", Some("y=2"), &fake),
        rewritten("/b", Some("y=2"))
    );
    let discard = server(vec![rule("^/a$", "/b", &[], "QSD")]);
    assert_eq!(
        discard.apply("/a", Some("y=2"), &fake),
        rewritten("/b", None)
    );
    let empty = server(vec![rule("^/a$", "/b?", &[], "")]);
    assert_eq!(empty.apply("/a", Some("y=2"), &fake), rewritten("/b", None));
}

#[test]
fn redirects_are_absolute_and_escaped() {
    let fake = Fake::new("/old/a b", &[], &[]);
    let set = server(vec![rule("^/old/(.*)$", "/new/$1", &[], "R=301,L")]);
    assert_eq!(
        set.apply("/old/a b", Some("q=1"), &fake),
        RewriteOutcome::Redirect {
            status: 301,
            location: "http://example.test/new/a%20b?q=1".into()
        }
    );
    let external = server(vec![rule("^/x$", "https://other.test/y", &[], "")]);
    assert_eq!(
        external.apply("/x", None, &fake),
        RewriteOutcome::Redirect {
            status: 302,
            location: "https://other.test/y".into()
        }
    );
}

#[test]
fn conditions_with_or_back_references_and_flags() {
    let mut fake = Fake::new("/x", &[], &[]);
    fake.vars.insert("HTTP_HOST", "www.example.test".into());
    fake.vars.insert("REQUEST_METHOD", "POST".into());
    // Canonical host: %1 from the condition.
    let set = server(vec![rule(
        "^/(.*)$",
        "https://%1/$1",
        &[("%{HTTP_HOST}", "^www\\.(.+)$", "NC")],
        "R=301,L",
    )]);
    assert_eq!(
        set.apply("/x", None, &fake),
        RewriteOutcome::Redirect {
            status: 301,
            location: "https://example.test/x".into()
        }
    );
    // [OR]: (GET or POST) and host.
    let or = server(vec![rule(
        "^/x$",
        "-",
        &[
            ("%{REQUEST_METHOD}", "=GET", "OR"),
            ("%{REQUEST_METHOD}", "=POST", ""),
            ("%{HTTP_HOST}", "nomatch", ""),
        ],
        "F",
    )]);
    assert!(matches!(
        or.apply("/x", None, &fake),
        RewriteOutcome::Unchanged { .. }
    ));
    let or = server(vec![rule(
        "^/x$",
        "-",
        &[
            ("%{REQUEST_METHOD}", "=GET", "OR"),
            ("%{REQUEST_METHOD}", "=POST", ""),
        ],
        "F",
    )]);
    assert_eq!(or.apply("/x", None, &fake), RewriteOutcome::Forbidden);
    let gone = server(vec![rule("^/X$", "-", &[], "G,NC")]);
    assert_eq!(gone.apply("/x", None, &fake), RewriteOutcome::Gone);
    let env = server(vec![rule(
        ".*",
        "-",
        &[("%{HTTP:Authorization}", "^(.+)$", "")],
        "E=HTTP_AUTHORIZATION:%1",
    )]);
    fake.vars.insert("HTTP:Authorization", "Basic eA==".into());
    assert_eq!(
        env.apply("/x", None, &fake),
        RewriteOutcome::Unchanged {
            env: vec![("HTTP_AUTHORIZATION".into(), "Basic eA==".into())]
        }
    );
}

#[test]
fn last_stops_the_pass_and_later_rules_see_the_new_path() {
    let fake = Fake::new("/a", &[], &[]);
    let chained = server(vec![
        rule("^/a$", "/b", &[], ""),
        rule("^/b$", "/c", &[], ""),
    ]);
    assert_eq!(chained.apply("/a", None, &fake), rewritten("/c", None));
    let last = server(vec![
        rule("^/a$", "/b", &[], "L"),
        rule("^/b$", "/c", &[], ""),
    ]);
    assert_eq!(last.apply("/a", None, &fake), rewritten("/b", None));
    let end = server(vec![rule("^/a$", "/b", &[], "END")]);
    assert_eq!(
        end.apply("/a", None, &fake),
        RewriteOutcome::Rewritten {
            path: "/b".into(),
            query: None,
            env: vec![],
            end: true
        }
    );
}

#[test]
fn unsupported_pieces_are_errors() {
    assert!(RewriteRule::parse_flags("L,P").is_err());
    assert!(RewriteRule::parse_flags("R=200").is_ok());
    let (flags, _) = RewriteRule::parse_flags("R=200").unwrap();
    assert!(RewriteRule::new("x", "y", vec![], flags, false).is_err());
    assert!(Template::parse("${map:x}").is_err());
    assert!(RewriteCond::parse("%{X}", "-x", "").is_err());
    assert!(RewriteCond::parse("%{X}", "(", "").is_err());
}

#[test]
fn a_chain_is_skipped_after_a_rule_that_does_not_match() {
    let set = server(vec![
        rule("^/a$", "/b", &[], "C"),
        rule("^/b$", "/c", &[], "C"),
        rule("^/c$", "/d", &[], ""),
        rule("^/(.*)$", "/last/$1", &[], "L"),
    ]);
    let fake = Fake::new("/a", &[], &[]);
    // All three match in turn, then the unchained rule.
    assert_eq!(set.apply("/a", None, &fake), rewritten("/last/d", None));
    // `/x` does not match the first rule: the two chained after it are skipped, not just one.
    let set = server(vec![
        rule("^/a$", "/b", &[], "C"),
        rule("^/x$", "/chained", &[], "C"),
        rule("^/x$", "/chained", &[], ""),
        rule("^/x$", "/after", &[], "L"),
    ]);
    assert_eq!(set.apply("/x", None, &fake), rewritten("/after", None));
}

#[test]
fn b_escapes_back_references_as_mod_rewrite_does() {
    let set = server(vec![rule("^/b/(.*)$", "/e.php?v=$1", &[], "B,L")]);
    let fake = Fake::new("/b/x y&z/é", &[], &[]);
    assert_eq!(
        set.apply("/b/x y&z/é", None, &fake),
        rewritten("/e.php", Some("v=x+y%26z%2f%c3%a9"))
    );
    let set = server(vec![rule("^/b/(.*)$", "/e.php?v=$1", &[], "B,BNP,L")]);
    assert_eq!(
        set.apply("/b/x y", None, &fake),
        rewritten("/e.php", Some("v=x%20y"))
    );
    let (flags, _) = RewriteRule::parse_flags("B=&?").unwrap();
    assert_eq!(
        flags.escape_backrefs,
        Some(BackrefEscape::Only("&?".into()))
    );
}

#[test]
fn b_with_characters_and_bctls_escape_only_those() {
    // MediaWiki's thumbnail handler rule: only `&` and `?` would break the query it builds.
    let set = server(vec![rule("^/b/(.*)$", "/e.php?v=$1", &[], "B=&?,L")]);
    let fake = Fake::new("/b/x y&z/é", &[], &[]);
    assert_eq!(
        set.apply("/b/x y&z/é?", None, &fake),
        rewritten("/e.php", Some("v=x y%26z/é%3f"))
    );
    let set = server(vec![rule("^/b/(.*)$", "/e.php?v=$1", &[], "BCTLS,L")]);
    assert_eq!(
        set.apply("/b/a b&c\t", None, &fake),
        rewritten("/e.php", Some("v=a+b&c%09"))
    );
}

#[test]
fn document_root_paths_in_a_directory_go_back_to_url_paths() {
    // MediaWiki's short-URL recipe (Manual:Short_URL/Apache), in the document root's .htaccess.
    let mut set = RewriteSet {
        rules: vec![
            rule("^/?wiki(/.*)?$", "%{DOCUMENT_ROOT}/w/index.php", &[], "L"),
            rule("^/?$", "%{DOCUMENT_ROOT}/w/index.php", &[], "L"),
        ],
        directory: Some("/".into()),
        base: None,
    };
    let mut fake = Fake::new("/wiki/Main_Page", &["/w/index.php"], &["/w"]);
    fake.vars.insert("DOCUMENT_ROOT", "/srv".into());
    assert_eq!(
        set.apply("/wiki/Main_Page", None, &fake),
        rewritten("/w/index.php", None)
    );
    assert_eq!(
        set.apply("/", Some("a=b"), &fake),
        rewritten("/w/index.php", Some("a=b"))
    );
    // A trailing slash on the document root changes nothing.
    fake.vars.insert("DOCUMENT_ROOT", "/srv/".into());
    assert_eq!(
        set.apply("/wiki/X", None, &fake),
        rewritten("/w/index.php", None)
    );
    // With RewriteBase, the directory's file-system path is replaced by the base.
    set.directory = Some("/w/".into());
    set.base = Some("/mediawiki/".into());
    set.rules = vec![rule("^x$", "%{DOCUMENT_ROOT}/w/index.php", &[], "L")];
    assert_eq!(
        set.apply("/w/x", None, &fake),
        rewritten("/mediawiki/index.php", None)
    );
    // A path that only looks like the document root (`/srvx`) is a URL path as written.
    set.rules = vec![rule("^x$", "/srvx/index.php", &[], "L")];
    assert_eq!(
        set.apply("/w/x", None, &fake),
        rewritten("/srvx/index.php", None)
    );
    // In server context a substitution is always a URL path.
    let server_set = server(vec![rule("^/y$", "/srv/w/index.php", &[], "L")]);
    assert_eq!(
        server_set.apply("/y", None, &fake),
        rewritten("/srv/w/index.php", None)
    );
}
