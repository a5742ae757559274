//! `.htaccess` files end to end, with real php-cgi: the files real applications ship (WordPress's
//! rewrites, MediaWiki's and phpMyAdmin's denials, a security plugin's uploads file, Drupal's
//! files directory), Basic auth, headers, redirects, failing closed, and edits that count from
//! the next request with no reload. The site has no front controller, so a pretty URL works only
//! when the `.htaccess` rewrite does.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::client::{Connection, Response};
use harness::{require_php_cgi, Paddock};
use serde_json::Value;

const ECHO: &str = r#"<?php
header('Content-Type: application/json');
echo json_encode([
    'script' => $_SERVER['SCRIPT_NAME'],
    'uri' => $_SERVER['REQUEST_URI'],
    'get' => $_GET,
    'auth' => $_SERVER['HTTP_AUTHORIZATION'] ?? null,
    'env' => $_SERVER['FROM_HTACCESS'] ?? null,
], JSON_UNESCAPED_SLASHES);
"#;
const EVIL: &str = "<?php echo 'EXECUTED';";
/// An error page that tells what it was run for.
const ERROR_PAGE: &str = r#"<?php
header('Content-Type: application/json');
header('X-Error-Page: shop');
$keys = ['REDIRECT_STATUS', 'REDIRECT_URL', 'REDIRECT_QUERY_STRING', 'REDIRECT_REQUEST_METHOD',
    'REQUEST_METHOD', 'REQUEST_URI', 'SCRIPT_NAME', 'CONTENT_LENGTH', 'HTTP_COOKIE'];
$server = [];
foreach ($keys as $key) { $server[$key] = $_SERVER[$key] ?? null; }
echo json_encode(['server' => $server, 'get' => $_GET, 'input' => file_get_contents('php://input')],
    JSON_UNESCAPED_SLASHES);
"#;

