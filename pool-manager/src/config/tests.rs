use std::path::Path;

use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    load_str(text, "test.toml", Path::new(EMBEDDED_BASE_DIR))
}

const MINIMAL: &str = r#"
[listeners.web]
kind = "http"
address = "127.0.0.1:0"

[sites.main]
root = "deploy/demo"
"#;

#[test]
fn embedded_default_is_valid() {
    let config = load_embedded_default().expect("embedded default");
    assert_eq!(config.frontend.listeners.len(), 3);
    assert_eq!(config.pools[0].name, "php");
    assert_eq!(config.pools[0].env["PHP_FCGI_CHILDREN"], "0");
}

#[test]
fn minimal_config_gets_defaults() {
    let config = load(MINIMAL).expect("valid");
    assert_eq!(
        config.frontend.limits.max_body_bytes,
        limits::DEFAULT_MAX_BODY
    );
    assert_eq!(config.frontend.sites[0].hosts, vec!["*"]);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\nworkerz = 3\n"
    );
    let error = load(&text).unwrap_err();
    assert_eq!(
        error.line,
        Some(text.lines().position(|l| l.starts_with("workerz")).unwrap() + 1)
    );
    assert!(error.key.ends_with("workerz"), "{error}");
    assert!(error.to_string().starts_with("test.toml:"), "{error}");
}

#[test]
fn wrong_type_names_the_key() {
    let text = MINIMAL.replace("address = \"127.0.0.1:0\"", "address = 8080");
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "listeners.web.address", "{error}");
    assert_eq!(error.line, Some(4));
}

#[test]
fn bad_size_names_the_key() {
    let text = format!("{MINIMAL}\n[limits]\nmax_body = \"lots\"\n");
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "limits.max_body", "{error}");
    assert!(error.message.contains("size"), "{error}");
}

#[test]
fn validation_errors_are_located() {
    let text = format!("{MINIMAL}\n[sites.main.scripts]\npool = \"nope\"\n");
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "sites.main.scripts.pool");
    assert_eq!(
        error.line,
        Some(text.lines().position(|l| l.starts_with("pool =")).unwrap() + 1)
    );
    assert!(error.message.contains("nope"));
}

#[test]
fn missing_root_is_an_error() {
    let error = load(&MINIMAL.replace("deploy/demo", "no/such/dir")).unwrap_err();
    assert_eq!(error.key, "sites.main.root");
    assert_eq!(error.line, Some(7));
}

#[test]
fn bad_address_and_duplicates() {
    let error = load(&MINIMAL.replace("127.0.0.1:0", "localhost")).unwrap_err();
    assert_eq!(error.key, "listeners.web.address");
    let twice =
        format!("{MINIMAL}\n[listeners.other]\nkind = \"http\"\naddress = \"127.0.0.1:7000\"\n")
            .replace("127.0.0.1:0", "127.0.0.1:7000");
    assert!(load(&twice)
        .unwrap_err()
        .message
        .contains("another listener"));
}

#[test]
fn syntax_error_has_a_line() {
    let error = load("[listeners.web\nkind = 1").unwrap_err();
    assert_eq!(error.line, Some(1));
}

#[test]
fn zero_workers_rejected() {
    let text = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\nworkers = 0\n"
    );
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "pools.php.workers");
}
