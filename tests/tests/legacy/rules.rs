//! A site's native rules end to end, with real php-cgi behind them: deny (prefix, glob, regex;
//! however the path is spelled, and for paths that reach a script through PATH_INFO or a
//! rewrite), no-scripts paths, rewrites (internal with captures, conditions and query append;
//! external redirects), response headers, basic auth against an htpasswd file that changes,
//! client addresses, and a per-client rate limit that keeps requests away from the worker. Plus
//! the safe defaults every site gets.

use std::fs;
use std::process::Command;

use harness::client::{Connection, Response};
use harness::{paddock_bin, php_site, require_php_cgi, Paddock, LISTENERS};
use serde_json::Value;

/// What the application sees of a request.
const ECHO: &str = r#"<?php
header('Content-Type: application/json');
header('X-Secret: from-php');
echo json_encode([
    'script' => $_SERVER['SCRIPT_NAME'],
    'uri' => $_SERVER['REQUEST_URI'],
    'query' => $_SERVER['QUERY_STRING'],
    'path_info' => $_SERVER['PATH_INFO'] ?? '',
    'proxy' => $_SERVER['HTTP_PROXY'] ?? null,
    'get' => $_GET,
], JSON_UNESCAPED_SLASHES);
"#;

/// A script that must never run: it would say so.
const EVIL: &str = "<?php echo 'EXECUTED';";

/// Counts the requests that reach it, so a test can tell that a refused request never did.
const COUNTED: &str = r#"<?php
file_put_contents(__DIR__ . '/hits.txt', "hit\n", FILE_APPEND);
echo "ok";
"#;

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let files: &[(&str, &str)] = &[
            ("index.php", ECHO),
            ("w/index.php", ECHO),
            ("w/maintenance.php", EVIL),
            ("wp-login.php", COUNTED),
            ("wp-config.php", "<?php // DB_PASSWORD secret"),
            ("wp-config.php.bak", "<?php // DB_PASSWORD secret"),
            ("index.php~", "<?php // old"),
            (".git/config", "[core]"),
            ("private/notes.txt", "secret notes"),
            ("debug.log", "PHP Warning: secret"),
            ("vendor/lib/tool.php", EVIL),
            ("uploads/evil.php", EVIL),
            ("images/evil.php", EVIL),
            ("images/pic.txt", "a picture"),
            ("blog/real.txt", "a real file"),
            ("static/site.css", "body{}"),
            ("admin/index.php", ECHO),
            ("setup/index.php", ECHO),
            ("local/index.php", ECHO),
        ];
        for (name, content) in files {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        let site = Self { dir };
        site.set_password("alice", "wonderland");
        site
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    fn htpasswd(&self) -> std::path::PathBuf {
        self.dir.path().join("admins.htpasswd")
    }

    /// Writes the htpasswd file with one apr1 entry made by `openssl passwd -apr1`.
    fn set_password(&self, user: &str, password: &str) {
        let out = Command::new("openssl")
            .args(["passwd", "-apr1", password])
            .output()
            .expect("openssl (apt-get install openssl)");
        assert!(out.status.success());
        let hash = String::from_utf8(out.stdout).unwrap();
        // Written beside and renamed into place, as an admin's tool would.
        let next = self.dir.path().join("admins.htpasswd.new");
        fs::write(&next, format!("{user}:{}\n", hash.trim())).unwrap();
        fs::rename(next, self.htpasswd()).unwrap();
    }

    /// The harness's PHP site over this root, and the rules under test.
    fn config(&self) -> String {
        let rules = format!(
            r#"
[[sites.test.deny]]
prefix = "/private/"
status = 404

[[sites.test.deny]]
regex = '\.log$'

[[sites.test.deny]]
glob = "/vendor/**/*.php"

[[sites.test.deny]]
prefix = "/w/maintenance.php"

[[sites.test.no_scripts]]
prefix = "/uploads/"

[[sites.test.no_scripts]]
prefix = "/images/"
action = "static"

[[sites.test.rewrite]]
pattern = "^/wiki/(.*)$"
to = "/w/index.php?title=$1"
query = "append"

[[sites.test.rewrite]]
pattern = "^/old/(.*)$"
to = "/new/$1"
redirect = 301

[[sites.test.rewrite]]
pattern = "^/blog/(.+)$"
to = "/index.php?post=$1"
when = ["not_file", "not_dir"]

[[sites.test.rewrite]]
pattern = "^/maint$"
to = "/w/maintenance.php"

[[sites.test.headers]]
prefix = "/static/"
set = {{ "X-Frame-Options" = "DENY" }}

[[sites.test.headers]]
prefix = "/"
unset = ["X-Secret"]

[[sites.test.auth]]
prefix = "/admin/"
htpasswd = "{htpasswd}"
realm = "Admins"

[[sites.test.clients]]
prefix = "/setup/"
allow = ["10.0.0.0/8"]

[[sites.test.clients]]
prefix = "/local/"
allow = ["127.0.0.0/8", "::1"]

[[sites.test.rate_limit]]
prefix = "/wp-login.php"
rate = "1/m"
burst = 3
methods = ["POST"]
"#,
            htpasswd = self.htpasswd().display(),
        );
        php_site(&self.root(), 2, "") + &rules
    }

    fn start(&self) -> Paddock {
        require_php_cgi();
        Paddock::start(&self.config())
    }
}

