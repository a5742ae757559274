//! MediaWiki from Debian's `mediawiki` package, copied into a directory of its own and installed
//! on SQLite with its own `maintenance/install.php`: the real application of the MediaWiki test
//! (`tests/tests/legacy/mediawiki.rs`) and of the benchmark's application scenario.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The administrator's password the installer sets (user `Admin`).
pub const PASSWORD: &str = "Correct-Horse-9";
/// Debian's document root for MediaWiki (its Apache alias points here): links into
/// /usr/share/mediawiki, plus `cache/` and `images/` with the `.htaccess` files Debian ships.
pub const PACKAGE: &str = "/var/lib/mediawiki";

/// MediaWiki's documented short-URL rules for a `.htaccess` in the document root, as its
/// short-URL builder writes them for a wiki in `/w` with articles under `/wiki/`, and its
/// documented 404 handler for thumbnails not rendered yet. The handler's rule applies under
/// `w/images/` too: Debian's `.htaccess` there has no rewrite directives of its own, so the
/// parent's are in force, as in Apache.
pub const SHORT_URL_HTACCESS: &str = "\
## https://www.mediawiki.org/wiki/Manual:Short_URL/Apache

# Enable the rewrite engine
RewriteEngine On

# Short URL for wiki pages
RewriteRule ^/?wiki(/.*)?$ %{DOCUMENT_ROOT}/w/index.php [L]

# Redirect / to Main Page
RewriteRule ^/?$ %{DOCUMENT_ROOT}/w/index.php [L]

## https://www.mediawiki.org/wiki/Manual:Thumb_handler.php

# Thumbnail 404 handler
RewriteCond %{DOCUMENT_ROOT}%{REQUEST_URI} !-f
RewriteCond %{DOCUMENT_ROOT}%{REQUEST_URI} !-d
RewriteRule ^/?w/images/thumb/[0-9a-f]/[0-9a-f][0-9a-f]/[^/]+/[^/]+$ %{DOCUMENT_ROOT}/w/thumb_handler.php [L]
";

/// Copies the package into `htdocs/w` with every link resolved, and writes the short-URL
/// `.htaccess` into `htdocs`. Returns the wiki's directory (`htdocs/w`).
pub fn copy_package(htdocs: &Path) -> PathBuf {
    assert!(
        Path::new(PACKAGE).join("index.php").exists(),
        "apt-get install mediawiki (scripts/test.sh installs it)"
    );
    let w = htdocs.join("w");
    // Debian's LocalSettings.php link points at /etc/mediawiki, empty until someone installs;
    // the installer writes our own. The bundled extensions (a third of the package) stay out:
    // the installer enables none.
    fs::create_dir_all(w.join("extensions")).unwrap();
    for entry in fs::read_dir(PACKAGE).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "LocalSettings.php" || entry.file_name() == "extensions" {
            continue;
        }
        let copied = Command::new("cp")
            .arg("-aL")
            .arg(entry.path())
            .arg(&w)
            .status()
            .unwrap();
        assert!(copied.success(), "copy {}", entry.path().display());
    }
    fs::write(htdocs.join(".htaccess"), SHORT_URL_HTACCESS).unwrap();
    w
}

/// Runs the command-line installer for the wiki in `w`: an SQLite database in `data`, the
/// wiki's URLs built on `server` (`http://host:port`), user `Admin` with [`PASSWORD`]. Writes
/// `w/LocalSettings.php`.
pub fn run_installer(w: &Path, data: &Path, server: &str) {
    fs::create_dir_all(data).unwrap();
    let installed = Command::new("php")
        .current_dir(w)
        .arg("maintenance/install.php")
        .args([
            "--dbtype=sqlite",
            "--dbname=wiki",
            "--scriptpath=/w",
            "--lang=en",
        ])
        .arg(format!("--dbpath={}", data.display()))
        .arg(format!("--server={server}"))
        .arg(format!("--pass={PASSWORD}"))
        .args(["Paddock Wiki", "Admin"])
        .output()
        .expect("run php (php-cli comes with php-cgi's dependencies)");
    assert!(
        installed.status.success(),
        "install.php: {}{}",
        String::from_utf8_lossy(&installed.stdout),
        String::from_utf8_lossy(&installed.stderr)
    );
    assert!(data.join("wiki.sqlite").exists());
    assert!(w.join("LocalSettings.php").exists());
}
