//! Exhausted resources on the master's side: out of file descriptors when a worker has to be
//! respawned. (The front end's side, accept back-off under EMFILE, is in tests/tests/connections/limits.rs.)

use std::process::Command;
use std::time::{Duration, Instant};

use harness::hostile::cpu_ticks;
use harness::{
    open_fds, php_site, process_alive, require_php_cgi, signal, test_site, Paddock, PATIENCE,
};

/// Sets the soft RLIMIT_NOFILE of `pid` (the hard one stays: raising it back needs privileges a
/// container may not have).
fn set_nofile(pid: u32, soft: usize, hard: usize) {
    let status = Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={soft}:{hard}"))
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success(), "prlimit --nofile={soft}:{hard} on {pid}");
}

fn nofile_hard(pid: u32) -> usize {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
        .expect("Max open files")
}

/// The master cannot open a descriptor when a worker dies: it keeps running without spinning,
/// the other worker keeps serving, and the pool is whole again once descriptors are available.
#[test]
fn workers_are_respawned_once_the_master_has_descriptors_again() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 2, ""));
    let master = paddock.pid();
    let original = nofile_hard(master);
    let workers = paddock.worker_pids("php-cgi");
    assert_eq!(workers.len(), 2);

    // No descriptor to spare: a respawn needs a socket and pipes.
    set_nofile(master, open_fds(master), original);
    signal(workers[0], "KILL");
    paddock.wait_until("the dead worker reaped", PATIENCE, || {
        !process_alive(workers[0]) && paddock.worker_pids("php-cgi").len() == 1
    });
    let cpu_before = cpu_ticks(master);
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let cpu_used = cpu_ticks(master) - cpu_before;
    let seconds = window.elapsed().as_secs_f64();
    assert!(process_alive(master), "the master survives EMFILE");
    assert_eq!(
        paddock.worker_pids("php-cgi").len(),
        1,
        "no worker could be spawned without descriptors"
    );
    // Backoff, not a spin: well under a quarter of a CPU (100 ticks a second) over the window,
    // which a loaded machine may stretch.
    assert!(
        (cpu_used as f64) < 25.0 * seconds,
        "master used {cpu_used} ticks in {seconds:.1} s"
    );
    // The surviving worker serves.
    assert_eq!(paddock.curl_status(&[&paddock.url("/sleep.php?ms=1")]), 200);
    paddock.wait_for_log("Too many open files");
    let log = paddock.log();
    let failed_spawn = log
        .lines()
        .rfind(|l| l.contains("Too many open files"))
        .expect("the failed spawn is logged");
    eprintln!("master used {cpu_used} ticks in {seconds:.1} s without descriptors; {failed_spawn}");

    // Descriptors again: the pool is whole within the crash-loop backoff.
    set_nofile(master, original, original);
    paddock.wait_until("the pool back to two workers", PATIENCE, || {
        paddock.worker_pids("php-cgi").len() == 2
    });
    assert_eq!(paddock.curl_status(&[&paddock.url("/sleep.php?ms=1")]), 200);
}