fn get(paddock: &Paddock, path: &str) -> Response {
    get_with(paddock, path, &[])
}

fn get_with(paddock: &Paddock, path: &str, headers: &[(&str, &str)]) -> Response {
    Connection::open(paddock.http)
        .unwrap()
        .request("GET", path, headers, b"")
        .unwrap()
}

fn seen(response: &Response) -> Value {
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.text()))
}

fn basic(user: &str, password: &str) -> String {
    let out = Command::new("openssl")
        .args(["base64", "-A"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{user}:{password}").as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    format!("Basic {}", String::from_utf8(out.stdout).unwrap().trim())
}

#[test]
fn denied_paths_stay_denied_however_they_are_spelled_or_reached() {
    let site = Site::new();
    let paddock = site.start();
    for path in [
        "/private/notes.txt",
        "/%70rivate/notes.txt",
        "//private//notes.txt",
        "/static/../private/notes.txt",
        "/private",
    ] {
        let response = get(&paddock, path);
        assert_eq!(response.status, 404, "{path}: {}", response.text());
        assert!(!response.text().contains("secret"), "{path}");
    }
    for path in [
        "/debug.log",
        "/debug%2elog",
        "/vendor/lib/tool.php",
        // Through PATH_INFO: the script is still the denied one.
        "/vendor/lib/tool.php/extra",
        "/w/maintenance.php",
        // Through a rewrite to a denied script.
        "/maint",
    ] {
        let response = get(&paddock, path);
        assert_eq!(response.status, 403, "{path}: {}", response.text());
        assert!(!response.text().contains("EXECUTED"), "{path}");
        assert!(!response.text().contains("secret"), "{path}");
    }
    // What is not denied still works.
    assert_eq!(seen(&get(&paddock, "/index.php"))["script"], "/index.php");
}

#[test]
fn no_scripts_paths_never_run_a_script() {
    let site = Site::new();
    let paddock = site.start();
    for path in [
        "/uploads/evil.php",
        "/uploads/evil.php/x",
        "/uploads/%65vil.php",
    ] {
        let response = get(&paddock, path);
        assert_eq!(response.status, 403, "{path}: {}", response.text());
        assert!(!response.text().contains("EXECUTED"), "{path}");
    }
    // `static`: the source as plain text, never sniffed.
    let response = get(&paddock, "/images/evil.php");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), EVIL);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(get(&paddock, "/images/evil.php/x").status, 404);
    assert_eq!(get(&paddock, "/images/pic.txt").text(), "a picture");
}

#[test]
fn rewrites_capture_append_the_query_check_files_and_redirect() {
    let site = Site::new();
    let paddock = site.start();
    let wiki = seen(&get(&paddock, "/wiki/Main_Page?action=edit"));
    assert_eq!(wiki["script"], "/w/index.php");
    assert_eq!(wiki["get"]["title"], "Main_Page");
    assert_eq!(wiki["get"]["action"], "edit");
    assert_eq!(wiki["query"], "title=Main_Page&action=edit");
    // The application still sees what the client asked for.
    assert_eq!(wiki["uri"], "/wiki/Main_Page?action=edit");

    let blog = seen(&get(&paddock, "/blog/hello-world"));
    assert_eq!(blog["script"], "/index.php");
    assert_eq!(blog["get"]["post"], "hello-world");
    // `when = ["not_file", …]`: an existing file is served as it is.
    assert_eq!(get(&paddock, "/blog/real.txt").text(), "a real file");

    let moved = get(&paddock, "/old/a%20b?x=1");
    assert_eq!(moved.status, 301);
    assert_eq!(
        moved.header("location"),
        Some("http://localhost/new/a%20b?x=1")
    );
}

#[test]
fn response_headers_are_set_and_removed_by_path() {
    let site = Site::new();
    let paddock = site.start();
    let css = get(&paddock, "/static/site.css");
    assert_eq!(css.status, 200);
    assert_eq!(css.header("x-frame-options"), Some("DENY"));
    let php = get(&paddock, "/index.php");
    assert_eq!(php.status, 200);
    assert_eq!(php.header("x-secret"), None, "unset for every path");
    assert_eq!(php.header("x-frame-options"), None);
}

#[test]
fn basic_auth_follows_the_htpasswd_file_as_it_changes() {
    let site = Site::new();
    let paddock = site.start();
    let anonymous = get(&paddock, "/admin/");
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some("Basic realm=\"Admins\", charset=\"UTF-8\"")
    );
    let wrong = get_with(
        &paddock,
        "/admin/",
        &[("Authorization", &basic("alice", "x"))],
    );
    assert_eq!(wrong.status, 401);
    let right = basic("alice", "wonderland");
    assert_eq!(
        seen(&get_with(&paddock, "/admin/", &[("Authorization", &right)]))["script"],
        "/admin/index.php"
    );
    // A new password takes effect on the next request: no reload.
    site.set_password("alice", "looking-glass");
    assert_eq!(
        get_with(&paddock, "/admin/", &[("Authorization", &right)]).status,
        401
    );
    let new = basic("alice", "looking-glass");
    assert_eq!(
        get_with(&paddock, "/admin/", &[("Authorization", &new)]).status,
        200
    );
}

