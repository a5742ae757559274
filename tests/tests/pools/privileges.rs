//! Started as root: the front end drops to `server.user` with no capabilities and no_new_privs
//! after taking its listeners and key; workers run as their pool's user and cannot read the key.
//! Checked from /proc. (Needs root, as in CI; as another user it says so and checks nothing.)

use std::process::Command;

use harness::client::Connection;
use harness::{listeners_with_certificate, require_php_cgi, Paddock};

fn proc_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

fn field<'a>(status: &'a str, name: &str) -> Vec<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        .split_whitespace()
        .collect()
}

fn id(flag: &str, name: &str) -> String {
    let out = Command::new("id").arg(flag).arg(name).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A directory every user may enter, holding a document root `site` with `whoami.php` (the
/// script's uid and pid).
fn whoami_site() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir()
        .unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(
        site.join("whoami.php"),
        "<?php echo posix_geteuid(), ' ', getmypid();",
    )
    .unwrap();
    (dir, site)
}

#[test]
fn front_end_and_workers_run_unprivileged() {
    if !nix_is_root() {
        eprintln!("privilege test skipped: it needs root (CI runs it as root)");
        return;
    }
    require_php_cgi();
    // A document root and key every test user can reach, except the key for the workers.
    let (dir, site) = whoami_site();
    std::fs::write(site.join("hello.txt"), "hello\n").unwrap();
    let (cert, key) = harness::self_signed_certificate(dir.path(), "tls");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&cert, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    // server.user goes into the [server] table the harness writes, before the first table.
    let config = format!(
        r#"user = "nobody"
{listeners}
[sites.test]
root = "{site}"

[sites.test.scripts]
pool = "php"

[pools.php]
mode = "prefork"
command = ["php-cgi"]
workers = 2
user = "daemon"
"#,
        listeners = listeners_with_certificate(&cert, &key),
        site = site.display()
    );
    let paddock = Paddock::start_with(&config, true);

    let nobody = id("-u", "nobody");
    let daemon = id("-u", "daemon");
    let frontend = paddock.frontend_pid();
    let status = proc_status(frontend);
    assert_eq!(
        field(&status, "Uid:"),
        [nobody.as_str(); 4],
        "front end uid"
    );
    assert_eq!(field(&status, "Gid:")[0], id("-g", "nobody"));
    assert_eq!(field(&status, "CapEff:"), ["0000000000000000"]);
    assert_eq!(field(&status, "CapPrm:"), ["0000000000000000"]);
    assert_eq!(field(&status, "NoNewPrivs:"), ["1"]);

    for worker in paddock.worker_pids("php-cgi") {
        let status = proc_status(worker);
        assert_eq!(field(&status, "Uid:"), [daemon.as_str(); 4], "worker uid");
    }
    // The private key is the master's and front end's secret: a worker's user cannot read it.
    let read = Command::new("setpriv")
        .args(["--reuid=daemon", "--regid=daemon", "--clear-groups", "cat"])
        .arg(&key)
        .output()
        .expect("setpriv (util-linux)");
    assert!(!read.status.success(), "the pool's user could read the key");

    // And everything still works: PHP as daemon, static files and TLS through the unprivileged
    // front end.
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/whoami.php", &[], b"")
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response.text().starts_with(&format!("{daemon} ")),
        "{}",
        response.text()
    );
    let static_file = paddock.curl(&[&paddock.https_url("/hello.txt")]);
    assert_eq!(String::from_utf8_lossy(&static_file.stdout), "hello\n");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|uids| uids.split_whitespace().nth(1) == Some("0"))
}

/// A config whose site's scripts go to a `builtin = "php"` pool run as `daemon`, with `pool`'s
/// extra keys.
fn builtin_pool_of_daemon(site: &std::path::Path, pool: &str) -> String {
    format!(
        r#"{listeners}
[sites.test]
root = "{site}"

[sites.test.scripts]
pool = "php"

[pools.php]
mode = "prefork"
builtin = "php"
user = "daemon"
{pool}
"#,
        listeners = harness::LISTENERS,
        site = site.display()
    )
}

