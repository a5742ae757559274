//! Config tests for a pool's `readiness`, `start_timeout` and `max_starting`.

use std::time::Duration;

use super::test_support::load_pool;
use super::*;

const UWSGI: &str = "command = [\"/usr/bin/uwsgi\"]";

#[test]
fn workers_are_ready_once_they_listen_unless_told_otherwise() {
    let config = load_pool("threaded", UWSGI).unwrap();
    assert_eq!(config.pools[0].readiness, Readiness::Listening);
    let config = load_pool("threaded", &format!("{UWSGI}\nreadiness = \"listen\"")).unwrap();
    assert_eq!(config.pools[0].readiness, Readiness::Listening);
}

#[test]
fn notify_defaults_to_a_minute_and_one_start_per_core() {
    let config = load_pool("threaded", &format!("{UWSGI}\nreadiness = \"notify\"")).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get() as u32;
    assert_eq!(
        config.pools[0].readiness,
        Readiness::Notify {
            start_timeout: Duration::from_secs(60),
            max_starting: cores
        }
    );
    let config = load_pool(
        "prefork",
        &format!("{UWSGI}\nreadiness = \"notify\"\nstart_timeout = \"5s\"\nmax_starting = 3"),
    )
    .unwrap();
    assert_eq!(
        config.pools[0].readiness,
        Readiness::Notify {
            start_timeout: Duration::from_secs(5),
            max_starting: 3
        }
    );
}

#[test]
fn readiness_options_are_checked_where_they_are_written() {
    let cases = [
        (
            "threaded",
            format!("{UWSGI}\nmax_starting = 2"),
            "max_starting",
        ),
        (
            "threaded",
            format!("{UWSGI}\nstart_timeout = \"9s\""),
            "start_timeout",
        ),
        (
            "threaded",
            format!("{UWSGI}\nreadiness = \"notify\"\nmax_starting = 0"),
            "max_starting",
        ),
        (
            "threaded",
            format!("{UWSGI}\nreadiness = \"notify\"\nstart_timeout = \"0s\""),
            "start_timeout",
        ),
        (
            "threaded",
            format!("{UWSGI}\nreadiness = \"soon\""),
            "readiness",
        ),
        (
            "external",
            "socket = \"/run/app.sock\"\nreadiness = \"notify\"".to_string(),
            "readiness",
        ),
        (
            "prefork",
            "builtin = \"cgi\"\nreadiness = \"notify\"".to_string(),
            "readiness",
        ),
    ];
    for (mode, body, key) in cases {
        let error = load_pool(mode, &body).unwrap_err();
        assert_eq!(error.key, format!("pools.app.{key}"), "{body}: {error}");
        assert!(error.line.is_some(), "{body}: {error}");
    }
}
