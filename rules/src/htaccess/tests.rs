//! Scenarios from the applications paddock fronts, each a directory tree of `.htaccess` files
//! and requests with the answer Apache 2.4 gives.

use std::collections::HashMap;
use std::net::IpAddr;

use super::*;
use crate::rewrite::{FileKind, RewriteContext, RewriteOutcome};

/// A site: `.htaccess` texts by directory, files and directories under the document root `/srv`.
struct Site {
    rules: Vec<DirRules>,
    files: Vec<String>,
    dirs: Vec<String>,
}

/// One request's view of the site for rewrite conditions and variables.
struct Ctx<'s> {
    site: &'s Site,
    path: String,
    vars: HashMap<String, String>,
}

impl RewriteContext for Ctx<'_> {
    fn variable(&self, name: &str) -> Option<String> {
        match name {
            "REQUEST_FILENAME" => Some(format!("/srv{}", self.path)),
            "REQUEST_URI" => Some(self.path.clone()),
            "HTTP_HOST" => Some("example.test".into()),
            _ => self.vars.get(name).cloned(),
        }
    }
    fn file_kind(&self, path: &str) -> FileKind {
        let Some(local) = path.strip_prefix("/srv") else {
            return FileKind::Missing;
        };
        if self.site.files.iter().any(|f| f == local) {
            FileKind::File { size: 1 }
        } else if self
            .site
            .dirs
            .iter()
            .any(|d| d.trim_end_matches('/') == local)
        {
            FileKind::Dir
        } else {
            FileKind::Missing
        }
    }
    fn is_symlink(&self, _: &str) -> bool {
        false
    }
}

impl Site {
    fn new(htaccess: &[(&str, &str)], files: &[&str]) -> Self {
        let rules = htaccess
            .iter()
            .map(|(dir, text)| DirRules::compile(text, dir))
            .collect();
        Self {
            rules,
            files: files.iter().map(|f| f.to_string()).collect(),
            dirs: htaccess.iter().map(|(d, _)| d.to_string()).collect(),
        }
    }

    /// The files on the path to `path`'s directory, root first.
    fn chain(&self, path: &str) -> Vec<&DirRules> {
        let dir = &path[..=path.rfind('/').unwrap_or(0)];
        let mut chain: Vec<&DirRules> = self
            .rules
            .iter()
            .filter(|r| dir.starts_with(r.dir()))
            .collect();
        chain.sort_by_key(|r| r.dir().len());
        chain
    }

    fn ctx(&self, path: &str) -> Ctx<'_> {
        Ctx {
            site: self,
            path: path.to_string(),
            vars: HashMap::new(),
        }
    }

    fn access_as(&self, method: &str, path: &str, client: &str, user: Option<&str>) -> Access {
        let req = Request {
            path,
            query: None,
            method,
            client: client.parse::<IpAddr>().unwrap(),
            user,
            file_name: None,
        };
        check_access(&self.chain(path), &req, &self.ctx(path))
    }

    fn status(&self, method: &str, path: &str, client: &str) -> u16 {
        match self.access_as(method, path, client, None) {
            Access::Granted => 200,
            Access::Denied(status) => status,
            Access::NeedsAuth(_) => 401,
        }
    }

    /// Checks `(method, path, client, status)` rows.
    fn expect(&self, rows: &[(&str, &str, &str, u16)]) {
        for &(method, path, client, status) in rows {
            assert_eq!(
                self.status(method, path, client),
                status,
                "{method} {path} from {client}"
            );
        }
    }

    fn effective(&self, path: &str) -> Effective<'_> {
        let req = Request {
            path,
            query: Some("q=1"),
            method: "GET",
            client: "192.0.2.1".parse().unwrap(),
            user: None,
            file_name: None,
        };
        effective(&self.chain(path), &req, &self.ctx(path))
    }

    fn rewrite(&self, path: &str, query: Option<&str>, vars: &[(&str, &str)]) -> RewriteOutcome {
        let mut ctx = self.ctx(path);
        ctx.vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match rewrite_set(&self.chain(path), path) {
            Some(set) => set.apply(path, query, &ctx),
            None => RewriteOutcome::Unchanged { env: vec![] },
        }
    }
}

const WORDPRESS: &str = "# BEGIN WordPress
# The directives (lines) between \"BEGIN WordPress\" and \"END WordPress\" are
# dynamically generated, and should only be modified via WordPress filters.
<IfModule mod_rewrite.c>
RewriteEngine On
RewriteRule .* - [E=HTTP_AUTHORIZATION:%{HTTP:Authorization}]
RewriteBase /
RewriteRule ^index\\.php$ - [L]
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteRule . /index.php [L]
</IfModule>

# END WordPress
";

const UPLOADS: &str = "# Security plugin: no PHP in uploads
<Files *.php>
deny from all
</Files>
";

