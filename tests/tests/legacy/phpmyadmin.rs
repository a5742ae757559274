//! phpMyAdmin (Debian's `phpmyadmin` package, copied into the test's directory) against a
//! MariaDB of the test's own: a user logs in through the cookie login form and browses a table,
//! while the site's rules close what Debian's Apache configuration closes.
//!
//! The package ships no `.htaccess` (`find /usr/share/phpmyadmin -name .htaccess` is empty):
//! Debian protects it with /etc/phpmyadmin/apache.conf, `<Directory …/templates>` and
//! `<Directory …/libraries>` with `Require all denied`. The site mirrors that with native
//! rules, adds the temporary directory phpMyAdmin uses when it lives in the document root (as
//! upstream's layout has it), and puts `/setup/` behind Basic auth as Debian's configuration did
//! while it shipped the setup script (`htpasswd.setup`); Debian 12's package ships no `setup/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::client::{Connection, Response};
use harness::mariadb::MariaDb;
use harness::{require_php_cgi, Paddock};

use super::browser::{form_value, Browser};

const PACKAGE: &str = "/usr/share/phpmyadmin";
/// 32 bytes, as phpMyAdmin 5.2 wants for its cookie encryption.
const BLOWFISH_SECRET: &str = "paddock-test-blowfish-secret-32b";

fn config_inc(socket: &Path, root: &Path) -> String {
    format!(
        r#"<?php
$cfg['blowfish_secret'] = '{BLOWFISH_SECRET}';
$cfg['Servers'][1]['auth_type'] = 'cookie';
$cfg['Servers'][1]['host'] = 'localhost';
$cfg['Servers'][1]['socket'] = '{socket}';
$cfg['TempDir'] = '{tmp}';
$cfg['VersionCheck'] = false;
"#,
        socket = socket.display(),
        tmp = root.join("tmp").display()
    )
}

fn site_config(root: &Path, htpasswd: &Path) -> String {
    format!(
        r#"
[sites.pma]
root = "{root}"
index = ["index.php"]

[sites.pma.scripts]
pool = "php"

# /etc/phpmyadmin/apache.conf: templates/ and libraries/ `Require all denied`; and the
# temporary directory (twig cache, uploads) that upstream's layout keeps in the root.
[[sites.pma.deny]]
regex = '^/(libraries|templates|tmp)(/|$)'

[[sites.pma.auth]]
prefix = "/setup/"
htpasswd = "{htpasswd}"
realm = "phpMyAdmin Setup"

[pools.php]
mode = "prefork"
command = ["php-cgi"]
workers = 4
"#,
        root = root.display(),
        htpasswd = htpasswd.display()
    )
}

struct Install {
    db: MariaDb,
    dir: tempfile::TempDir,
    paddock: Paddock,
}

impl Install {
    fn root(&self) -> PathBuf {
        self.dir.path().join("phpmyadmin")
    }

    fn raw(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        Connection::open(self.paddock.http)
            .unwrap()
            .request("GET", path, headers, b"")
            .unwrap()
    }
}

