//! Compiles the C half of the SAPI against the PHP embed headers and links libphp, when they are
//! installed (Debian 12: `php8.2-dev` and `libphp8.2-embed`). Without them the crate still builds,
//! as a stub that exits with a message naming the packages: a plain `cargo build` of the workspace
//! must work on a machine without PHP's development files.
//!
//! `PADDOCK_PHP_CONFIG` names another `php-config` (default `php-config8.2`, then `php-config`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(paddock_libphp)");
    println!("cargo::rerun-if-env-changed=PADDOCK_PHP_CONFIG");
    println!("cargo::rerun-if-changed=csrc");
    // Installing (or removing) PHP's packages after a first build must change what is built:
    // a missing path makes cargo run this script again on every build, which costs nothing.
    for path in [EMBED_HEADER, LIBPHP] {
        println!("cargo::rerun-if-changed={path}");
    }
    match find_php() {
        Ok(php) => build_glue(&php),
        Err(why) => println!(
            "cargo::warning=paddock-php is built without PHP ({why}); \
             install libphp8.2-embed and php8.2-dev for `builtin = \"php\"` pools"
        ),
    }
}

/// Debian 12's paths for the header the SAPI needs and the library it links.
const EMBED_HEADER: &str = "/usr/include/php/20220829/sapi/embed/php_embed.h";
const LIBPHP: &str = "/usr/lib/libphp8.2.so";

struct Php {
    include_dirs: Vec<PathBuf>,
    lib_dir: PathBuf,
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
    let has_embed = include_dirs
        .iter()
        .any(|dir| dir.join("sapi/embed/php_embed.h").exists());
    if !has_embed {
        return Err("no sapi/embed headers".into());
    }
    let prefix = php_config("--prefix").unwrap_or_else(|| "/usr".into());
    let lib_dir = [Path::new(&prefix).join("lib"), PathBuf::from("/usr/lib")]
        .into_iter()
        .find(|dir| dir.join("libphp8.2.so").exists())
        .ok_or("no libphp8.2.so")?;
    Ok(Php {
        include_dirs,
        lib_dir,
    })
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
    println!("cargo::rustc-link-search=native={}", php.lib_dir.display());
    println!("cargo::rustc-link-lib=dylib=php8.2");
    println!("cargo::rustc-cfg=paddock_libphp");
}
