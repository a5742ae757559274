//! Validation of a `builtin = "php"` pool's PHP settings (`php_engine`, `php_ini`, `php_value`,
//! `php_admin_value`) into the command line of its warm parent, `paddock-php zygote`, which
//! runs as the engine's executable with paddock-php's library loaded into it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{invalid, Invalid};
use super::paths::{next_to_paddock, readable_file};
use super::raw::RawPool;

/// How long after `request_timeout` the front end waits for a builtin PHP worker to end the
/// request itself (PHP's timeout error, answered 504) before it answers 504 and has the worker
/// killed: PHP's own `hard_timeout` default.
pub(super) const TIMEOUT_GRACE: Duration = Duration::from_secs(2);

/// The name the PHP parent goes by (its `argv[0]` and process name) and the package that
/// builds its library.
pub(crate) const PHP_PROGRAM: &str = "paddock-php";
/// paddock-php's library, installed next to `paddock` (`cargo build` puts both in the same
/// directory).
pub(crate) const PHP_LIBRARY: &str = "libpaddock_php.so";
/// The executable whose engine `builtin = "php"` workers run by default: Debian 12's php-cgi, of
/// the PHP version paddock-php is built against (php8.2-dev).
pub(crate) const DEFAULT_PHP_ENGINE: &str = "/usr/bin/php-cgi8.2";

/// paddock-php's library next to the running `paddock`.
pub(super) fn library(name: &str) -> Result<PathBuf, Invalid> {
    next_to_paddock(name, PHP_LIBRARY)
}

/// `ENGINE zygote [--ini FILE] [--define NAME=VALUE]... [--admin NAME]...`, where ENGINE is the
/// pool's `php_engine`. Whether the executable exists is found when the pool starts, like a
/// php-cgi command's (a missing one fails the pool with the package to install).
pub(super) fn command(name: &str, pool: &RawPool, base: &Path) -> Result<Vec<String>, Invalid> {
    let engine = match &pool.php_engine {
        Some(path) if path.as_os_str().is_empty() => {
            return Err(invalid(
                &["pools", name, "php_engine"],
                "empty; give the path of a php-cgi executable",
            ))
        }
        Some(path) => engine_path(path, base),
        None => DEFAULT_PHP_ENGINE.to_string(),
    };
    let mut command = vec![engine, "zygote".into()];
    if let Some(ini) = &pool.php_ini {
        let path = readable_file(&["pools", name, "php_ini"], &base.join(ini))?;
        command.extend(["--ini".into(), absolute(path)]);
    }
    for (key, table) in [
        ("php_value", &pool.php_value),
        ("php_admin_value", &pool.php_admin_value),
    ] {
        for (setting, value) in table {
            check_setting(&["pools", name, key, setting], setting, value)?;
            command.extend(["--define".into(), format!("{setting}={value}")]);
        }
    }
    let timeout = pool
        .request_timeout
        .map_or(super::pool::DEFAULT_REQUEST_TIMEOUT, |d| d.0);
    command.extend([
        "--request-timeout-ms".into(),
        timeout.as_millis().to_string(),
    ]);
    command.extend(slowlog_arguments(name, pool, timeout)?);
    for setting in pool.php_admin_value.keys() {
        if pool.php_value.contains_key(setting) {
            return Err(invalid(
                &["pools", name, "php_value", setting],
                "also set in php_admin_value; give it once",
            ));
        }
        command.extend(["--admin".into(), setting.clone()]);
    }
    Ok(command)
}

/// `php_engine` as the parent is started with it: a name without a slash is looked up in PATH,
/// as a pool `command`'s program is (kept as given when nothing is found there, so that the
/// pool's start names it and the package to install); a path is taken from the config file's
/// directory.
fn engine_path(engine: &Path, base: &Path) -> String {
    if engine.components().count() == 1 && !engine.is_absolute() {
        let found = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(engine))
                .find(|candidate| candidate.is_file())
        });
        return found.map_or_else(|| engine.to_string_lossy().into_owned(), absolute);
    }
    absolute(base.join(engine))
}

/// The slow-request log's options: a timeout shorter than the request timeout (a longer one
/// could never fire), and a trace depth from 1 to 1000 frames.
fn slowlog_arguments(
    name: &str,
    pool: &RawPool,
    request_timeout: Duration,
) -> Result<Vec<String>, Invalid> {
    let Some(after) = pool.slowlog_timeout.map(|d| d.0) else {
        return match pool.slowlog_trace_depth {
            Some(_) => Err(invalid(
                &["pools", name, "slowlog_trace_depth"],
                "applies with slowlog_timeout, which is not set",
            )),
            None => Ok(Vec::new()),
        };
    };
    if after.is_zero() || after >= request_timeout {
        return Err(invalid(
            &["pools", name, "slowlog_timeout"],
            format!(
                "must be above zero and shorter than request_timeout ({} s), or it never fires",
                request_timeout.as_secs_f64()
            ),
        ));
    }
    let mut arguments = vec!["--slowlog-timeout-ms".into(), after.as_millis().to_string()];
    if let Some(depth) = pool.slowlog_trace_depth {
        if !(1..=1000).contains(&depth) {
            return Err(invalid(
                &["pools", name, "slowlog_trace_depth"],
                "frames from 1 to 1000",
            ));
        }
        arguments.extend(["--slowlog-depth".into(), depth.to_string()]);
    }
    Ok(arguments)
}

/// PHP settings belong to `builtin = "php"` pools only: php-cgi reads its own php.ini.
pub(super) fn forbid_settings(name: &str, pool: &RawPool) -> Result<(), Invalid> {
    let given = [
        ("php_engine", pool.php_engine.is_some()),
        ("php_ini", pool.php_ini.is_some()),
        ("php_value", !pool.php_value.is_empty()),
        ("php_admin_value", !pool.php_admin_value.is_empty()),
        ("slowlog_timeout", pool.slowlog_timeout.is_some()),
        ("slowlog_trace_depth", pool.slowlog_trace_depth.is_some()),
    ];
    match given.into_iter().find(|(_, present)| *present) {
        Some(("php_engine", _)) => Err(invalid(
            &["pools", name, "php_engine"],
            "applies to builtin = \"php\" pools; a php-cgi pool's command names its executable",
        )),
        Some((key, _)) if key.starts_with("php_") => Err(invalid(
            &["pools", name, key],
            "applies to builtin = \"php\" pools; a php-cgi command takes -d NAME=VALUE",
        )),
        Some((key, _)) => Err(invalid(
            &["pools", name, key],
            "applies to builtin = \"php\" pools (paddock's own PHP worker takes the trace)",
        )),
        None => Ok(()),
    }
}

fn check_setting(path: &[&str], setting: &str, value: &str) -> Result<(), Invalid> {
    let valid_name = !setting.is_empty()
        && setting
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid_name {
        return Err(invalid(path, "not a PHP setting name"));
    }
    if value.contains(['\n', '\r', '\0']) {
        return Err(invalid(path, "a PHP setting's value is one line"));
    }
    Ok(())
}

fn absolute(path: PathBuf) -> String {
    path.canonicalize()
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}
