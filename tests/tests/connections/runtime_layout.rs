//! `server.frontend_runtime`: one single-threaded event loop per core, each accepting from
//! every public listener (the default), the same with each loop pinned to a CPU of its own, or
//! one shared multi-threaded runtime. The whole suite runs on the default; here each layout is
//! checked to be the one running, and to serve.

use std::collections::BTreeSet;
use std::path::Path;

use harness::raw::RawConn;
use harness::{cpus_allowed, Paddock, LISTENERS};

fn start(root: &Path, layout: Option<&str>) -> Paddock {
    // Right after the harness's own `[server]` keys.
    let server = layout.map_or(String::new(), |l| format!("frontend_runtime = \"{l}\"\n"));
    Paddock::start_with(
        &format!(
            "{server}{LISTENERS}\n[sites.files]\nroot = \"{}\"\n",
            root.display()
        ),
        true,
    )
}

/// The names of the front end's threads.
fn thread_names(paddock: &Paddock) -> Vec<String> {
    threads(paddock).into_iter().map(|(name, _)| name).collect()
}

/// The front end's threads: each one's name and the CPUs it may run on.
fn threads(paddock: &Paddock) -> Vec<(String, BTreeSet<usize>)> {
    let tasks = format!("/proc/{}/task", paddock.frontend_pid());
    std::fs::read_dir(tasks)
        .unwrap()
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            Some((name.trim().to_owned(), cpus_allowed(path.join("status"))?))
        })
        .collect()
}

/// The CPUs this test may run on, in order (paddock inherits them).
fn allowed_cpus() -> Vec<usize> {
    cpus_allowed("/proc/self/status")
        .unwrap()
        .into_iter()
        .collect()
}

/// Requests on `connections` kept connections at once, each answered in full.
fn load(paddock: &Paddock, connections: usize, requests: usize) {
    let mut conns: Vec<RawConn> = (0..connections)
        .map(|_| RawConn::connect(paddock.http))
        .collect();
    for _ in 0..requests {
        for conn in &mut conns {
            conn.get("/file.txt").unwrap();
        }
        for conn in &mut conns {
            let answer = conn.read_response().expect("an answer");
            assert_eq!(answer.status, 200);
            assert_eq!(answer.body.len(), 4096);
        }
    }
}

fn site() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file.txt"), vec![b'x'; 4096]).unwrap();
    let root = dir.path().to_path_buf();
    (dir, root)
}

#[test]
fn by_default_every_core_has_its_own_event_loop() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (_dir, root) = site();
    let paddock = start(&root, None);
    let names = thread_names(&paddock);
    let loops = names
        .iter()
        .filter(|n| n.starts_with("paddock-loop-"))
        .count();
    assert_eq!(loops, cores - 1, "{names:?}");
    // No multi-threaded runtime's workers.
    assert!(!names.iter().any(|n| n == "paddock-fronten"), "{names:?}");
    load(&paddock, 64, 20);
}

#[test]
fn the_shared_runtime_serves_as_before() {
    let (_dir, root) = site();
    let paddock = start(&root, Some("shared"));
    let names = thread_names(&paddock);
    // tokio's workers, named `paddock-frontend` (cut at 15 bytes), and no loop of its own.
    assert!(names.iter().any(|n| n == "paddock-fronten"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("paddock-loop-")),
        "{names:?}"
    );
    load(&paddock, 8, 20);
}

#[test]
fn pinned_loops_each_run_on_a_cpu_of_their_own() {
    let allowed = allowed_cpus();
    let (_dir, root) = site();
    let paddock = start(&root, Some("per-core-pinned"));
    let threads = threads(&paddock);
    // The main thread's loop on the first CPU, `paddock-loop-N` on the (N+1)-th.
    let main_cpus = cpus_allowed(format!("/proc/{}/status", paddock.frontend_pid())).unwrap();
    assert_eq!(main_cpus, [allowed[0]].into(), "{threads:?}");
    let loops: Vec<_> = threads
        .iter()
        .filter(|(name, _)| name.starts_with("paddock-loop-"))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(loops.len(), cores - 1, "{threads:?}");
    for (name, cpus) in &loops {
        let n: usize = name["paddock-loop-".len()..].parse().unwrap();
        assert_eq!(*cpus, [allowed[n % allowed.len()]].into(), "{threads:?}");
    }
    load(&paddock, 64, 20);
}
