//! Validation of a `builtin = "php"` pool's PHP settings (`php_ini`, `php_value`,
//! `php_admin_value`) into the command line of its warm parent, `paddock-php zygote`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{invalid, Invalid};
use super::paths::readable_file;
use super::raw::RawPool;

/// How long after `request_timeout` the front end waits for a builtin PHP worker to end the
/// request itself (PHP's timeout error, answered 504) before it answers 504 and has the worker
/// killed: PHP's own `hard_timeout` default.
pub(super) const TIMEOUT_GRACE: Duration = Duration::from_secs(2);

/// The program of `builtin = "php"` pools, installed next to `paddock` (`cargo build` puts both
/// in the same directory).
pub(crate) const PHP_PROGRAM: &str = "paddock-php";

/// `paddock-php zygote [--ini FILE] [--define NAME=VALUE]... [--admin NAME]...`
pub(super) fn command(name: &str, pool: &RawPool, base: &Path) -> Result<Vec<String>, Invalid> {
    let exe = std::env::current_exe().map_err(|e| {
        invalid(
            &["pools", name, "builtin"],
            format!("cannot locate the paddock binary: {e}"),
        )
    })?;
    let program = exe.with_file_name(PHP_PROGRAM);
    let mut command = vec![program.to_string_lossy().into_owned(), "zygote".into()];
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
        ("php_ini", pool.php_ini.is_some()),
        ("php_value", !pool.php_value.is_empty()),
        ("php_admin_value", !pool.php_admin_value.is_empty()),
        ("slowlog_timeout", pool.slowlog_timeout.is_some()),
        ("slowlog_trace_depth", pool.slowlog_trace_depth.is_some()),
    ];
    match given.into_iter().find(|(_, present)| *present) {
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