#[test]
fn wordpress_front_controller_and_uploads_protection() {
    let site = Site::new(
        &[("/", WORDPRESS), ("/wp-content/uploads/", UPLOADS)],
        &["/index.php", "/wp-login.php", "/wp-content/uploads/a.jpg"],
    );
    assert!(site
        .rules
        .iter()
        .all(|r| r.notes().is_empty() && r.denial().is_none()));
    site.expect(&[
        ("GET", "/hello-world/", "192.0.2.1", 200),
        ("GET", "/wp-login.php", "192.0.2.1", 200),
        ("GET", "/wp-content/uploads/a.jpg", "192.0.2.1", 200),
        ("GET", "/wp-content/uploads/shell.php", "192.0.2.1", 403),
        (
            "POST",
            "/wp-content/uploads/2024/01/x.php",
            "192.0.2.1",
            403,
        ),
        // Case matters to <Files>, as in Apache (the front end's own rules catch `.PHP`).
        ("GET", "/wp-content/uploads/x.PHP", "192.0.2.1", 200),
    ]);
    // Pretty permalinks: the front controller, with the Authorization header passed on.
    let auth = [("HTTP:Authorization", "Basic eDp5")];
    assert_eq!(
        site.rewrite("/hello-world/", Some("a=1"), &auth),
        RewriteOutcome::Rewritten {
            path: "/index.php".into(),
            query: Some("a=1".into()),
            env: vec![("HTTP_AUTHORIZATION".into(), "Basic eDp5".into())],
            end: false,
        }
    );
    assert!(matches!(
        site.rewrite("/index.php", None, &[]),
        RewriteOutcome::Unchanged { .. }
    ));
    assert!(matches!(
        site.rewrite("/wp-login.php", None, &[]),
        RewriteOutcome::Unchanged { .. }
    ));
    // The uploads file has no rewrite directives: the root's rules apply there, relative to `/`.
    let set = rewrite_set(
        &site.chain("/wp-content/uploads/missing.jpg"),
        "/wp-content/uploads/missing.jpg",
    )
    .unwrap();
    assert_eq!(set.directory.as_deref(), Some("/"));
    assert!(matches!(
        site.rewrite("/wp-content/uploads/missing.jpg", None, &[]),
        RewriteOutcome::Rewritten { ref path, .. } if path == "/index.php"
    ));
}

#[test]
fn mediawiki_denied_directories_in_each_style() {
    let site = Site::new(
        &[
            ("/includes/", "Require all denied\n"),
            ("/maintenance/", "Deny from all\n"),
            (
                "/cache/",
                "<IfModule !mod_authz_core.c>\n\tDeny from all\n</IfModule>\n\
                 <IfModule mod_authz_core.c>\n\tRequire all denied\n</IfModule>\n",
            ),
            (
                "/images/",
                "# Protect against bug T30235\n<IfModule rewrite_module>\n\tRewriteEngine On\n\
                 \tRewriteOptions inherit\n\
                 \tRewriteCond %{QUERY_STRING} \\.[^\\\\/:*?\\x22<>|%]+(#|\\?|$) [nocase]\n\
                 \tRewriteRule . - [forbidden]\n\tOptions +FollowSymLinks\n</IfModule>\n",
            ),
        ],
        &[],
    );
    for rules in &site.rules {
        assert!(rules.notes().is_empty(), "{:?}", rules.notes());
    }
    site.expect(&[
        ("GET", "/includes/WebStart.php", "127.0.0.1", 403),
        ("GET", "/includes/sub/dir/x.php", "127.0.0.1", 403),
        ("GET", "/maintenance/update.php", "127.0.0.1", 403),
        ("GET", "/cache/l10n.cdb", "127.0.0.1", 403),
        ("GET", "/images/a/ab/Cat.jpg", "127.0.0.1", 200),
        ("GET", "/index.php", "127.0.0.1", 200),
    ]);
    let query = |q| site.rewrite("/images/a/ab/Cat.jpg", Some(q), &[("QUERY_STRING", q)]);
    assert_eq!(query("x=.php"), RewriteOutcome::Forbidden);
    assert!(matches!(query("x=1"), RewriteOutcome::Unchanged { .. }));
    assert_eq!(
        site.effective("/images/x.jpg").options.follow_symlinks,
        Some(true)
    );
    for (text, allowed) in [
        ("Options None\n", false),
        ("Options None\nOptions +FollowSymLinks\n", true),
        ("Options -FollowSymLinks +SymLinksIfOwnerMatch\n", true),
        ("Options All\n", true),
        ("Options -Indexes\n", true),
    ] {
        let site = Site::new(&[("/", text)], &[]);
        let options = site.effective("/x").options;
        assert_eq!(options.rewrites_allowed(), allowed, "{text}");
    }
}

const DRUPAL_FILES: &str = "# Turn off all options we don't need.
Options -Indexes -ExecCGI -Includes -MultiViews

# Set the catch-all handler to prevent scripts from being executed.
SetHandler Drupal_Security_Do_Not_Remove_See_SA_2006_006
<Files *>
  # Override the handler again if we're run later in the evaluation list.
  SetHandler Drupal_Security_Do_Not_Remove_See_SA_2013_003
</Files>

# If we know how to do it safely, disable the PHP engine entirely.
<IfModule mod_php.c>
  php_flag engine off
</IfModule>
";

