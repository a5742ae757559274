//! Compiles the C half of the SAPI against PHP's headers, when they are installed (Debian 12:
//! `php8.2-dev`). Without them the crate still builds, as a stub that exits with a message naming
//! the packages: a plain `cargo build` of the workspace must work on a machine without PHP's
//! development files.
//!
//! Nothing links PHP: the library runs inside the engine's executable (`php-cgi8.2`), whose
//! exported functions its references resolve to when it is loaded (see src/host.rs). It is
//! linked to resolve them all at load (`-z now`), so an executable without one of them fails at
//! once with the dynamic loader's message, not later in a request. The crate's unit tests, a
//! program of their own, do not link the C side (see `unlinked` in src/ffi.rs).
//!
//! `PADDOCK_PHP_CONFIG` names another `php-config` (default `php-config8.2`, then `php-config`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(paddock_libphp)");
    println!("cargo::rerun-if-env-changed=PADDOCK_PHP_CONFIG");
    println!("cargo::rerun-if-changed=csrc");
    // Installing (or removing) PHP's headers after a first build must change what is built:
    // a missing path makes cargo run this script again on every build, which costs nothing.
    println!("cargo::rerun-if-changed={PHP_HEADER}");
    match find_php() {
        Ok(php) => build_glue(&php),
        Err(why) => println!(
            "cargo::warning=paddock-php is built without PHP ({why}); \
             install php8.2-dev (and php8.2-cgi to run it) for `builtin = \"php\"` pools"
        ),
    }
}

/// Debian 12's path of PHP's main header.
const PHP_HEADER: &str = "/usr/include/php/20220829/main/php.h";

struct Php {
    include_dirs: Vec<PathBuf>,
}

fn php_config(arg: &str) -> Option<String> {
    let candidates = match std::env::var("PADDOCK_PHP_CONFIG") {
        Ok(path) => vec![path],
        Err(_) => vec!["php-config8.2".to_string(), "php-config".to_string()],
    };
    candidates.iter().find_map(|program| {
        let output = Command::new(program).arg(arg).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    })
}

fn find_php() -> Result<Php, String> {
    let includes = php_config("--includes").ok_or("no php-config8.2")?;
    let include_dirs: Vec<PathBuf> = includes
        .split_whitespace()
        .filter_map(|flag| flag.strip_prefix("-I"))
        .map(PathBuf::from)
        .collect();
    if !include_dirs
        .iter()
        .any(|dir| dir.join("main/php.h").exists())
    {
        return Err("no main/php.h".into());
    }
    Ok(Php { include_dirs })
}

fn build_glue(php: &Php) {
    let mut build = cc::Build::new();
    build
        .file("csrc/paddock_sapi.c")
        .file("csrc/headers.c")
        .file("csrc/functions.c")
        .file("csrc/timeout.c")
        .file("csrc/slowlog.c")
        .file("csrc/user_ini.c")
        .include("csrc")
        .includes(&php.include_dirs)
        // PHP's own headers trip these; the glue's own code is clean of them.
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-missing-field-initializers")
        .flag_if_supported("-Wno-sign-compare");
    build.compile("paddock_sapi");
    println!("cargo::rustc-cdylib-link-arg=-Wl,-z,now");
    println!("cargo::rustc-cfg=paddock_libphp");
}