const WORDPRESS: &str = "# BEGIN WordPress
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
<IfModule mod_headers.c>
Header always set X-From-Htaccess \"root\"
</IfModule>
SetEnv FROM_HTACCESS yes
Redirect 301 /old-page /new-page
";

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let site = Self { dir };
        let htpasswd = site.dir.path().join("secret.htpasswd");
        let hash = Command::new("openssl")
            .args(["passwd", "-apr1", "sesame"])
            .output()
            .unwrap();
        fs::write(
            &htpasswd,
            format!("ali:{}", String::from_utf8(hash.stdout).unwrap()),
        )
        .unwrap();
        let files: Vec<(&str, String)> = vec![
            ("index.php", ECHO.into()),
            (".htaccess", WORDPRESS.into()),
            ("style.css", "body{}".into()),
            // MediaWiki's includes/.htaccess (2.4 style) and an older 2.2-style one.
            ("includes/.htaccess", "Require all denied\n".into()),
            ("includes/Setup.php", EVIL.into()),
            ("includes/notes.txt", "internal".into()),
            ("legacy/.htaccess", "Order deny,allow\nDeny from all\n".into()),
            ("legacy/old.txt", "internal".into()),
            // A security plugin's wp-content/uploads/.htaccess.
            ("uploads/.htaccess", "<Files *.php>\ndeny from all\n</Files>\n".into()),
            ("uploads/shell.php", EVIL.into()),
            ("uploads/pic.txt", "a picture".into()),
            // Drupal's sites/default/files/.htaccess.
            (
                "files/.htaccess",
                "SetHandler Drupal_Security_Do_Not_Remove_See_SA_2006_006\nOptions None\nOptions +FollowSymLinks\n<IfModule mod_php.c>\n  php_flag engine off\n</IfModule>\n".into(),
            ),
            ("files/upload.php", EVIL.into()),
            // phpMyAdmin-style setup/ behind a password.
            (
                "secret/.htaccess",
                format!(
                    "AuthType Basic\nAuthName \"Setup\"\nAuthUserFile {}\nRequire valid-user\n",
                    htpasswd.display()
                ),
            ),
            ("secret/index.php", ECHO.into()),
            // Backups closed by FilesMatch, and a file paddock cannot parse.
            (
                "data/.htaccess",
                "<FilesMatch \"\\.(bak|sql)$\">\nRequire all denied\n</FilesMatch>\n".into(),
            ),
            ("data/dump.sql", "secret rows".into()),
            ("data/readme.txt", "public".into()),
            ("broken/.htaccess", "<Files x>\nRequire all denied\n".into()),
            ("broken/page.txt", "unprotected?".into()),
            // Fail closed: a directive paddock does not know, inside a section that denies.
            (
                "strict/.htaccess",
                "<Files \"*.txt\">\nSomeUnknownDirective on\nRequire all denied\n</Files>\n".into(),
            ),
            ("strict/a.txt", "secret".into()),
            ("open/page.txt", "open".into()),
            // DirectoryIndex and ErrorDocument.
            ("docs/.htaccess", "RewriteEngine Off\nDirectoryIndex start.html\nErrorDocument 404 /docs/missing.html\nErrorDocument 403 \"Closed here\"\n<Files secret.txt>\nRequire all denied\n</Files>\n".into()),
            ("docs/start.html", "<p>start</p>".into()),
            ("docs/missing.html", "<p>our own 404</p>".into()),
            ("docs/secret.txt", "secret".into()),
            ("away/.htaccess", "RewriteEngine Off\nErrorDocument 404 https://example.test/lost\n".into()),
            // ErrorDocuments that are scripts; one names a script its directory closes.
            (
                "shop/.htaccess",
                "RewriteEngine Off\nErrorDocument 404 /shop/404.php?from=htaccess\n\
                 ErrorDocument 403 /shop/login.php\nErrorDocument 410 /includes/Setup.php\n\
                 <Files private.txt>\nRequire all denied\n</Files>\nRedirect gone /shop/old\n"
                    .into(),
            ),
            ("shop/404.php", ERROR_PAGE.into()),
            ("shop/login.php", "<?php header('Location: /login', true, 302);".into()),
            ("shop/private.txt", "secret".into()),
        ];
        for (name, content) in files {
            let path = site.root().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        site
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn config(&self, htaccess: bool) -> String {
        format!(
            r#"
[sites.test]
root = "{root}"
index = ["index.php"]
htaccess = {htaccess}

[sites.test.scripts]
pool = "php"

[pools.php]
mode = "prefork"
command = ["php-cgi"]
workers = 2
"#,
            root = self.root().display()
        )
    }

    fn start(&self) -> Paddock {
        require_php_cgi();
        Paddock::start(&self.config(true))
    }
}

fn get(paddock: &Paddock, path: &str, headers: &[(&str, &str)]) -> Response {
    Connection::open(paddock.http)
        .unwrap()
        .request("GET", path, headers, b"")
        .unwrap()
}

fn json(response: &Response) -> Value {
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_slice(&response.body).unwrap_or_else(|_| panic!("{}", response.text()))
}

fn write(path: &Path, text: &str) {
    // Written beside and renamed into place, as an editor or an application would.
    let next = path.with_extension("new");
    fs::write(&next, text).unwrap();
    fs::rename(next, path).unwrap();
}

#[test]
fn wordpress_rewrites_headers_env_and_redirects_come_from_its_htaccess() {
    let site = Site::new();
    let paddock = site.start();
    let pretty = get(
        &paddock,
        "/2024/hello-world/?x=1",
        &[("Authorization", "Bearer t")],
    );
    assert_eq!(pretty.header("x-from-htaccess"), Some("root"));
    let seen = json(&pretty);
    assert_eq!(seen["script"], "/index.php");
    assert_eq!(seen["uri"], "/2024/hello-world/?x=1");
    assert_eq!(seen["get"]["x"], "1");
    assert_eq!(seen["auth"], "Bearer t");
    assert_eq!(seen["env"], "yes");
    // An existing file is served as it is.
    assert_eq!(get(&paddock, "/style.css", &[]).text(), "body{}");
    let moved = get(&paddock, "/old-page", &[]);
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some("http://localhost/new-page"));
}

