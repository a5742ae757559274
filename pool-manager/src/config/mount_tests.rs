//! Config tests for `[sites.NAME.mounts.MOUNT]`.

use std::path::Path;

use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    load_str(text, "mounts.toml", Path::new(EMBEDDED_BASE_DIR))
}

fn with_mounts(mounts: &str) -> String {
    format!(
        r#"
[listeners.web]
kind = "http"
address = "127.0.0.1:0"

[pools.app]
mode = "threaded"
command = ["/usr/bin/python3", "app.py"]
threads = 8

[sites.main]
root = "deploy/demo"
{mounts}"#
    )
}

#[test]
fn mounts_are_read_normalised_and_longest_first() {
    let config = load(&with_mounts(
        r#"
[sites.main.mounts.site]
prefix = "/"
pool = "app"
static_first = true

[sites.main.mounts.api]
prefix = "/api/v1/"
pool = "app"
script_filename = "/srv/app/wsgi.py"
unbuffered = ["/api/v1/events"]
compress = false
"#,
    ))
    .unwrap();
    let mounts = &config.frontend.sites[0].mounts;
    assert_eq!(mounts.len(), 2);
    assert_eq!(mounts[0].prefix, "/api/v1");
    assert_eq!(
        mounts[0].script_filename.as_deref(),
        Some(Path::new("/srv/app/wsgi.py"))
    );
    assert_eq!(mounts[0].unbuffered, ["/api/v1/events"]);
    assert!(!mounts[0].compress && !mounts[0].static_first);
    assert_eq!(mounts[1].prefix, "");
    assert!(mounts[1].static_first && mounts[1].compress);
    assert_eq!(mounts[1].script_filename, None);
    // The threaded worker is told how many requests it gets at once.
    assert_eq!(config.pools[0].env["PADDOCK_THREADS"], "8");
}

#[test]
fn bad_mounts_name_their_file_line_and_key() {
    for (mount, key, message) in [
        (
            "prefix = \"app\"\npool = \"app\"",
            "sites.main.mounts.m.prefix",
            "not a URL path prefix",
        ),
        (
            "prefix = \"/a/../b\"\npool = \"app\"",
            "sites.main.mounts.m.prefix",
            "not a URL path prefix",
        ),
        (
            "prefix = \"/app\"\npool = \"nope\"",
            "sites.main.mounts.m.pool",
            "no pool named \"nope\"",
        ),
        (
            "prefix = \"/app\"\npool = \"app\"\nunbuffered = [\"events\"]",
            "sites.main.mounts.m.unbuffered",
            "starting with /",
        ),
        (
            "prefix = \"/app\"\npool = \"app\"\nscript_filename = \"\"",
            "sites.main.mounts.m.script_filename",
            "give a file path",
        ),
        (
            "prefix = \"/app\"\npool = \"app\"\ntry_files = true",
            "sites.main.mounts.m",
            "unknown field",
        ),
    ] {
        let text = with_mounts(&format!("\n[sites.main.mounts.m]\n{mount}\n"));
        let error = load(&text).unwrap_err();
        assert!(
            error.key.starts_with(key) && error.message.contains(message),
            "{mount:?}: {error}"
        );
        assert_eq!(error.file, "mounts.toml");
        let line = error.line.unwrap_or_else(|| panic!("no line in {error}"));
        let at = text.lines().nth(line - 1).unwrap_or_default();
        assert!(
            at.contains("[sites.main.mounts.m]") || mount.contains(at),
            "line {line} is {at:?} for {error}"
        );
    }
}

#[test]
fn two_mounts_of_a_site_cannot_share_a_prefix() {
    let error = load(&with_mounts(
        r#"
[sites.main.mounts.a]
prefix = "/app"
pool = "app"

[sites.main.mounts.b]
prefix = "/app/"
pool = "app"
"#,
    ))
    .unwrap_err();
    assert_eq!(error.key, "sites.main.mounts.b.prefix", "{error}");
    assert!(error.message.contains("same prefix"), "{error}");
    assert_eq!(error.line, Some(19), "{error}");
}