fn install() -> Install {
    require_php_cgi();
    assert!(
        Path::new(PACKAGE).join("index.php").exists(),
        "apt-get install phpmyadmin (scripts/test.sh installs it)"
    );
    let db = MariaDb::start();
    db.create_database("paddock");
    db.sql(
        "CREATE TABLE paddock.ponies (id INT PRIMARY KEY, name VARCHAR(40)); \
         INSERT INTO paddock.ponies VALUES (1, 'Shetland Sue');",
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("phpmyadmin");
    // Self-contained: Debian links its JavaScript libraries from /usr/share/javascript.
    let copied = Command::new("cp")
        .arg("-aL")
        .arg(PACKAGE)
        .arg(&root)
        .status()
        .unwrap();
    assert!(copied.success());
    // Debian points phpMyAdmin at /etc/phpmyadmin and /var/lib/phpmyadmin in
    // libraries/vendor_config.php (the file meant for distributors); the copy gets upstream's
    // layout: config.inc.php and tmp/ in its own directory.
    let vendor = root.join("libraries/vendor_config.php");
    let text = fs::read_to_string(&vendor).unwrap();
    let text = text
        .replace(
            "'configFile' => '/etc/phpmyadmin/config.inc.php'",
            "'configFile' => ROOT_PATH . 'config.inc.php'",
        )
        .replace(
            "'tempDir' => '/var/lib/phpmyadmin/tmp/'",
            "'tempDir' => ROOT_PATH . 'tmp' . DIRECTORY_SEPARATOR",
        );
    assert!(text.contains("ROOT_PATH . 'config.inc.php'"), "{text}");
    fs::write(&vendor, text).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::write(root.join("config.inc.php"), config_inc(&db.socket(), &root)).unwrap();
    // The setup script's password file, as `htpasswd` (apr1) writes it.
    let hash = Command::new("openssl")
        .args(["passwd", "-apr1", "setup-secret"])
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(hash.status.success());
    let htpasswd = dir.path().join("htpasswd.setup");
    fs::write(
        &htpasswd,
        format!("admin:{}", String::from_utf8_lossy(&hash.stdout)),
    )
    .unwrap();
    let paddock = Paddock::start(&site_config(&root, &htpasswd));
    Install { db, dir, paddock }
}

#[test]
fn phpmyadmin_logs_in_browses_and_stays_protected() {
    let pma = install();
    let user = Browser::new(&pma.paddock, pma.dir.path(), "user");

    // The cookie login form, with its token and session.
    let form = user.get("/");
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("id=\"login_form\""), "{}", form.body);
    let token = form_value(&form.body, "token").expect("the login form's token");
    let session = form_value(&form.body, "set_session").expect("the login form's session");
    let login = user.post(
        "/index.php?route=/",
        &[
            ("set_session", &session),
            ("pma_username", "paddock"),
            ("pma_password", "paddock"),
            ("server", "1"),
            ("token", &token),
        ],
    );
    assert_eq!(login.status, 302, "{}", login.body);
    let home = user.get("/index.php?route=/");
    assert_eq!(home.status, 200);
    assert!(
        !home.body.contains("id=\"login_form\""),
        "still the login form"
    );
    assert!(
        home.body.contains("Localhost via UNIX socket"),
        "{}",
        home.body
    );

    // Browse the table: the row is there.
    let browse = user.get("/index.php?route=/sql&db=paddock&table=ponies&pos=0");
    assert_eq!(browse.status, 200, "{}", browse.body);
    assert!(browse.body.contains("Shetland Sue"), "{}", browse.body);

    // A query from the SQL box (an AJAX POST with the session's token) reaches the database.
    let token = form_value(&home.body, "token").expect("the session's token");
    let inserted = user.post(
        "/index.php?route=/sql",
        &[
            ("token", &token),
            ("server", "1"),
            ("db", "paddock"),
            ("sql_query", "INSERT INTO ponies VALUES (2, 'Dartmoor Dan')"),
            ("ajax_request", "true"),
        ],
    );
    assert_eq!(inserted.status, 200, "{}", inserted.body);
    assert!(
        inserted.body.contains("1 row inserted"),
        "{}",
        inserted.body
    );
    assert_eq!(
        pma.db
            .sql("SELECT name FROM paddock.ponies WHERE id = 2")
            .trim(),
        "Dartmoor Dan"
    );
    let browse = user.get("/index.php?route=/sql&db=paddock&table=ponies&pos=0");
    assert!(browse.body.contains("Dartmoor Dan"), "{}", browse.body);

    // Log out: the next page is the login form again.
    let out = user.post("/index.php?route=/logout", &[("token", &token)]);
    assert_eq!(out.status, 302, "{}", out.body);
    let after = user.get("/index.php?route=/");
    assert!(after.body.contains("id=\"login_form\""), "{}", after.body);
    assert!(!after.body.contains("Dartmoor Dan"));

    // A wrong password is refused by MariaDB, through phpMyAdmin.
    let stranger = Browser::new(&pma.paddock, pma.dir.path(), "stranger");
    let form = stranger.get("/");
    let refused = stranger.post(
        "/index.php?route=/",
        &[
            (
                "set_session",
                &form_value(&form.body, "set_session").unwrap(),
            ),
            ("pma_username", "paddock"),
            ("pma_password", "wrong"),
            ("server", "1"),
            ("token", &form_value(&form.body, "token").unwrap()),
        ],
    );
    let after = stranger.get(if refused.status == 302 {
        "/index.php?route=/"
    } else {
        "/"
    });
    assert!(!after.body.contains("Shetland Sue"));
    assert!(after.body.contains("id=\"login_form\""), "{}", after.body);

    // What Debian's Apache configuration closes, closed: scripts are never run there and
    // templates and the temporary directory (with the twig cache phpMyAdmin just wrote) never
    // served.
    let twig_cache = pma.root().join("tmp/twig");
    assert!(twig_cache.is_dir(), "phpMyAdmin's twig cache in tmp/");
    fs::write(pma.root().join("tmp/secret.txt"), "secret").unwrap();
    for path in [
        "/libraries/vendor_config.php",
        "/libraries/config.default.php",
        "/libraries/classes/Config.php",
        "/templates/login/form.twig",
        "/templates/",
        "/tmp/secret.txt",
        "/tmp/twig/",
        // However the path is written.
        "/%6cibraries/vendor_config.php",
        "//templates/login/form.twig",
        "/js/../libraries/vendor_config.php",
    ] {
        let page = pma.raw(path, &[]);
        assert_eq!(page.status, 403, "{path}");
        assert!(!page.text().contains("secret"), "{path}");
    }
    // The setup script's place asks for a password first; with it, there is nothing there
    // (Debian 12's package does not ship setup/).
    let setup = pma.raw("/setup/", &[]);
    assert_eq!(setup.status, 401);
    let challenge = setup.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Basic realm=\"phpMyAdmin Setup\""),
        "{challenge}"
    );
    let wrong = pma.raw(
        "/setup/index.php",
        &[("Authorization", "Basic YWRtaW46d3Jvbmc=")],
    );
    assert_eq!(wrong.status, 401);
    // admin:setup-secret
    let right = pma.raw(
        "/setup/",
        &[("Authorization", "Basic YWRtaW46c2V0dXAtc2VjcmV0")],
    );
    assert_eq!(right.status, 404);
    // The rest of the application is served: its scripts, its static files.
    let script = pma.raw("/js/dist/functions.js", &[]);
    assert_eq!(script.status, 200);
    let logo = pma.raw("/themes/pmahomme/img/logo_right.png", &[]);
    assert_eq!(logo.status, 200);
    assert_eq!(logo.header("content-type"), Some("image/png"));
}