#[test]
fn the_directories_applications_close_stay_closed() {
    let site = Site::new();
    let paddock = site.start();
    for path in [
        "/includes/Setup.php",
        "/includes/notes.txt",
        "/includes/",
        "/%69ncludes/notes.txt",
        "/legacy/old.txt",
        "/uploads/shell.php",
        "/uploads/shell.php/x",
        "/data/dump.sql",
        "/strict/a.txt",
    ] {
        let response = get(&paddock, path, &[]);
        assert_eq!(response.status, 403, "{path}: {}", response.text());
        assert!(!response.text().contains("EXECUTED"), "{path}");
        assert!(!response.text().contains("secret"), "{path}");
    }
    assert_eq!(get(&paddock, "/uploads/pic.txt", &[]).text(), "a picture");
    assert_eq!(get(&paddock, "/data/readme.txt", &[]).text(), "public");
    // A file that does not parse closes its directory (Apache answers 500 too).
    assert_eq!(get(&paddock, "/broken/page.txt", &[]).status, 500);
    // Drupal's files directory: scripts are served as text, never run.
    let upload = get(&paddock, "/files/upload.php", &[]);
    assert_eq!(upload.status, 200);
    assert_eq!(upload.text(), EVIL);
    assert_eq!(upload.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn basic_auth_from_htaccess() {
    let site = Site::new();
    let paddock = site.start();
    let anonymous = get(&paddock, "/secret/", &[]);
    assert_eq!(anonymous.status, 401);
    assert!(anonymous
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Basic realm=\"Setup\"")));
    // ali:sesame
    let right = [("Authorization", "Basic YWxpOnNlc2FtZQ==")];
    assert_eq!(
        json(&get(&paddock, "/secret/", &right))["script"],
        "/secret/index.php"
    );
    let wrong = [("Authorization", "Basic YWxpOm5v")];
    assert_eq!(get(&paddock, "/secret/", &wrong).status, 401);
}

