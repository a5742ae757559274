//! Kept connections and the per-core event loops (`runtime_layout`): a slot's connection moves
//! to the thread that takes it, and a thread prefers idle slots whose connections are its own.

use std::future::Future;
use std::io::ErrorKind;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::Notify;

use super::tests::spec;
use super::PoolDispatch;
use crate::runtime_layout::RuntimeLayout;

/// Runs `work` on a thread of its own that is per-core event loop `n`, as the front end's are.
fn on_event_loop<T, F>(n: u32, work: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = T>,
{
    std::thread::Builder::new()
        .spawn(move || {
            RuntimeLayout::PerCore.enter_event_loop(n);
            let runtime = RuntimeLayout::PerCore.main_runtime().unwrap();
            runtime.block_on(work())
        })
        .unwrap()
        .join()
        .unwrap()
}

/// A pool with one prefork worker per socket, numbered from 1.
fn pool_on(sockets: &[&Path]) -> Arc<PoolDispatch> {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let pool = Arc::new(PoolDispatch::new(
        spec(10, 1_000),
        tx,
        Arc::new(Notify::new()),
    ));
    for (id, socket) in (1..).zip(sockets) {
        pool.worker_up(id, 100 + id as u32, socket.to_path_buf(), 1);
    }
    pool
}

/// A pool of two workers whose sockets listen (and are never answered): the directory, the
/// listeners and the pool, kept together for the test's duration.
fn two_listening_workers() -> (tempfile::TempDir, [UnixListener; 2], Arc<PoolDispatch>) {
    let dir = tempfile::tempdir().unwrap();
    let sockets = [dir.path().join("1.sock"), dir.path().join("2.sock")];
    let workers = sockets.each_ref().map(|s| UnixListener::bind(s).unwrap());
    let pool = pool_on(&[&sockets[0], &sockets[1]]);
    (dir, workers, pool)
}

/// Takes `count` slots at once on event loop `n`, connects each, and gives them back in the
/// order taken: which workers they were.
fn lease_and_connect_on(n: u32, pool: &Arc<PoolDispatch>, count: usize) -> Vec<u64> {
    let pool = pool.clone();
    on_event_loop(n, move || async move {
        let mut leases = Vec::new();
        for _ in 0..count {
            let mut lease = pool.acquire_fresh().await.unwrap();
            assert!(!lease.connection().unwrap().on_another_event_loop());
            leases.push(lease);
        }
        leases.iter().map(|lease| lease.worker().id).collect()
    })
}

#[test]
fn a_kept_connection_moves_to_the_event_loop_that_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("worker.sock");
    let worker = UnixListener::bind(&socket).unwrap();
    worker.set_nonblocking(true).unwrap();
    let pool = pool_on(&[&socket]);
    lease_and_connect_on(1, &pool, 1);
    let seen = on_event_loop(2, {
        let pool = pool.clone();
        move || async move {
            let mut lease = pool.acquire_fresh().await.unwrap();
            let before = lease.open_connection().unwrap().on_another_event_loop();
            let after = lease.connection().unwrap().on_another_event_loop();
            (before, after)
        }
    });
    assert_eq!(seen, (true, false), "on loop 1, then moved to loop 2");
    worker.accept().expect("the connection loop 1 opened");
    assert_eq!(
        worker.accept().unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "moved, not opened again"
    );
}

#[test]
fn an_event_loop_takes_an_idle_slot_of_its_own_before_a_more_recent_one_of_another() {
    let (_dir, _workers, pool) = two_listening_workers();
    // Both connected on loop 1, given back 2 then 1: worker 1's slot on top.
    assert_eq!(lease_and_connect_on(1, &pool, 2), [2, 1]);
    // No slot of loop 2's: the top one moves to it.
    assert_eq!(lease_and_connect_on(2, &pool, 1), [1]);
    // Worker 1's on top is loop 2's now: loop 1 takes its own, worker 2's, from under it.
    assert_eq!(lease_and_connect_on(1, &pool, 1), [2]);
}

/// A slot without a connection is not taken before one with a connection to move: a new
/// connection to an external server may wait in its backlog behind the kept ones.
#[test]
fn a_connection_to_move_is_taken_before_none() {
    let (_dir, _workers, pool) = two_listening_workers();
    assert_eq!(lease_and_connect_on(1, &pool, 1), [2]);
    assert_eq!(
        lease_and_connect_on(2, &pool, 1),
        [2],
        "moved, worker 1 never connected"
    );
}
