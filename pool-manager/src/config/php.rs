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

/// PHP settings belong to `builtin = "php"` pools only: php-cgi reads its own php.ini.
pub(super) fn forbid_settings(name: &str, pool: &RawPool) -> Result<(), Invalid> {
    let why = "applies to builtin = \"php\" pools; a php-cgi command takes -d NAME=VALUE";
    let given = [
        ("php_ini", pool.php_ini.is_some()),
        ("php_value", !pool.php_value.is_empty()),
        ("php_admin_value", !pool.php_admin_value.is_empty()),
    ];
    match given.into_iter().find(|(_, present)| *present) {
        Some((key, _)) => Err(invalid(&["pools", name, key], why)),
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