#[test]
fn drupal_files_directory_never_runs_scripts() {
    let site = Site::new(&[("/sites/default/files/", DRUPAL_FILES)], &[]);
    assert!(
        site.rules[0].notes().is_empty(),
        "{:?}",
        site.rules[0].notes()
    );
    let files = site.effective("/sites/default/files/evil.php");
    assert!(!files.scripts);
    assert!(files.php_values.is_empty());
    assert_eq!(
        files.options,
        Options {
            indexes: Some(false),
            exec_cgi: Some(false),
            includes: Some(false),
            multiviews: Some(false),
            follow_symlinks: None,
            symlinks_if_owner_match: None,
        }
    );
    assert!(site.effective("/index.php").scripts);
    // Each protection alone is enough.
    for text in [
        "SetHandler none\n",
        "<IfModule mod_php7.c>\nphp_flag engine off\n</IfModule>\n",
        "php_value engine 0\n",
        "RemoveHandler .php .phtml\n",
        "AddType text/plain .php\n",
        "<FilesMatch \"\\.php$\">\nSetHandler default-handler\n</FilesMatch>\n",
    ] {
        let site = Site::new(&[("/up/", text)], &[]);
        assert!(!site.effective("/up/x.php").scripts, "{text}");
        assert!(site.effective("/x.php").scripts, "{text}");
    }
    // Every mod_php generation counts as loaded; Apache's exact module names only.
    for (text, scripts) in [
        (
            "<IfModule mod_php5.c>\nphp_flag engine off\n</IfModule>\n",
            false,
        ),
        (
            "<IfModule php_module>\nphp_flag engine off\n</IfModule>\n",
            false,
        ),
        (
            "<IfModule mod_php>\nphp_flag engine off\n</IfModule>\n",
            true,
        ),
        (
            "<IfModule !mod_php.c>\nphp_flag engine off\n</IfModule>\n",
            true,
        ),
        (
            "<IfModule MOD_PHP.C>\nphp_flag engine off\n</IfModule>\n",
            true,
        ),
        (
            "<IfModule !mod_security2.c>\nphp_flag engine off\n</IfModule>\n",
            false,
        ),
    ] {
        let site = Site::new(&[("/up/", text)], &[]);
        assert_eq!(site.effective("/up/x.php").scripts, scripts, "{text}");
    }
    // A deeper file may switch the engine back on, as in Apache.
    let site = Site::new(
        &[
            ("/a/", "php_flag engine off\n"),
            ("/a/b/", "php_flag engine on\n"),
        ],
        &[],
    );
    assert!(!site.effective("/a/x.php").scripts);
    assert!(site.effective("/a/b/x.php").scripts);
}

#[test]
fn phpmyadmin_setup_behind_basic_auth_and_localhost() {
    let basic = "AuthType Basic\nAuthName \"phpMyAdmin Setup\"\n\
                 AuthUserFile /etc/phpmyadmin/htpasswd.setup\nRequire valid-user\n";
    let site = Site::new(&[("/setup/", basic)], &[]);
    let challenge = AuthChallenge {
        realm: "phpMyAdmin Setup".into(),
        user_file: "/etc/phpmyadmin/htpasswd.setup".into(),
    };
    assert_eq!(
        site.access_as("GET", "/setup/index.php", "192.0.2.1", None),
        Access::NeedsAuth(challenge.clone())
    );
    assert_eq!(
        challenge.www_authenticate(),
        "Basic realm=\"phpMyAdmin Setup\""
    );
    assert_eq!(
        site.access_as("GET", "/setup/index.php", "192.0.2.1", Some("admin")),
        Access::Granted
    );
    site.expect(&[("GET", "/index.php", "192.0.2.1", 200)]);

    // Named users: another valid user is asked again (401), as Apache does.
    let users = basic.replace("valid-user", "user admin root");
    let site = Site::new(&[("/setup/", &users)], &[]);
    assert_eq!(
        site.access_as("GET", "/setup/", "192.0.2.1", Some("root")),
        Access::Granted
    );
    assert!(matches!(
        site.access_as("GET", "/setup/", "192.0.2.1", Some("bob")),
        Access::NeedsAuth(_)
    ));

    // The distribution's 2.2-style localhost rule.
    let local = "Order Deny,Allow\nDeny from all\nAllow from 127.0.0.1 ::1\n";
    let site = Site::new(&[("/setup/", local)], &[]);
    site.expect(&[
        ("GET", "/setup/index.php", "127.0.0.1", 200),
        ("GET", "/setup/index.php", "::1", 200),
        ("GET", "/setup/index.php", "::ffff:127.0.0.1", 200),
        ("GET", "/setup/index.php", "192.0.2.1", 403),
    ]);

    // Both, with Satisfy: All needs both, Any needs one.
    let both = format!("{basic}{local}");
    let site = Site::new(&[("/setup/", &both)], &[]);
    site.expect(&[
        ("GET", "/setup/", "127.0.0.1", 401),
        ("GET", "/setup/", "192.0.2.1", 403),
    ]);
    let any = format!("{both}Satisfy Any\n");
    let site = Site::new(&[("/setup/", &any)], &[]);
    site.expect(&[
        ("GET", "/setup/", "127.0.0.1", 200),
        ("GET", "/setup/", "192.0.2.1", 401),
    ]);
    assert_eq!(
        site.access_as("GET", "/setup/", "192.0.2.1", Some("admin")),
        Access::Granted
    );

    // Apache answers 500 when a user is required but authentication is not configured.
    let site = Site::new(&[("/x/", "Require valid-user\n")], &[]);
    site.expect(&[("GET", "/x/", "192.0.2.1", 500)]);
    let site = Site::new(&[("/x/", "AuthType Basic\nRequire valid-user\n")], &[]);
    site.expect(&[("GET", "/x/", "192.0.2.1", 500)]);
}

