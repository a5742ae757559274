//! `builtin = "php"` pools in tests: whether libphp is installed, and a site served by one.
//!
//! These tests skip (with a message) only when PHP's embed library or its headers are missing,
//! since then `paddock-php` is built as a stub; CI installs both (`.ci/run`, scripts/test.sh).

use std::path::{Path, PathBuf};

/// Debian 12's embeddable PHP and the header that `paddock-php`'s build looks for.
const LIBPHP: [&str; 2] = [
    "/usr/lib/libphp8.2.so",
    "/usr/lib/x86_64-linux-gnu/libphp8.2.so",
];
const EMBED_HEADER: &str = "/usr/include/php/20220829/sapi/embed/php_embed.h";

/// True when `builtin = "php"` can run here; otherwise says why the calling test is skipped.
/// Panics when PHP is installed but `paddock-php` was not built next to `paddock`.
pub fn require_libphp() -> bool {
    let installed =
        LIBPHP.iter().any(|p| Path::new(p).exists()) && Path::new(EMBED_HEADER).exists();
    if !installed {
        eprintln!(
            "skipped: builtin = \"php\" needs libphp8.2-embed and php8.2-dev \
             (apt-get install libphp8.2-embed php8.2-dev; scripts/test.sh installs them)"
        );
        return false;
    }
    let program = paddock_php_bin();
    assert!(
        program.exists(),
        "{} not found: build it (`cargo build --workspace`, or `cargo build -p paddock-php`)",
        program.display()
    );
    true
}

/// The `paddock-php` program next to the `paddock` under test.
pub fn paddock_php_bin() -> PathBuf {
    crate::paddock_bin().with_file_name("paddock-php")
}

/// A site over `root` whose `.php` files go to a `builtin = "php"` prefork pool of `workers`.
pub fn php_builtin_site(root: &Path, workers: u32, extra_pool: &str) -> String {
    crate::php_site(root, workers, extra_pool)
        .replace("command = [\"php-cgi\"]\n", "builtin = \"php\"\n")
}

/// The pid of the pool's PHP parent: the master's child named `paddock-php` (its workers are
/// named `php-worker`).
pub fn php_parent_pid(master: u32) -> Option<u32> {
    let parents: Vec<u32> = crate::children_of(master)
        .into_iter()
        .filter(|(_, name)| name == "paddock-php")
        .map(|(pid, _)| pid)
        .collect();
    (parents.len() == 1).then(|| parents[0])
}