/// A `builtin = "php"` pool with a `user`: the PHP parent and its workers run as that user, even
/// when paddock is installed where that user cannot go (here, copies of paddock and paddock-php's
/// library in a directory only root may enter, as a `mktemp -d` clone is): the master opens the
/// library while it is still root and has the engine's executable load it through that
/// descriptor.
#[test]
fn builtin_php_parent_and_workers_run_as_the_pools_user() {
    if !nix_is_root() {
        eprintln!("privilege test skipped: it needs root (CI runs it as root)");
        return;
    }
    if !harness::php_builtin::require_libphp() {
        return;
    }
    let private = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .unwrap();
    let paddock_copy = private.path().join("paddock");
    std::fs::copy(harness::paddock_bin(), &paddock_copy).unwrap();
    std::fs::copy(
        harness::php_builtin::paddock_php_library(),
        private.path().join("libpaddock_php.so"),
    )
    .unwrap();
    let (_public, site) = whoami_site();
    let config = builtin_pool_of_daemon(&site, "workers = 2");
    let paddock = Paddock::start_binary(&paddock_copy, &config, true);
    let daemon = id("-u", "daemon");

    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/whoami.php", &[], b"")
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let text = response.text();
    let (uid, worker) = text.split_once(' ').expect("uid and pid");
    assert_eq!(uid, daemon, "the script's user");

    let parent = harness::php_builtin::php_parent_pid(paddock.pid())
        .unwrap_or_else(|| panic!("no paddock-php parent: {}", paddock.log()));
    assert_eq!(
        field(&proc_status(parent), "Uid:"),
        [daemon.as_str(); 4],
        "the PHP parent's uid"
    );
    let worker: u32 = worker.parse().expect("the worker's pid");
    let status = proc_status(worker);
    assert_eq!(field(&status, "Uid:"), [daemon.as_str(); 4], "worker uid");
    let name = std::fs::read_to_string(format!("/proc/{worker}/comm")).unwrap();
    assert_eq!(name.trim(), "php-worker", "a worker forked by the parent");
}

/// A `builtin = "php"` pool whose user may not start another process (`rlimit_nproc = 1`: the
/// PHP parent is that one): the parent cannot fork, the pool fails with the reason, clients get
/// 503, and the parent is kept (the system refused, not the parent).
#[test]
fn a_builtin_php_pool_that_may_not_fork_fails_with_the_reason() {
    if !nix_is_root() {
        eprintln!("privilege test skipped: it needs root (CI runs it as root)");
        return;
    }
    if !harness::php_builtin::require_libphp() {
        return;
    }
    let (_public, site) = whoami_site();
    let config = builtin_pool_of_daemon(&site, "workers = 1\nrlimit_nproc = 1");
    // Not ready: its only pool has no worker.
    let paddock = Paddock::start_binary(&harness::paddock_bin(), &config, false);
    // The parent's own message, then the master's reason, once (not a parent restarted each time).
    paddock.wait_for_log("paddock-php: cannot fork: EAGAIN");
    paddock.wait_for_log("the PHP parent could not fork a worker");
    let parent = harness::php_builtin::php_parent_pid(paddock.pid())
        .unwrap_or_else(|| panic!("no PHP parent: {}", paddock.log()));
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/whoami.php", &[], b"")
        .unwrap();
    assert_eq!(
        response.status,
        503,
        "{}\n{}",
        response.text(),
        paddock.log()
    );
    assert_eq!(
        harness::php_builtin::php_parent_pid(paddock.pid()),
        Some(parent),
        "the parent is kept: the system refused the fork, not the parent\n{}",
        paddock.log()
    );
    assert_eq!(paddock.log().matches("PHP parent started").count(), 1);
}