#[test]
fn inheritance_and_merging_between_directories() {
    let site = Site::new(
        &[
            ("/private/", "Require all denied\n"),
            ("/private/public/", "Require all granted\n"),
            ("/private/other/", "RewriteEngine On\n"),
            ("/old/", "Deny from all\n"),
            // mod_access_compat does not merge: a lone `Allow` here replaces the parent's Deny.
            ("/old/open/", "Allow from 10.0.0.0/8\n"),
            ("/old/noaccess/", "Header set X-A b\n"),
            (
                "/net/",
                "Require ip 10.1 192.168.0.0/255.255.0.0 2001:db8::/32\n",
            ),
            (
                "/net/not/",
                "<RequireAll>\nRequire ip 10.0.0.0/8\nRequire not ip 10.1.2.3\n</RequireAll>\n",
            ),
            ("/both/", "Require ip 10.0.0.0/8\n"),
            ("/both/and/", "AuthMerging And\nRequire ip 10.1.0.0/16\n"),
            ("/both/or/", "AuthMerging Or\nRequire ip 192.0.2.0/24\n"),
            // Satisfy Any with no host rules lets everyone in, as in Apache.
            ("/sat/", "Require all denied\nSatisfy Any\n"),
            ("/local/", "Require local\n"),
        ],
        &[],
    );
    site.expect(&[
        ("GET", "/private/x", "10.0.0.1", 403),
        ("GET", "/private/public/x", "10.0.0.1", 200),
        ("GET", "/private/other/x", "10.0.0.1", 403),
        ("GET", "/old/x", "10.0.0.1", 403),
        ("GET", "/old/open/x", "192.0.2.1", 200),
        ("GET", "/old/noaccess/x", "10.0.0.1", 403),
        ("GET", "/net/x", "10.1.200.3", 200),
        ("GET", "/net/x", "10.2.0.1", 403),
        ("GET", "/net/x", "192.168.7.7", 200),
        ("GET", "/net/x", "2001:db8::1", 200),
        ("GET", "/net/not/x", "10.9.9.9", 200),
        ("GET", "/net/not/x", "10.1.2.3", 403),
        ("GET", "/both/and/x", "10.1.0.1", 200),
        ("GET", "/both/and/x", "10.2.0.1", 403),
        ("GET", "/both/or/x", "192.0.2.9", 200),
        ("GET", "/both/or/x", "10.2.0.1", 200),
        ("GET", "/both/or/x", "198.51.100.1", 403),
        ("GET", "/sat/x", "198.51.100.1", 200),
        ("GET", "/local/x", "127.0.0.2", 200),
        ("GET", "/local/x", "::1", 200),
        ("GET", "/local/x", "198.51.100.1", 403),
    ]);
}

#[test]
fn files_sections_match_the_file_name_and_come_after_the_directory() {
    let site = Site::new(
        &[
            (
                "/",
                "<FilesMatch \"\\.(bak|sql)$\">\nRequire all denied\n</FilesMatch>\n",
            ),
            // A deeper directory cannot re-open what a parent's <Files> closes: Files sections
            // are merged after every directory.
            ("/dump/", "Require all granted\n"),
            (
                "/conf/",
                "Require all denied\n<Files \"public.json\">\nRequire all granted\n</Files>\n",
            ),
        ],
        &[],
    );
    site.expect(&[
        ("GET", "/db.sql", "192.0.2.1", 403),
        ("GET", "/wp-config.php.bak", "192.0.2.1", 403),
        ("GET", "/dump/all.sql", "192.0.2.1", 403),
        ("GET", "/dump/all.sql.gz", "192.0.2.1", 200),
        ("GET", "/index.php", "192.0.2.1", 200),
        ("GET", "/conf/public.json", "192.0.2.1", 200),
        ("GET", "/conf/secret.json", "192.0.2.1", 403),
    ]);
    // PATH_INFO: the file name the request maps to decides, not the URL's last segment.
    let req = Request {
        path: "/db.sql/x.php",
        query: None,
        method: "GET",
        client: "192.0.2.1".parse().unwrap(),
        user: None,
        file_name: Some("db.sql"),
    };
    assert_eq!(
        check_access(&site.chain("/db.sql"), &req, &site.ctx("/db.sql")),
        Access::Denied(403)
    );
}

#[test]
fn limit_sections_restrict_only_their_methods() {
    let site = Site::new(
        &[
            (
                "/w/",
                "AuthType Basic\nAuthName w\nAuthUserFile /p\n<Limit POST PUT>\nRequire valid-user\n</Limit>\n",
            ),
            ("/ro/", "<LimitExcept GET>\nOrder allow,deny\nDeny from all\n</LimitExcept>\n"),
        ],
        &[],
    );
    site.expect(&[
        ("GET", "/w/x", "192.0.2.1", 200),
        ("HEAD", "/w/x", "192.0.2.1", 200),
        ("POST", "/w/x", "192.0.2.1", 401),
        ("GET", "/ro/x", "192.0.2.1", 200),
        ("HEAD", "/ro/x", "192.0.2.1", 200),
        ("DELETE", "/ro/x", "192.0.2.1", 403),
    ]);
}