#[test]
fn edits_count_from_the_next_request_without_a_reload() {
    let site = Site::new();
    let paddock = site.start();
    let file = site.root().join("open/.htaccess");
    assert_eq!(get(&paddock, "/open/page.txt", &[]).text(), "open");
    write(&file, "Require all denied\n");
    assert_eq!(get(&paddock, "/open/page.txt", &[]).status, 403);
    write(&file, "Require all granted\nHeader set X-Edited yes\n");
    let page = get(&paddock, "/open/page.txt", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-edited"), Some("yes"));
    // Edited in place (same inode), as `echo >>` or an FTP upload would.
    fs::write(&file, "Require all denied\n").unwrap();
    assert_eq!(get(&paddock, "/open/page.txt", &[]).status, 403);
    fs::remove_file(&file).unwrap();
    let page = get(&paddock, "/open/page.txt", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-edited"), None);
    // A new file in a directory the front end already knows has none.
    fs::write(&file, "Require all denied\n").unwrap();
    assert_eq!(get(&paddock, "/open/page.txt", &[]).status, 403);
    assert!(
        !paddock.log().contains("configuration applied"),
        "no reload happened"
    );
}

#[test]
fn a_site_with_htaccess_off_ignores_the_files() {
    let site = Site::new();
    require_php_cgi();
    let paddock = Paddock::start(&site.config(false));
    assert_eq!(get(&paddock, "/includes/notes.txt", &[]).text(), "internal");
    // No rewrite: without a front controller the pretty URL is not found.
    assert_eq!(get(&paddock, "/2024/hello-world/", &[]).status, 404);
    // The safe defaults still hold.
    assert_eq!(get(&paddock, "/.htaccess", &[]).status, 404);
}

#[test]
fn the_config_check_lists_every_htaccess_and_what_it_does_not_honour() {
    let site = Site::new();
    fs::write(
        site.root().join("open/.htaccess"),
        "ExpiresActive On\nFrobnicate yes\n",
    )
    .unwrap();
    let config = format!("{}\n{}", harness::LISTENERS, site.config(true));
    let file = site.dir.path().join("site.toml");
    fs::write(&file, config).unwrap();
    let out = Command::new(harness::paddock_bin())
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    let open = site.root().join("open/.htaccess");
    for expected in [
        format!("site test: {}", site.root().join(".htaccess").display()),
        format!(
            "{}:1: ignored (no effect on what is served): ExpiresActive On",
            open.display()
        ),
        format!("{}:2: not honoured: Frobnicate yes", open.display()),
        format!(
            "{}:1: closes the directory (500)",
            site.root().join("broken/.htaccess").display()
        ),
    ] {
        assert!(
            report.contains(&expected),
            "missing {expected:?} in\n{report}"
        );
    }
}

#[test]
fn directory_index_and_error_documents_from_htaccess() {
    let site = Site::new();
    let paddock = site.start();
    assert_eq!(get(&paddock, "/docs/", &[]).text(), "<p>start</p>");
    let missing = get(&paddock, "/docs/nothing.txt", &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), "<p>our own 404</p>");
    let closed = get(&paddock, "/docs/secret.txt", &[]);
    assert_eq!(closed.status, 403);
    assert_eq!(closed.text(), "Closed here");
    fs::create_dir_all(site.root().join("away")).unwrap();
    let away = get(&paddock, "/away/nothing", &[]);
    assert_eq!(away.status, 302);
    assert_eq!(away.header("location"), Some("https://example.test/lost"));
}

#[test]
fn an_error_document_that_names_a_script_runs_it_as_apache_does() {
    let site = Site::new();
    let paddock = site.start();
    let mut connection = Connection::open(paddock.http).unwrap();

    // The script answers the 404 with the error's status, told what the client asked for.
    let missing = connection
        .request("GET", "/shop/nothing?x=1", &[("Cookie", "cart=7")], b"")
        .unwrap();
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(missing.header("x-error-page"), Some("shop"));
    let page: Value = serde_json::from_slice(&missing.body).unwrap();
    let server = &page["server"];
    assert_eq!(server["REDIRECT_STATUS"], "404");
    assert_eq!(server["REDIRECT_URL"], "/shop/nothing");
    assert_eq!(server["REDIRECT_QUERY_STRING"], "x=1");
    assert_eq!(server["REDIRECT_REQUEST_METHOD"], "GET");
    assert_eq!(server["REQUEST_URI"], "/shop/nothing?x=1");
    assert_eq!(server["SCRIPT_NAME"], "/shop/404.php");
    assert_eq!(server["HTTP_COOKIE"], "cart=7");
    assert_eq!(page["get"]["from"], "htaccess");

    // A POST's error page is a GET without the body; the body is never read as a next request.
    let posted = connection
        .request(
            "POST",
            "/shop/nothing",
            &[],
            b"GET /smuggled HTTP/1.1\r\n\r\n",
        )
        .unwrap();
    assert_eq!(posted.status, 404);
    let page: Value = serde_json::from_slice(&posted.body).unwrap();
    assert_eq!(page["server"]["REQUEST_METHOD"], "GET");
    assert_eq!(page["server"]["REDIRECT_REQUEST_METHOD"], "POST");
    assert_eq!(page["input"], "");
    assert_eq!(posted.header("connection"), Some("close"));

    // A script that chooses its own status is obeyed: the 403 page sends the visitor to log in.
    let refused = get(&paddock, "/shop/private.txt", &[]);
    assert_eq!(refused.status, 302, "{}", refused.text());
    assert_eq!(refused.header("location"), Some("/login"));

    // A page the rules close is not run: the client gets the error itself.
    let gone = get(&paddock, "/shop/old", &[]);
    assert_eq!(gone.status, 410);
    assert!(!gone.text().contains("EXECUTED"), "{}", gone.text());
}
