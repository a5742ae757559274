//! `paddock check`: exit 0 on a valid config; non-zero naming file, line and key otherwise.

use std::process::Command;

use harness::{paddock_bin, test_site};

fn check(config: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.toml");
    std::fs::write(&path, config).unwrap();
    let output = Command::new(paddock_bin())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).replace(path.to_str().unwrap(), "site.toml"),
    )
}

fn valid() -> String {
    format!(
        r#"[listeners.web]
kind = "http"
address = "127.0.0.1:8080"

[sites.main]
root = "{}"

[sites.main.scripts]
pool = "php"
front_controller = "/index.php"

[pools.php]
mode = "prefork"
command = ["php-cgi"]
workers = 2
"#,
        test_site().display()
    )
}

#[test]
fn valid_config_passes() {
    let (ok, out, err) = check(&valid());
    assert!(ok, "{err}");
    assert!(out.contains("configuration is valid"), "{out}");
}

#[test]
fn embedded_default_passes() {
    let output = Command::new(paddock_bin()).arg("check").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Each case: a change to the valid config, and the `file:line: key` the error must name.
#[test]
fn invalid_configs_name_file_line_and_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "workers = 2",
            "workers = 2\nworkerz = 3",
            "site.toml:16: key `pools.php.workerz`",
        ),
        (
            "workers = 2",
            "workers = 0",
            "site.toml:15: key `pools.php.workers`",
        ),
        (
            "workers = 2",
            "workers = \"two\"",
            "site.toml:15: key `pools.php.workers`",
        ),
        (
            "address = \"127.0.0.1:8080\"",
            "address = \"localhost\"",
            "site.toml:3: key `listeners.web.address`",
        ),
        (
            "kind = \"http\"",
            "kind = \"gopher\"",
            "site.toml:2: key `listeners.web.kind`",
        ),
        (
            "pool = \"php\"",
            "pool = \"python\"",
            "site.toml:9: key `sites.main.scripts.pool`",
        ),
        (
            "mode = \"prefork\"",
            "mode = \"forking\"",
            "site.toml:13: key `pools.php.mode`",
        ),
        (
            "front_controller = \"/index.php\"",
            "front_controller = \"index\"",
            "site.toml:10: key `sites.main.scripts.front_controller`",
        ),
        (
            "[sites.main]\n",
            "[sites.main]\ncolour = \"blue\"\n",
            "site.toml:6: key `sites.main.colour`",
        ),
    ];
    for (from, to, expected) in cases {
        let config = valid().replacen(from, to, 1);
        assert_ne!(config, valid(), "case {to:?} changed nothing");
        let (ok, _, err) = check(&config);
        assert!(!ok, "{to:?} was accepted");
        assert!(
            err.contains(expected),
            "{to:?}: expected {expected:?} in:\n{err}"
        );
    }
}

#[test]
fn missing_root_and_file_are_reported() {
    let (ok, _, err) = check(&valid().replace(test_site().to_str().unwrap(), "/no/such/root"));
    assert!(!ok);
    assert!(
        err.contains("key `sites.main.root`") && err.contains("/no/such/root"),
        "{err}"
    );
    let (ok, _, err) = check("[listeners.web\n");
    assert!(!ok);
    assert!(err.contains("site.toml:1"), "{err}");
}