#[test]
fn what_paddock_cannot_honour_denies_inside_access_rules() {
    let cases: &[(&str, Option<u16>)] = &[
        // An unknown directive inside a <Files> that denies: the whole directory denies.
        ("<Files secret.txt>\nOrder allow,deny\nDeny from all\nSSLOptions +StrictRequire\n</Files>\n", Some(403)),
        ("Require host example.org\n", Some(403)),
        ("Require expr \"%{REMOTE_ADDR} == '10.0.0.1'\"\n", Some(403)),
        ("Order allow, deny\n", Some(403)),
        ("Deny from .spammer.example\n", Some(403)),
        ("AuthType Digest\n", Some(403)),
        ("AuthGroupFile /etc/groups\n", Some(403)),
        ("SSLRequireSSL\n", Some(403)),
        ("Require not ip 10.0.0.1\n", Some(403)),
        ("<RequireAny>\nRequire not ip 10.0.0.1\nRequire all granted\n</RequireAny>\n", Some(403)),
        ("<If \"%{REMOTE_ADDR} != '10.0.0.1'\">\nRequire all denied\n</If>\n", Some(403)),
        ("<FilesMatch \"(\">\nRequire all denied\n</FilesMatch>\n", Some(403)),
        ("<Limit GET>\nRequire all denied\nFooBar on\n</Limit>\n", Some(403)),
        ("RewriteEngine On\nRewriteRule ^secret - [F,P]\n", Some(403)),
        ("<Files x>\nRequire all denied\n", Some(500)),
        // Outside access rules, unknown directives are only noted.
        ("FooBar on\n", None),
        ("<If \"true\">\nHeader set X y\n</If>\n", None),
        ("RewriteEngine On\nRewriteRule ^a$ /b [L,P]\n", None),
        ("php_admin_value open_basedir /\n", None),
        ("<Files x>\nExpiresActive On\nRequire all denied\n</Files>\n", None),
        // A section that only lets everyone in does not close the directory.
        (
            "<FilesMatch \"\\.(css|js)$\">\nHeader append Vary User-Agent env=!dont-vary\n\
             Order allow,deny\nAllow from all\n</FilesMatch>\n",
            None,
        ),
        ("<If \"true\">\nRequire all granted\n</If>\n", None),
    ];
    for (text, denial) in cases {
        let rules = DirRules::compile(text, "/d/");
        assert_eq!(rules.denial().map(|d| d.status), *denial, "{text}");
        let site = Site {
            rules: vec![rules],
            files: vec![],
            dirs: vec![],
        };
        let expected = denial.unwrap_or(200);
        // `x` is covered by some of the files' own rules.
        site.expect(&[("GET", "/d/y", "10.0.0.1", expected)]);
        site.expect(&[("GET", "/d/sub/dir/y", "10.0.0.1", expected)]);
        if denial.is_none() {
            assert!(!site.rules[0].notes().is_empty(), "{text}");
        }
    }
    let rules = DirRules::compile("<Files x>\nDeny from all\nFoo\n</Files>\n", "/");
    let denial = rules.denial().unwrap();
    assert_eq!(denial.line, 3);
    assert_eq!(rules.notes()[0].kind, NoteKind::Unknown);
}

#[test]
fn notes_sort_directives_into_ignored_unknown_and_invalid() {
    let rules = DirRules::compile(
        "ExpiresActive On\nExpiresByType image/png \"access plus 1 year\"\nFileETag None\n\
         AddOutputFilterByType DEFLATE text/html\nXSendFile on\nRewriteBase nowhere\n\
         <IfModule mod_security2.c>\nSecRuleEngine Off\n</IfModule>\n",
        "/",
    );
    let kinds: Vec<(usize, &NoteKind)> = rules.notes().iter().map(|n| (n.line, &n.kind)).collect();
    assert_eq!(
        kinds,
        [
            (1, &NoteKind::Ignored),
            (2, &NoteKind::Ignored),
            (3, &NoteKind::Ignored),
            (4, &NoteKind::Ignored),
            (5, &NoteKind::Unknown),
            (
                6,
                &NoteKind::Invalid("expects a URL path starting with `/`".into())
            ),
        ]
    );
    assert_eq!(rules.notes()[4].text, "XSendFile on");
    assert!(rules.denial().is_none());
}

#[test]
fn continuation_lines_and_quoted_arguments() {
    let site = Site::new(
        &[(
            "/",
            "RewriteEngine On\nRewriteRule ^old/(.*)$ \\\n    /new/$1 [R=301,L]\n\
             Header always set X-Note \"two words\"\nHeader unset X-Powered-By\n\
             ErrorDocument 404 /404.php\nErrorDocument 403 \"Go away\"\n\
             ErrorDocument 500 https://status.example/\nDirectoryIndex index.php index.html\n",
        )],
        &[],
    );
    assert!(
        site.rules[0].notes().is_empty(),
        "{:?}",
        site.rules[0].notes()
    );
    assert_eq!(
        site.rewrite("/old/a", None, &[]),
        RewriteOutcome::Redirect {
            status: 301,
            location: "http://example.test/new/a".into()
        }
    );
    let e = site.effective("/x");
    let headers: Vec<(&str, &str, bool)> = e
        .headers
        .iter()
        .map(|h| (&*h.name, &*h.value, h.always))
        .collect();
    assert_eq!(
        headers,
        [("X-Note", "two words", true), ("X-Powered-By", "", false)]
    );
    assert_eq!(e.headers[1].op, HeaderOp::Unset);
    assert_eq!(
        e.error_documents[&404],
        &ErrorDocument::Local("/404.php".into())
    );
    assert_eq!(
        e.error_documents[&403],
        &ErrorDocument::Text("Go away".into())
    );
    assert_eq!(
        e.error_documents[&500],
        &ErrorDocument::Remote("https://status.example/".into())
    );
    assert_eq!(
        e.directory_index,
        Some(&["index.php".to_string(), "index.html".to_string()][..])
    );
}

