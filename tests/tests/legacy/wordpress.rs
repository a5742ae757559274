//! WordPress (Debian's `wordpress` package, copied into the test's directory) on MariaDB:
//! installed through its own web installer, then used as an editor and a visitor would, while
//! the site's rules keep its internals closed and a password-guessing loop away from PHP.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::client::Connection;
use harness::mariadb::MariaDb;
use harness::{require_php_cgi, Paddock};

use super::browser::{between, form_value, Browser};

const PASSWORD: &str = "Correct-Horse-9";
/// What the package installs; the test copies it so that nothing on the system changes.
const PACKAGE: &str = "/usr/share/wordpress";

struct Install {
    _db: MariaDb,
    dir: tempfile::TempDir,
    paddock: Paddock,
}

impl Install {
    fn root(&self) -> PathBuf {
        self.dir.path().join("wordpress")
    }
}

fn wp_config(socket: &Path) -> String {
    let keys = [
        "AUTH_KEY",
        "SECURE_AUTH_KEY",
        "LOGGED_IN_KEY",
        "NONCE_KEY",
        "AUTH_SALT",
        "SECURE_AUTH_SALT",
        "LOGGED_IN_SALT",
        "NONCE_SALT",
    ]
    .iter()
    .map(|k| format!("define('{k}', 'paddock-test-{k}');\n"))
    .collect::<String>();
    format!(
        r#"<?php
define('DB_NAME', 'wordpress');
define('DB_USER', 'wordpress');
define('DB_PASSWORD', 'wordpress');
define('DB_HOST', 'localhost:{socket}');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
{keys}define('FS_METHOD', 'direct');
define('AUTOMATIC_UPDATER_DISABLED', true);
define('DISABLE_WP_CRON', true);
$table_prefix = 'wp_';
if (!defined('ABSPATH')) define('ABSPATH', __DIR__ . '/');
require_once ABSPATH . 'wp-settings.php';
"#,
        socket = socket.display()
    )
}

/// `handler`: the pool's `command = …` or `builtin = …` line.
fn site_config(root: &Path, handler: &str) -> String {
    format!(
        r#"
[sites.wp]
root = "{root}"
index = ["index.php", "index.html"]

# No front controller: pretty URLs work only through the .htaccess WordPress writes.
[sites.wp.scripts]
pool = "php"

[[sites.wp.no_scripts]]
prefix = "/wp-content/uploads/"

[[sites.wp.deny]]
regex = '^/wp-content/(debug\.log|upgrade/)'

[[sites.wp.deny]]
prefix = "/wp-config.php"

[[sites.wp.rate_limit]]
prefix = "/wp-login.php"
rate = "10/m"
burst = 5
methods = ["POST"]

[[sites.wp.rate_limit]]
prefix = "/xmlrpc.php"
rate = "1/h"
burst = 6
methods = ["POST"]

[pools.php]
mode = "prefork"
{handler}
workers = 4
"#,
        root = root.display()
    )
}

fn install(handler: &str) -> Install {
    assert!(
        Path::new(PACKAGE).join("wp-settings.php").exists(),
        "apt-get install wordpress wordpress-theme-twentytwentyone (scripts/test.sh installs them)"
    );
    let db = MariaDb::start();
    db.create_database("wordpress");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wordpress");
    // Self-contained: Debian links libraries from /usr/share/javascript and friends.
    let copied = Command::new("cp")
        .arg("-aL")
        .arg(PACKAGE)
        .arg(&root)
        .status()
        .unwrap();
    assert!(copied.success());
    // Debian's own wp-config.php looks for /etc/wordpress/config-HOST.php; ours is the
    // upstream kind. Debian's .htaccess is a link to /etc/wordpress/htaccess.
    fs::write(root.join("wp-config.php"), wp_config(&db.socket())).unwrap();
    let _ = fs::remove_file(root.join(".htaccess"));
    // WordPress writes its rewrite rules to .htaccess only on a server it takes for Apache; this
    // is WordPress's own switch for servers that rewrite but that it does not recognise.
    let mu_plugins = root.join("wp-content/mu-plugins");
    fs::create_dir_all(&mu_plugins).unwrap();
    fs::write(
        mu_plugins.join("rewrite.php"),
        "<?php add_filter('got_rewrite', '__return_true');",
    )
    .unwrap();
    // What a careless deployment leaves behind.
    fs::write(
        root.join("wp-config.php.bak"),
        "<?php define('DB_PASSWORD', 'leaked');",
    )
    .unwrap();
    fs::write(root.join("wp-settings.php.orig"), "<?php // leaked").unwrap();
    fs::create_dir_all(root.join(".git")).unwrap();
    fs::write(root.join(".git/config"), "[remote \"origin\"] url = secret").unwrap();
    fs::create_dir_all(root.join("wp-content")).unwrap();
    fs::write(root.join("wp-content/debug.log"), "PHP Notice: secret").unwrap();
    let paddock = Paddock::start(&site_config(&root, handler));
    Install {
        _db: db,
        dir,
        paddock,
    }
}

