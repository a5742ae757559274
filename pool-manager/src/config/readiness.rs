//! Validation of a pool's `readiness`, `start_timeout` and `max_starting`.

use std::time::Duration;

use super::error::{invalid, Invalid};
use super::raw::{RawBuiltin, RawPool, RawReadiness};
use super::{PoolMode, Readiness};

/// Long enough for a large application's imports on a loaded machine (systemd's default for
/// a `Type=notify` service is 90 s; php-fpm has no such limit).
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) fn validate_readiness(
    name: &str,
    pool: &RawPool,
    mode: PoolMode,
) -> Result<Readiness, Invalid> {
    let fail = |key: &str, message: &str| Err(invalid(&["pools", name, key], message));
    // paddock-wsgi says when it has imported the application, which may take seconds.
    let builtin_wsgi = pool.builtin == Some(RawBuiltin::Wsgi);
    let notify = match pool.readiness {
        None => builtin_wsgi,
        Some(RawReadiness::Listen) => false,
        Some(RawReadiness::Notify) => true,
    };
    if !notify {
        for (key, present) in [
            ("start_timeout", pool.start_timeout.is_some()),
            ("max_starting", pool.max_starting.is_some()),
        ] {
            if present {
                return fail(key, "applies only with readiness = \"notify\"");
            }
        }
        return Ok(Readiness::Listening);
    }
    if mode == PoolMode::External {
        return fail(
            "readiness",
            "applies to workers paddock starts, not to an external server",
        );
    }
    if pool.builtin.is_some() && !builtin_wsgi {
        return fail(
            "readiness",
            "paddock's builtin cgi and php workers are ready once they listen; readiness = \
             \"notify\" is for programs that send READY=1 (paddock-wsgi, uWSGI, gunicorn)",
        );
    }
    let start_timeout = pool.start_timeout.map_or(DEFAULT_START_TIMEOUT, |d| d.0);
    if start_timeout.is_zero() {
        return fail("start_timeout", "must be longer than 0s");
    }
    let max_starting = match pool.max_starting {
        Some(0) => return fail("max_starting", "must be at least 1"),
        Some(n) => n,
        None => cores(),
    };
    Ok(Readiness::Notify {
        start_timeout,
        max_starting,
    })
}

/// The CPUs this process may run on: loading an application is CPU-bound, so starting more at
/// once only makes each one later.
fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}