#[test]
fn client_address_rules() {
    let site = Site::new();
    let paddock = site.start();
    assert_eq!(get(&paddock, "/setup/").status, 403);
    assert_eq!(
        seen(&get(&paddock, "/local/"))["script"],
        "/local/index.php"
    );
}

#[test]
fn a_rate_limited_client_gets_429_and_never_reaches_a_worker() {
    let site = Site::new();
    let paddock = site.start();
    let mut conn = Connection::open(paddock.http).unwrap();
    for attempt in 0..3 {
        let response = conn
            .request("POST", "/wp-login.php", &[], b"log=a&pwd=b")
            .unwrap();
        assert_eq!(
            response.status,
            200,
            "attempt {attempt}: {}",
            response.text()
        );
    }
    for _ in 0..5 {
        // A refusal comes before the body is read: the connection closes after it, and the
        // client comes back on a new one.
        let limited = Connection::open(paddock.http)
            .unwrap()
            .request("POST", "/wp-login.php", &[], b"log=a&pwd=b")
            .unwrap();
        assert_eq!(limited.status, 429, "{}", limited.text());
        assert_eq!(limited.header("connection"), Some("close"));
        let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    // Other methods are not limited by this rule; each one reaches the worker.
    assert_eq!(get(&paddock, "/wp-login.php").status, 200);
    let hits = fs::read_to_string(site.root().join("hits.txt")).unwrap();
    assert_eq!(hits.lines().count(), 4, "3 POSTs and 1 GET reached PHP");
}

#[test]
fn every_site_hides_backups_and_vcs_files_and_refuses_control_characters() {
    let site = Site::new();
    let paddock = site.start();
    for path in [
        "/wp-config.php.bak",
        "/index.php~",
        "/.git/config",
        "/.git/",
    ] {
        let response = get(&paddock, path);
        assert_eq!(response.status, 404, "{path}: {}", response.text());
        assert!(!response.text().contains("secret"), "{path}");
    }
    for path in ["/index.php%0a", "/x%0d%0a.php", "/index.php/a%0Ab"] {
        assert_eq!(get(&paddock, path).status, 400, "{path}");
    }
    // httpoxy: a Proxy header never becomes HTTP_PROXY.
    let echo = seen(&get_with(
        &paddock,
        "/index.php",
        &[("Proxy", "http://evil.test")],
    ));
    assert_eq!(echo["proxy"], Value::Null);
}

#[test]
fn a_bad_rule_fails_the_config_check_with_line_and_key() {
    let site = Site::new();
    let config = format!(
        "{LISTENERS}\n{}\n[[sites.test.deny]]\nregex = \"(unclosed\"\n",
        site.config()
    );
    let file = site.dir.path().join("bad.toml");
    fs::write(&file, &config).unwrap();
    let out = Command::new(paddock_bin())
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    let line = config
        .lines()
        .position(|l| l.contains("(unclosed"))
        .unwrap();
    // The error points at the rule's table header or its key.
    assert!(
        message.contains(&format!("bad.toml:{line}:"))
            || message.contains(&format!("bad.toml:{}:", line + 1)),
        "{message}"
    );
    assert!(message.contains("sites.test.deny[4]"), "{message}");
    assert!(message.contains("unclosed"), "{message}");
}

/// Every recipe in docs/legacy-apps.md is a valid configuration (its patterns compile).
#[test]
fn the_legacy_app_recipes_pass_the_config_check() {
    let doc = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/legacy-apps.md"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    fs::write(&htpasswd, "admin:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n").unwrap();
    let mut checked = 0;
    for block in doc.split("```toml").skip(1) {
        let block = block.split("```").next().unwrap();
        let name = block
            .split("sites.")
            .nth(1)
            .and_then(|rest| rest.split('.').next())
            .expect("a recipe names its site");
        let scripts = if block.contains(&format!("[sites.{name}.scripts]")) {
            String::new()
        } else {
            format!("[sites.{name}.scripts]\npool = \"php\"\nfront_controller = \"/index.php\"\n")
        };
        let block = block.replace(
            "/etc/phpmyadmin/htpasswd.setup",
            &htpasswd.display().to_string(),
        );
        let config = format!(
            "{LISTENERS}\n[sites.{name}]\nroot = \"{root}\"\n{scripts}\n{block}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\n",
            root = dir.path().display()
        );
        let file = dir.path().join(format!("{name}.toml"));
        fs::write(&file, &config).unwrap();
        let out = Command::new(paddock_bin())
            .args(["check", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "recipe for {name}: {}\n{config}",
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert_eq!(
        checked, 6,
        "WordPress, MediaWiki, phpMyAdmin, Drupal, Nextcloud, Joomla"
    );
}
