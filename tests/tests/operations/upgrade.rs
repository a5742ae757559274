//! Binary upgrade (SIGUSR2): a new binary takes over the listening sockets from the running master
//! under load, with no failed request and no refused connection; the old master drains and exits.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use harness::client::{get_in_background, mixed_load, Connection};
use harness::{
    children_of, paddock_bin, php_site, process_alive, require_php_cgi, test_site, Hold, Paddock,
    LISTENERS, PATIENCE,
};

/// Stops a process by pid when the test ends, however it ends.
struct StopOnDrop(Option<u32>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            harness::signal(pid, "TERM");
        }
    }
}

fn install(binary: &std::path::Path) {
    // Copy then rename: a new file (inode) at the same path, as a package upgrade does.
    let staging = binary.with_extension("new");
    std::fs::copy(paddock_bin(), &staging).unwrap();
    std::fs::rename(&staging, binary).unwrap();
}

#[test]
fn sigusr2_hands_the_listeners_to_the_new_binary_without_dropping_requests() {
    require_php_cgi();
    let dir = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir()
        .unwrap();
    let binary = dir.path().join("paddock");
    install(&binary);
    let config = format!("{LISTENERS}\n{}", php_site(&test_site(), 2, ""));
    let mut paddock = Paddock::start_binary(&binary, &config, true);
    let old_master = paddock.pid();
    let old_workers = paddock.worker_pids("php-cgi");

    let addr = paddock.http;
    // A request in flight at the upgrade, held until the new master has taken over.
    let hold = Hold::new();
    let long = get_in_background(addr, &hold.path());
    paddock.wait_for_request("php", "/hold.php");
    let traffic = std::thread::spawn(move || mixed_load(addr, 4, Duration::from_secs(7)));
    // Let the traffic run a while before the upgrade (pacing, not a wait: nothing depends on it).
    std::thread::sleep(Duration::from_millis(1500));
    install(&binary);
    harness::signal(old_master, "USR2");
    paddock.wait_until("the new master to take over", PATIENCE, || {
        paddock.log().contains("binary upgrade: took over")
    });
    let log = paddock.log();
    let new_master: u32 = log
        .split("binary upgrade: new master started new_master=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse().ok())
        .expect("the new master's pid is logged");
    let _guard = StopOnDrop(Some(new_master));
    hold.release();

    let report = traffic.join().unwrap();
    let long = long.join().unwrap().unwrap();
    if !report.failures.is_empty() {
        eprintln!("{}", paddock.log());
    }
    assert!(
        report.failures.is_empty(),
        "{:?}",
        &report.failures[..report.failures.len().min(5)]
    );
    assert!(report.ok > 20, "served {}", report.ok);
    assert_eq!(
        long.status, 200,
        "the request in flight at the upgrade finished"
    );

    // The old master drained and exited cleanly; its workers are gone.
    let status = paddock.stop();
    assert!(status.success(), "old master: {status}");
    for pid in old_workers {
        assert!(!process_alive(pid), "old worker {pid} still running");
    }
    // The new master runs the new file, with workers of its own, on the same port.
    let exe = std::fs::metadata(format!("/proc/{new_master}/exe")).unwrap();
    assert_eq!(
        exe.ino(),
        std::fs::metadata(&binary).unwrap().ino(),
        "runs the installed binary"
    );
    let workers: Vec<_> = children_of(new_master)
        .into_iter()
        .filter(|(_, n)| n == "php-cgi")
        .collect();
    assert_eq!(workers.len(), 2, "{workers:?}");
    let response = Connection::open(addr)
        .unwrap()
        .request("GET", "/sleep.php?ms=1", &[], b"")
        .unwrap();
    assert_eq!(response.status, 200);

    harness::signal(new_master, "TERM");
    harness::wait_until("the new master to stop", || !process_alive(new_master));
}
