//! `cpu_affinity = "spread"`: each worker, with every thread it has, on one CPU of those paddock
//! may run on, the pool's workers spread evenly over them; a worker started in place of a
//! killed one takes the CPU it left. Without it, workers may run wherever paddock may.

use std::collections::{BTreeMap, BTreeSet};

use harness::{cpus_allowed, Paddock, PATIENCE};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A threaded pool of `workers` processes of the multi-threaded test application.
fn threaded_site(workers: usize, extra_pool: &str) -> (tempfile::TempDir, String) {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("app.fcgi"), "").unwrap();
    let app = env!("CARGO_BIN_EXE_fcgi-unsafe");
    let config = format!(
        "[sites.app]\nroot = \"{}\"\n[sites.app.scripts]\npool = \"app\"\nextensions = [\"fcgi\"]\n\
         front_controller = \"/app.fcgi\"\n[pools.app]\nmode = \"threaded\"\nthreads = 4\n\
         command = [\"{app}\", \"--threads\", \"4\"]\nworkers = {workers}\n{extra_pool}\n",
        root.path().display()
    );
    (root, config)
}

/// The CPUs each thread of `pid` may run on (a thread that ends while being read is left out).
fn thread_cpus(pid: u32) -> Vec<BTreeSet<usize>> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(|task| cpus_allowed(task.ok()?.path().join("status")))
        .collect()
}

/// The one CPU every thread of worker `pid` is pinned to.
fn pinned_cpu(pid: u32) -> usize {
    let sets: BTreeSet<_> = thread_cpus(pid).into_iter().collect();
    assert_eq!(sets.len(), 1, "worker {pid}'s threads agree: {sets:?}");
    let set = sets.into_iter().next().unwrap();
    assert_eq!(set.len(), 1, "worker {pid} is on one CPU: {set:?}");
    set.into_iter().next().unwrap()
}

/// Each worker's CPU as `/status` shows it (`null` for a worker pinned nowhere), by pid.
fn status_cpus(paddock: &Paddock) -> BTreeMap<u32, Option<usize>> {
    let pool = paddock.pool_status("app");
    pool["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let pid = w["pid"].as_u64().unwrap() as u32;
            (pid, w["cpu"].as_u64().map(|cpu| cpu as usize))
        })
        .collect()
}

/// Waits until `/status` lists exactly `pids`, and returns what it says of their CPUs.
fn status_cpus_of(paddock: &Paddock, pids: &[u32]) -> BTreeMap<u32, Option<usize>> {
    let expected: BTreeSet<u32> = pids.iter().copied().collect();
    let mut seen = BTreeMap::new();
    paddock.wait_until("/status lists the running workers", PATIENCE, || {
        seen = status_cpus(paddock);
        seen.keys().copied().collect::<BTreeSet<_>>() == expected
    });
    seen
}

fn allowed_cpus() -> BTreeSet<usize> {
    cpus_allowed("/proc/self/status").unwrap()
}

#[test]
fn spread_pins_each_worker_to_one_cpu_evenly_and_a_replacement_takes_the_one_left() {
    // paddock inherits this test's CPUs. One worker more than CPUs (at most 4): some CPU holds
    // two, and on a machine of two or more, one holds a worker alone.
    let allowed = allowed_cpus();
    let workers = allowed.len().min(4) + 1;
    let (_root, config) = threaded_site(workers, "cpu_affinity = \"spread\"");
    let paddock = Paddock::start(&config);
    paddock.wait_until("every worker started", PATIENCE, || {
        paddock.worker_pids("fcgi-unsafe").len() == workers
    });
    assert_eq!(paddock.curl_status(&[&paddock.url("/app.fcgi")]), 200);

    let mut by_cpu: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    for pid in paddock.worker_pids("fcgi-unsafe") {
        by_cpu.entry(pinned_cpu(pid)).or_default().push(pid);
    }
    let used: BTreeSet<usize> = by_cpu.keys().copied().collect();
    let expected: BTreeSet<usize> = allowed.iter().copied().take(workers).collect();
    assert_eq!(
        used, expected,
        "the first CPUs, one each before any holds two"
    );
    let counts: Vec<usize> = by_cpu.values().map(Vec::len).collect();
    assert!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
        "spread evenly: {by_cpu:?}"
    );
    // /status tells the operator where each worker runs.
    let pids: Vec<u32> = by_cpu.values().flatten().copied().collect();
    for (pid, cpu) in status_cpus_of(&paddock, &pids) {
        assert_eq!(cpu, Some(pinned_cpu(pid)), "/status of worker {pid}");
    }

    // Kill the worker on the CPU with the fewest; its replacement goes where it was.
    let (&cpu, pids) = by_cpu.iter().min_by_key(|(_, pids)| pids.len()).unwrap();
    let victim = pids[0];
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
    let mut replacement = None;
    paddock.wait_until("a worker in place of the killed one", PATIENCE, || {
        let pids = paddock.worker_pids("fcgi-unsafe");
        replacement = pids
            .iter()
            .copied()
            .find(|pid| !by_cpu.values().flatten().any(|old| old == pid));
        pids.len() == workers && replacement.is_some()
    });
    let replacement = replacement.unwrap();
    assert_eq!(pinned_cpu(replacement), cpu, "{by_cpu:?}");
    let pids = paddock.worker_pids("fcgi-unsafe");
    assert_eq!(status_cpus_of(&paddock, &pids)[&replacement], Some(cpu));
    assert_eq!(paddock.curl_status(&[&paddock.url("/app.fcgi")]), 200);
}

#[test]
fn without_cpu_affinity_workers_may_run_wherever_paddock_may() {
    let (_root, config) = threaded_site(2, "");
    let paddock = Paddock::start(&config);
    paddock.wait_until("both workers started", PATIENCE, || {
        paddock.worker_pids("fcgi-unsafe").len() == 2
    });
    let allowed = allowed_cpus();
    let pids = paddock.worker_pids("fcgi-unsafe");
    for &pid in &pids {
        for set in thread_cpus(pid) {
            assert_eq!(set, allowed, "worker {pid}");
        }
    }
    for (pid, cpu) in status_cpus_of(&paddock, &pids) {
        assert_eq!(cpu, None, "/status of worker {pid}");
    }
}
