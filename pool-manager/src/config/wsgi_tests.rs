//! Config tests for `builtin = "wsgi"` pools (paddock's own WSGI worker) and `wsgi_app`.

use super::test_support::{load_pool, pool_text};
use super::*;

const BUILTIN: &str = "threads = 8\nbuiltin = \"wsgi\"\nwsgi_app = \"myproject.wsgi:application\"";

#[test]
fn builtin_wsgi_runs_paddock_wsgi_next_to_paddock_with_the_application() {
    let config = load_pool("threaded", BUILTIN).expect("valid");
    let pool = &config.pools[0];
    let beside = std::env::current_exe()
        .unwrap()
        .with_file_name("paddock-wsgi");
    assert_eq!(
        pool.command,
        [beside.to_str().unwrap(), "myproject.wsgi:application"]
    );
    // Its threads: paddock-wsgi reads PADDOCK_THREADS, as a threaded command's program does.
    assert_eq!(
        pool.env.get("PADDOCK_THREADS").map(String::as_str),
        Some("8")
    );
    assert_eq!(pool.slots_per_worker, 8);
}

#[test]
fn builtin_wsgi_waits_for_the_import_and_sends_requests_ahead_by_default() {
    let config = load_pool("threaded", BUILTIN).unwrap();
    assert!(
        matches!(config.pools[0].readiness, Readiness::Notify { .. }),
        "{:?}",
        config.pools[0].readiness
    );
    assert!(config.frontend.pools[0].send_ahead);
    // Both can be turned off.
    let config = load_pool(
        "threaded",
        &format!("{BUILTIN}\nreadiness = \"listen\"\nsend_ahead = false"),
    )
    .unwrap();
    assert_eq!(config.pools[0].readiness, Readiness::Listening);
    assert!(!config.frontend.pools[0].send_ahead);
}

#[test]
fn builtin_wsgi_needs_a_threaded_pool_and_an_application() {
    let error = load_pool("prefork", "builtin = \"wsgi\"\nwsgi_app = \"app:app\"").unwrap_err();
    assert_eq!(error.key, "pools.app.builtin", "{error}");
    assert!(error.message.contains("threaded"), "{error}");

    let error = load_pool("threaded", "builtin = \"wsgi\"").unwrap_err();
    assert_eq!(error.key, "pools.app.wsgi_app", "{error}");
    assert!(error.message.contains("MODULE:CALLABLE"), "{error}");

    for bad in ["", "my-app:app", "app:", "app:a:b"] {
        let body = format!("builtin = \"wsgi\"\nwsgi_app = \"{bad}\"");
        let error = load_pool("threaded", &body).unwrap_err();
        assert_eq!(error.key, "pools.app.wsgi_app", "{bad}: {error}");
        let text = pool_text("threaded", &body);
        let line = text
            .lines()
            .position(|l| l.starts_with("wsgi_app"))
            .unwrap()
            + 1;
        assert_eq!(error.line, Some(line), "{bad}: {error}");
    }

    let error = load_pool(
        "threaded",
        "builtin = \"wsgi\"\nwsgi_app = \"app\"\ncommand = [\"paddock-wsgi\", \"app\"]",
    )
    .unwrap_err();
    assert_eq!(error.key, "pools.app.builtin", "{error}");
}

#[test]
fn wsgi_app_belongs_to_builtin_wsgi_pools() {
    let error = load_pool(
        "threaded",
        "command = [\"/usr/bin/uwsgi\"]\nwsgi_app = \"app:app\"",
    )
    .unwrap_err();
    assert_eq!(error.key, "pools.app.wsgi_app", "{error}");
    assert!(error.message.contains("builtin = \"wsgi\""), "{error}");
}