#[test]
fn unbalanced_sections_answer_500_with_the_line() {
    for (text, line) in [
        ("Require all granted\n<Files x>\nRequire all denied\n", 2),
        ("<IfModule mod_rewrite.c>\n</Files>\n", 2),
        ("</IfModule>\n", 1),
    ] {
        let rules = DirRules::compile(text, "/");
        let denial = rules.denial().unwrap();
        assert_eq!((denial.status, denial.line), (500, line), "{text}");
        let site = Site {
            rules: vec![rules],
            files: vec![],
            dirs: vec![],
        };
        site.expect(&[("GET", "/deep/er/x", "192.0.2.1", 500)]);
    }
}

#[test]
fn redirects_match_whole_segments_and_keep_the_query() {
    let site = Site::new(
        &[
            (
                "/",
                "Redirect 301 /old http://example.test/new\nRedirect gone /gone\n\
                 RedirectMatch 404 \\.git\nRedirectMatch permanent ^/blog/(\\d+)$ /posts/$1\n\
                 RedirectPermanent /perm/ /p/\n",
            ),
            ("/sub/", "Redirect /sub/a /sub/b\n"),
        ],
        &[],
    );
    let to = |path: &str| site.effective(path).redirect;
    let moved = |status, location: &str| {
        Some(RedirectTo {
            status,
            location: Some(location.to_string()),
        })
    };
    assert_eq!(to("/old"), moved(301, "http://example.test/new?q=1"));
    assert_eq!(
        to("/old/a b"),
        moved(301, "http://example.test/new/a%20b?q=1")
    );
    assert_eq!(to("/oldies"), None);
    assert_eq!(
        to("/gone/x"),
        Some(RedirectTo {
            status: 410,
            location: None
        })
    );
    assert_eq!(
        to("/x/.git/config"),
        Some(RedirectTo {
            status: 404,
            location: None
        })
    );
    assert_eq!(
        to("/blog/42"),
        moved(301, "http://example.test/posts/42?q=1")
    );
    assert_eq!(to("/perm/x"), moved(301, "http://example.test/p/x?q=1"));
    assert_eq!(to("/perm"), None);
    // The deeper directory's redirects are tried first.
    assert_eq!(to("/sub/a"), moved(302, "http://example.test/sub/b?q=1"));
    let bad = DirRules::compile("Redirect 301 /x\nRedirect 410 /y /z\nRedirect /a b\n", "/");
    assert_eq!(bad.notes().len(), 3);
}

#[test]
fn rewrites_run_from_the_deepest_file_unless_inherited() {
    let root = "RewriteEngine On\nRewriteRule ^a$ /from-root [L]\n";
    let site = Site::new(
        &[
            ("/", root),
            ("/own/", "RewriteRule ^b$ b.php [L]\n"),
            (
                "/inherit/",
                "RewriteEngine On\nRewriteOptions Inherit\nRewriteRule ^b$ b.php [L]\n",
            ),
            ("/off/", "RewriteEngine Off\n"),
            (
                "/base/",
                "RewriteEngine On\nRewriteBase /elsewhere/\nRewriteRule ^(.*)$ x.php?p=$1 [QSA]\n",
            ),
        ],
        &[],
    );
    let path = |out: RewriteOutcome| match out {
        RewriteOutcome::Rewritten { path, query, .. } => Some((path, query)),
        _ => None,
    };
    assert_eq!(
        path(site.rewrite("/a", None, &[])),
        Some(("/from-root".into(), None))
    );
    // A file with rewrite directives but no RewriteEngine inherits the engine, not the rules.
    assert_eq!(
        path(site.rewrite("/own/b", None, &[])),
        Some(("/own/b.php".into(), None))
    );
    assert_eq!(path(site.rewrite("/own/a", None, &[])), None);
    // Inherited rules come after the file's own, relative to the file's directory.
    assert_eq!(
        path(site.rewrite("/inherit/b", None, &[])),
        Some(("/inherit/b.php".into(), None))
    );
    assert_eq!(
        path(site.rewrite("/inherit/a", None, &[])),
        Some(("/from-root".into(), None))
    );
    assert!(rewrite_set(&site.chain("/off/a"), "/off/a").is_none());
    assert_eq!(
        path(site.rewrite("/base/y", Some("k=v"), &[])),
        Some(("/elsewhere/x.php".into(), Some("p=y&k=v".into())))
    );
}