fn xmlrpc_call(method: &str, password: &str, params: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><methodCall><methodName>{method}</methodName><params>\
         <param><value><int>1</int></value></param>\
         <param><value><string>admin</string></value></param>\
         <param><value><string>{password}</string></value></param>{params}</params></methodCall>"
    )
}

/// A 1×1 PNG, base64.
const DOT_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

#[test]
fn wordpress_installs_publishes_and_stays_protected() {
    require_php_cgi();
    wordpress(install("command = [\"php-cgi\"]"));
}

/// The same, on paddock's own PHP worker (`builtin = "php"`).
#[test]
fn wordpress_on_builtin_php_installs_publishes_and_stays_protected() {
    if !harness::php_builtin::require_libphp() {
        return;
    }
    wordpress(install("builtin = \"php\""));
}

fn wordpress(wp: Install) {
    let paddock = &wp.paddock;
    let editor = Browser::new(paddock, wp.dir.path(), "editor");

    // The web installer.
    let first = editor.get("/");
    assert_eq!(first.status, 302, "{}", first.body);
    assert!(
        first.location.ends_with("/wp-admin/install.php"),
        "{}",
        first.location
    );
    let installed = editor.post(
        "/wp-admin/install.php?step=2",
        &[
            ("weblog_title", "Paddock Test"),
            ("user_name", "admin"),
            ("admin_password", PASSWORD),
            ("admin_password2", PASSWORD),
            ("pw_weak", "on"),
            ("admin_email", "admin@example.test"),
            ("blog_public", "0"),
            ("language", ""),
        ],
    );
    assert!(
        installed.body.contains("<h1>Success!</h1>"),
        "{}",
        installed.body
    );

    // Log in.
    editor.get("/wp-login.php");
    let login = editor.post(
        "/wp-login.php",
        &[
            ("log", "admin"),
            ("pwd", PASSWORD),
            ("wp-submit", "Log In"),
            ("testcookie", "1"),
            ("redirect_to", "/wp-admin/"),
        ],
    );
    assert_eq!(login.status, 302, "{}", login.body);
    let dashboard = editor.get("/wp-admin/");
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.body.contains("Dashboard"));

    // Publish a post and upload an image (XML-RPC, as desktop and mobile editors do).
    let post = editor.xmlrpc(&xmlrpc_call(
        "wp.newPost",
        PASSWORD,
        "<param><value><struct>\
         <member><name>post_title</name><value><string>Hello from paddock</string></value></member>\
         <member><name>post_content</name><value><string>Served by a warm front end.</string></value></member>\
         <member><name>post_status</name><value><string>publish</string></value></member>\
         <member><name>post_name</name><value><string>hello-from-paddock</string></value></member>\
         </struct></value></param>",
    ));
    assert_eq!(post.status, 200);
    assert!(!post.body.contains("faultCode"), "{}", post.body);
    let upload = editor.xmlrpc(&xmlrpc_call(
        "wp.uploadFile",
        PASSWORD,
        &format!(
            "<param><value><struct>\
             <member><name>name</name><value><string>dot.png</string></value></member>\
             <member><name>type</name><value><string>image/png</string></value></member>\
             <member><name>bits</name><value><base64>{DOT_PNG}</base64></value></member>\
             </struct></value></param>"
        ),
    ));
    let image_url = between(&upload.body, "<string>http", "</string>")
        .unwrap_or_else(|| panic!("no upload URL: {}", upload.body));
    let image_path = &image_url[image_url.find("/wp-content/").unwrap()..];
    let image = Connection::open(paddock.http)
        .unwrap()
        .request("GET", image_path, &[], b"")
        .unwrap();
    assert_eq!(image.status, 200);
    assert_eq!(image.header("content-type"), Some("image/png"));
    assert!(image.body.starts_with(b"\x89PNG"));

    // Pretty permalinks ("post name"), as the settings page saves them.
    let settings = editor.get("/wp-admin/options-permalink.php");
    let nonce = form_value(&settings.body, "_wpnonce").expect("the permalink form's nonce");
    let saved = editor.post(
        "/wp-admin/options-permalink.php",
        &[
            ("_wpnonce", &nonce),
            ("_wp_http_referer", "/wp-admin/options-permalink.php"),
            ("selection", "/%postname%/"),
            ("permalink_structure", "/%postname%/"),
            ("category_base", ""),
            ("tag_base", ""),
            ("submit", "Save Changes"),
        ],
    );
    assert_eq!(saved.status, 302, "{}", saved.body);
    // A browser follows the redirect; that page load is what rebuilds WordPress's routes.
    let path = &saved.location[saved.location.find("/wp-admin/").unwrap()..];
    assert_eq!(editor.get(path).status, 200);
    // WordPress wrote its .htaccess; paddock follows it from the next request, no reload.
    let htaccess = fs::read_to_string(wp.root().join(".htaccess")).expect("WordPress's .htaccess");
    assert!(htaccess.contains("# BEGIN WordPress"), "{htaccess}");
    let visitor = Browser::new(paddock, wp.dir.path(), "visitor");
    let article = visitor.get("/hello-from-paddock/");
    assert_eq!(
        article.status,
        200,
        "{}",
        between(&article.body, "<title>", "</title>").unwrap_or(&article.body)
    );
    assert!(article.body.contains("Served by a warm front end."));
    assert!(
        article.body.contains("<title>Hello from paddock"),
        "{}",
        &article.body[..500.min(article.body.len())]
    );

    // A visitor's comment, held for moderation as WordPress does by default.
    let comment = visitor.post(
        "/wp-comments-post.php",
        &[
            ("comment_post_ID", "1"),
            ("author", "Visitor"),
            ("email", "visitor@example.test"),
            ("url", ""),
            ("comment", "Nice front end"),
            ("submit", "Post Comment"),
        ],
    );
    assert_eq!(comment.status, 302, "{}", comment.body);
    assert!(
        comment.location.contains("unapproved="),
        "{}",
        comment.location
    );
    let stored = wp._db.sql(
        "SELECT comment_author FROM wordpress.wp_comments WHERE comment_content = 'Nice front end'",
    );
    assert_eq!(stored.trim(), "Visitor");

    // Log out.
    let admin = editor.get("/wp-admin/");
    let logout = between(
        &admin.body,
        "wp-login.php?action=logout&#038;_wpnonce=",
        "'",
    )
    .or_else(|| {
        between(
            &admin.body,
            "wp-login.php?action=logout&amp;_wpnonce=",
            "\"",
        )
    })
    .expect("the log-out link")
    .to_string();
    let out = editor.get(&format!("/wp-login.php?action=logout&_wpnonce={logout}"));
    assert_eq!(out.status, 302);
    assert!(out.location.contains("loggedout=true"), "{}", out.location);
    assert_eq!(editor.get("/wp-admin/").status, 302);

    // Internals stay closed.
    let uploads = wp.root().join("wp-content/uploads");
    fs::write(uploads.join("evil.php"), "<?php echo 'EXECUTED';").unwrap();
    let evil = visitor.get("/wp-content/uploads/evil.php");
    assert_eq!(evil.status, 403);
    assert!(!evil.body.contains("EXECUTED"));
    for (path, status) in [
        ("/wp-config.php", 403),
        // Covered by the rule for the config file…
        ("/wp-config.php.bak", 403),
        // …and by the safe defaults every site has.
        ("/wp-settings.php.orig", 404),
        ("/.git/config", 404),
        ("/wp-content/debug.log", 403),
    ] {
        let page = visitor.get(path);
        assert_eq!(page.status, status, "{path}");
        assert!(
            !page.body.contains("secret") && !page.body.contains("leaked"),
            "{path}"
        );
    }

    // Password guessing over XML-RPC: answered 429 by the front end once the budget is spent,
    // while visitors are served.
    let mut limited = 0;
    for _ in 0..10 {
        let guess = visitor.xmlrpc(&xmlrpc_call("wp.getUsersBlogs", "wrong", ""));
        match guess.status {
            429 => limited += 1,
            200 => assert!(guess.body.contains("faultCode"), "{}", guess.body),
            other => panic!("guess answered {other}: {}", guess.body),
        }
        assert_eq!(visitor.get("/hello-from-paddock/").status, 200);
    }
    assert!(limited >= 6, "{limited} of 10 guesses limited");
}
