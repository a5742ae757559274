//! `builtin = "php"` pools in tests: whether they can run here, and a site served by one.
//!
//! These tests skip (with a message) only when PHP's headers or its php-cgi executable are
//! missing, since then `paddock-php` is built as a stub or has no engine to run in; CI installs
//! both (`.ci/run`, scripts/test.sh).

use std::path::{Path, PathBuf};

/// Debian 12's php-cgi, whose engine builtin workers run, and the header paddock-php's build
/// looks for.
const PHP_ENGINE: &str = "/usr/bin/php-cgi8.2";
const PHP_HEADER: &str = "/usr/include/php/20220829/main/php.h";

/// True when `builtin = "php"` can run here; otherwise says why the calling test is skipped.
/// Panics when PHP is installed but paddock-php's library was not built next to `paddock`.
pub fn require_libphp() -> bool {
    let installed = Path::new(PHP_ENGINE).exists() && Path::new(PHP_HEADER).exists();
    if !installed {
        eprintln!(
            "skipped: builtin = \"php\" needs php8.2-cgi and php8.2-dev \
             (apt-get install php8.2-cgi php8.2-dev; scripts/test.sh installs them)"
        );
        return false;
    }
    let library = paddock_php_library();
    assert!(
        library.exists(),
        "{} not found: build it (`cargo build --workspace`, or `cargo build -p paddock-php`)",
        library.display()
    );
    true
}

/// paddock-php's library next to the `paddock` under test.
pub fn paddock_php_library() -> PathBuf {
    crate::paddock_bin().with_file_name("libpaddock_php.so")
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