#[test]
fn environment_php_values_and_types() {
    let site = Site::new(
        &[
            (
                "/",
                "SetEnvIf Authorization \"(.*)\" HTTP_AUTHORIZATION=$1\nSetEnv APP_ENV prod\n\
                 php_value upload_max_filesize 64M\nphp_flag display_errors off\n\
                 AddType application/json .map\n",
            ),
            ("/dev/", "SetEnv APP_ENV dev\nUnsetEnv FOO\nphp_flag display_errors on\nForceType text/plain\n"),
        ],
        &[],
    );
    let e = site.effective("/x.map");
    assert_eq!(
        e.env,
        [
            ("HTTP_AUTHORIZATION".to_string(), String::new()),
            ("APP_ENV".to_string(), "prod".to_string()),
        ]
    );
    assert_eq!(e.content_type, Some("application/json"));
    assert_eq!(
        e.php_values,
        // A flag reaches PHP as mod_php sends it: "1" or "0".
        [("upload_max_filesize", "64M"), ("display_errors", "0")]
    );
    let e = site.effective("/dev/x.map");
    assert_eq!(e.env[1], ("APP_ENV".to_string(), "dev".to_string()));
    assert_eq!(e.content_type, Some("text/plain"));
    assert_eq!(
        e.php_values,
        [("upload_max_filesize", "64M"), ("display_errors", "1")]
    );
    // The header, when sent, is copied.
    let mut ctx = site.ctx("/x");
    ctx.vars
        .insert("HTTP:Authorization".into(), "Basic eDp5".into());
    let req = Request {
        path: "/x",
        query: None,
        method: "GET",
        client: "192.0.2.1".parse().unwrap(),
        user: None,
        file_name: None,
    };
    let e = effective(&site.chain("/x"), &req, &ctx);
    assert!(e
        .env
        .contains(&("HTTP_AUTHORIZATION".into(), "Basic eDp5".into())));
}

#[test]
fn set_env_if_feeds_the_access_checks_and_set_env_does_not() {
    let site = Site::new(
        &[
            (
                "/",
                "SetEnvIfNoCase User-Agent \"badbot\" bad_bot\nBrowserMatch ^curl tool\n\
                 SetEnv late 1\nOrder Allow,Deny\nAllow from all\nDeny from env=bad_bot\n",
            ),
            ("/tools/", "Require env tool\n"),
            ("/late/", "SetEnv late 1\nDeny from env=late\n"),
        ],
        &[],
    );
    let status = |path: &str, agent: &str| {
        let mut ctx = site.ctx(path);
        ctx.vars.insert("HTTP:User-Agent".into(), agent.into());
        let req = Request {
            path,
            query: None,
            method: "GET",
            client: "192.0.2.1".parse().unwrap(),
            user: None,
            file_name: None,
        };
        check_access(&site.chain(path), &req, &ctx)
    };
    assert_eq!(status("/x", "Mozilla"), Access::Granted);
    assert_eq!(status("/x", "A BadBot/1.0"), Access::Denied(403));
    assert_eq!(status("/tools/x", "curl/8"), Access::Granted);
    assert_eq!(status("/tools/x", "Mozilla"), Access::Denied(403));
    assert_eq!(status("/late/x", "Mozilla"), Access::Granted);
}

#[test]
fn rewrite_options_inheritance_and_the_directory_without_its_slash() {
    let site = Site::new(
        &[
            ("/", "RewriteEngine On\nRewriteOptions InheritDown\nRewriteRule ^a$ /root-a [L]\n"),
            ("/kid/", "RewriteRule ^b$ b.php [L]\n"),
            ("/rebel/", "RewriteOptions IgnoreInherit\nRewriteRule ^b$ b.php [L]\n"),
            ("/m/", "RewriteEngine On\nRewriteOptions MergeBase\nRewriteBase /base/\nRewriteRule ^x$ x.php\n"),
            ("/m/n/", "RewriteRule ^y$ y.php\n"),
        ],
        &[],
    );
    let path = |p: &str| match site.rewrite(p, None, &[]) {
        RewriteOutcome::Rewritten { path, .. } => Some(path),
        _ => None,
    };
    assert_eq!(path("/kid/b").as_deref(), Some("/kid/b.php"));
    assert_eq!(path("/kid/a").as_deref(), Some("/root-a"));
    assert_eq!(path("/rebel/a"), None);
    assert_eq!(path("/m/n/y").as_deref(), Some("/base/y.php"));
    // `/kid` names the directory: mod_dir's slash redirect comes first in Apache.
    assert!(rewrite_set(&site.chain("/kid/"), "/kid").is_none());
    assert!(rewrite_set(&site.chain("/kid/"), "/kid/").is_some());
}

#[test]
fn redirect_match_escapes_the_path_and_keeps_the_target_query() {
    let site = Site::new(
        &[(
            "/",
            "RedirectMatch 301 ^/d/(.*)$ /docs/$1?from=d\nRedirectMatch ^/e/(.*)$ /e2/$1\n",
        )],
        &[],
    );
    let to = |path: &str| site.effective(path).redirect.and_then(|r| r.location);
    assert_eq!(
        to("/d/a b").as_deref(),
        Some("http://example.test/docs/a%20b?from=d")
    );
    assert_eq!(to("/e/x").as_deref(), Some("http://example.test/e2/x?q=1"));
    let bad = DirRules::compile(
        "ErrorDocument 403 Sorry no\nErrorDocument 401 https://x.example/\nErrorDocument 200 /x\n",
        "/",
    );
    assert_eq!(bad.notes().len(), 3, "{:?}", bad.notes());
}

