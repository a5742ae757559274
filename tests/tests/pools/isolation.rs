//! What a worker process gets: a cleared environment plus an allow-list, no descriptors beyond
//! 0-2, its own process group, the pool's rlimits, its scheduling policy; and a graceful stop
//! that lets requests finish.

use std::collections::BTreeSet;

use harness::client::get_in_background;
use harness::php_builtin::{php_builtin_site, php_parent_pid, require_libphp};
use harness::{
    fds, php_site, process_alive, require_php_cgi, stat_fields_after_name, test_site, Hold,
    Paddock, PATIENCE,
};

#[test]
fn workers_get_a_clean_environment_descriptors_group_and_limits() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(
        &test_site(),
        1,
        "env = { APP_ENV = \"test\" }\nenv_allow = [\"HOME\"]\nrlimit_nofile = 321",
    ));
    let pid = paddock.worker_pids("php-cgi")[0];

    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let names: BTreeSet<String> = environ
        .split(|&b| b == 0)
        .filter_map(|kv| {
            String::from_utf8_lossy(kv)
                .split_once('=')
                .map(|(k, _)| k.to_string())
        })
        .collect();
    let expected: BTreeSet<String> = [
        "APP_ENV",
        "HOME",
        "PADDOCK_THREADS",
        "PATH",
        "PHP_FCGI_CHILDREN",
        "PHP_FCGI_MAX_REQUESTS",
    ]
    .map(String::from)
    .into();
    assert_eq!(
        names, expected,
        "nothing of paddock's environment (RUST_LOG, CARGO…) leaks"
    );

    // Beyond 0-2 a worker may open files of its own (php-cgi: /dev/null, a semaphore file), but
    // it must not have inherited any socket or pipe.
    for fd in fds(pid).into_iter().filter(|&fd| fd > 2) {
        // A descriptor can close between the listing and this look (php-cgi still starting on
        // a loaded machine opens and closes files of its own); an inherited one would not.
        let Ok(target) = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) else {
            continue;
        };
        let target = target.to_string_lossy();
        assert!(
            !target.starts_with("socket:") && !target.starts_with("pipe:"),
            "fd {fd} -> {target}"
        );
    }
    let socket = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
    assert!(
        socket.to_string_lossy().starts_with("socket:"),
        "{socket:?}"
    );

    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields = stat_fields_after_name(&stat);
    assert_eq!(
        fields[2],
        pid.to_string(),
        "the worker leads its own process group"
    );

    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        nofile.split_whitespace().collect::<Vec<_>>()[3..5],
        ["321", "321"],
        "{nofile}"
    );

    // The worker sockets live in a directory only paddock's user can enter.
    let run = paddock.dir.path().join("run");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&run).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700);
}

/// The kernel's scheduling policy of every thread of `pid` (field 41 of `/proc/PID/task/TID/stat`).
fn scheduling_policies(pid: u32) -> BTreeSet<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|task| {
            let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap();
            // The policy is field 41 of proc(5).
            stat_fields_after_name(&stat)[38].parse().unwrap()
        })
        .collect()
}

const SCHED_OTHER: u32 = 0;
const SCHED_BATCH: u32 = 3;

#[test]
fn workers_run_under_sched_batch_while_the_front_end_and_master_keep_the_default() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 1, ""));
    let worker = paddock.worker_pids("php-cgi")[0];
    assert_eq!(scheduling_policies(worker), [SCHED_BATCH].into());
    assert_eq!(
        scheduling_policies(paddock.frontend_pid()),
        [SCHED_OTHER].into()
    );
    assert_eq!(scheduling_policies(paddock.pid()), [SCHED_OTHER].into());
    drop(paddock);

    let paddock = Paddock::start(&php_site(&test_site(), 1, "scheduling = \"normal\""));
    let worker = paddock.worker_pids("php-cgi")[0];
    assert_eq!(scheduling_policies(worker), [SCHED_OTHER].into());
}

#[test]
fn a_builtin_php_parent_and_the_workers_it_forks_run_under_sched_batch() {
    require_libphp();
    let paddock = Paddock::start(&php_builtin_site(&test_site(), 2, ""));
    let parent = php_parent_pid(paddock.pid()).expect("the pool's PHP parent");
    assert_eq!(scheduling_policies(parent), [SCHED_BATCH].into());
    paddock.wait_until("both workers forked", PATIENCE, || {
        paddock.worker_pids("php-worker").len() == 2
    });
    for worker in paddock.worker_pids("php-worker") {
        assert_eq!(
            scheduling_policies(worker),
            [SCHED_BATCH].into(),
            "worker {worker}"
        );
    }
    // The pool still answers.
    assert_eq!(paddock.curl_status(&[&paddock.url("/index.php")]), 200);
}

#[test]
fn sigterm_lets_in_flight_requests_finish_then_stops_everything() {
    require_php_cgi();
    let mut paddock = Paddock::start(&php_site(&test_site(), 2, ""));
    let workers = paddock.worker_pids("php-cgi");
    let frontend = [paddock.frontend_pid()];
    let addr = paddock.http;
    let hold = Hold::new();
    let slow = get_in_background(addr, &hold.path());
    paddock.wait_pool("php", "the held request on a worker", |p| {
        p["busy_slots"] == 1
    });
    harness::signal(paddock.pid(), "TERM");
    paddock.wait_for_log("stopping: no new connections");
    // The request is let go only once the stop has begun: it finishes if paddock waits for it.
    assert!(
        process_alive(paddock.pid()),
        "paddock waits for the request"
    );
    hold.release();
    paddock.wait_until("paddock to exit", PATIENCE, || {
        !process_alive(paddock.pid())
    });
    let status = paddock.stop();
    assert!(
        status.success(),
        "paddock exits 0 after a graceful stop: {status}"
    );
    let response = slow.join().unwrap().unwrap();
    assert_eq!(response.status, 200, "the in-flight request finished");
    assert!(response.text().starts_with("released"));
    for pid in workers.iter().chain(&frontend) {
        assert!(!process_alive(*pid), "process {pid} outlived paddock");
    }
    let leftovers: Vec<_> = std::fs::read_dir(paddock.dir.path().join("run"))
        .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "left in the runtime directory: {leftovers:?}"
    );
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener is closed"
    );
}

#[test]
fn sigint_stops_at_once() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 2, ""));
    let workers = paddock.worker_pids("php-cgi");
    let addr = paddock.http;
    // Held for as long as paddock runs: paddock exits only if it does not wait for it.
    let hold = Hold::new();
    let slow = get_in_background(addr, &hold.path());
    paddock.wait_pool("php", "the held request on a worker", |p| {
        p["busy_slots"] == 1
    });
    harness::signal(paddock.pid(), "INT");
    paddock.wait_until("paddock to exit", PATIENCE, || {
        !process_alive(paddock.pid())
    });
    let _ = slow.join().unwrap();
    for pid in workers {
        assert!(!process_alive(pid), "worker {pid} outlived paddock");
    }
}

#[test]
fn a_sigkilled_master_leaves_no_orphans() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 2, ""));
    let children: Vec<u32> = paddock.children().into_iter().map(|(pid, _)| pid).collect();
    assert_eq!(children.len(), 3, "front end and two workers");
    harness::signal(paddock.pid(), "KILL");
    paddock.wait_until("children to die with the master", PATIENCE, || {
        children.iter().all(|pid| !process_alive(*pid))
    });
}