/// A small deterministic generator (xorshift), so that failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn parsing_compiling_and_evaluating_never_panic() {
    let pieces = [
        "<Files",
        "</Files>",
        "<FilesMatch",
        "<IfModule",
        "</IfModule>",
        "<Limit",
        "</Limit>",
        "<RequireAll>",
        "</RequireAll>",
        "<RequireNone>",
        "</RequireNone>",
        ">",
        "<",
        "\"",
        "'",
        "\\",
        "\n",
        " ",
        "\t",
        "#",
        "Require",
        "not",
        "ip",
        "all",
        "granted",
        "denied",
        "valid-user",
        "Order",
        "Allow",
        "Deny",
        "from",
        "Satisfy",
        "Any",
        "AuthType",
        "Basic",
        "RewriteEngine",
        "On",
        "RewriteRule",
        "RewriteCond",
        "[L,R=301]",
        "[F]",
        "(",
        ")",
        "^",
        "$",
        "%{",
        "}",
        "$1",
        "%1",
        "*",
        "?",
        "[",
        "]",
        "10.1",
        "::1",
        "/",
        "/x",
        ".php",
        "Redirect",
        "RedirectMatch",
        "gone",
        "301",
        "Header",
        "set",
        "ErrorDocument",
        "404",
        "php_flag",
        "engine",
        "off",
        "SetEnvIf",
        "Options",
        "-Indexes",
        "+",
        "-",
        "é",
        "\u{0}",
        "\r",
        "~",
        "=",
        "!",
        ",",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let text: String = if round % 4 == 0 {
            // Raw bytes, as a lossy file read gives them.
            let bytes: Vec<u8> = (0..rng.next() % 200).map(|_| rng.next() as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            (0..rng.next() % 60)
                .map(|_| rng.pick(&pieces))
                .collect::<Vec<_>>()
                .join(if round % 3 == 0 { "" } else { " " })
        };
        let _ = parse::parse(&text);
        let rules = DirRules::compile(&text, "/d");
        let site = Site {
            rules: vec![rules],
            files: vec![],
            dirs: vec![],
        };
        for path in ["/d/x.php", "/d/", "/d/a/b.sql", "/x"] {
            for user in [None, Some("u")] {
                let _ = site.access_as(rng.pick(&["GET", "POST", "HEAD"]), path, "10.1.2.3", user);
            }
            let _ = site.effective(path);
            let _ = site.rewrite(path, Some("a=b"), &[]);
        }
    }
}

#[test]
fn an_unknown_line_never_opens_what_was_closed() {
    let lines = [
        "Require all denied",
        "Require all granted",
        "Require ip 10.0.0.0/8",
        "Require valid-user",
        "Require user admin",
        "AuthType Basic",
        "AuthName realm",
        "AuthUserFile /p",
        "Order allow,deny",
        "Order deny,allow",
        "Allow from all",
        "Allow from 10.1",
        "Deny from all",
        "Deny from 10.0.0.1",
        "Satisfy Any",
        "<Files *.php>",
        "</Files>",
        "<FilesMatch \\.sql$>",
        "</FilesMatch>",
        "<IfModule mod_rewrite.c>",
        "</IfModule>",
        "<Limit POST>",
        "</Limit>",
        "<RequireAll>",
        "</RequireAll>",
        "Header set X y",
        "php_flag engine off",
    ];
    let unknown = [
        "FooBar on",
        "<If \"true\">\nRequire all granted\n</If>",
        "SSLRequireSSL",
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let rank = |a: &Access| match a {
        Access::Granted => 0,
        Access::NeedsAuth(_) => 1,
        Access::Denied(_) => 2,
    };
    for _ in 0..2000 {
        let count = 1 + rng.next() % 8;
        let mut file: Vec<&str> = (0..count).map(|_| rng.pick(&lines)).collect();
        let before = DirRules::compile(&file.join("\n"), "/d/");
        let at = (rng.next() % (file.len() as u64 + 1)) as usize;
        file.insert(at, rng.pick(&unknown));
        let after = DirRules::compile(&file.join("\n"), "/d/");
        let (before, after) = (
            Site {
                rules: vec![before],
                files: vec![],
                dirs: vec![],
            },
            Site {
                rules: vec![after],
                files: vec![],
                dirs: vec![],
            },
        );
        for (method, path, client, user) in [
            ("GET", "/d/x.php", "10.0.0.1", None),
            ("POST", "/d/db.sql", "192.0.2.1", None),
            ("GET", "/d/a.txt", "10.1.2.3", Some("admin")),
        ] {
            let was = before.access_as(method, path, client, user);
            let now = after.access_as(method, path, client, user);
            assert!(
                rank(&now) >= rank(&was),
                "{method} {path}: {was:?} became {now:?} with\n{}",
                file.join("\n")
            );
        }
    }
}

#[test]
fn a_file_says_whether_it_looks_at_the_client_address() {
    let reads = |text: &str| DirRules::compile(text, "/").reads_client_address();
    assert!(reads("Require ip 10.0.0.0/8\n"));
    assert!(reads(
        "<RequireAll>\nRequire all granted\nRequire not ip 10.1\n</RequireAll>\n"
    ));
    assert!(reads("Require local\n"));
    assert!(reads(
        "Order deny,allow\nDeny from all\nAllow from 127.0.0.1\n"
    ));
    assert!(reads("<Files x.php>\nRequire ip 127.0.0.1\n</Files>\n"));
    assert!(reads("SetEnvIf Remote_Addr ^10\\. internal\n"));
    assert!(!reads("Require all denied\n"));
    assert!(!reads("Order deny,allow\nDeny from env=bad_bot\n"));
    assert!(!reads(
        "RewriteEngine On\nRewriteRule . /index.php [L]\nHeader set X-A 1\n"
    ));
}
