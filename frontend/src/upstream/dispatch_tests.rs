//! Unit tests of the per-pool slots and queue ([`super`]).

use super::*;

/// Pool `php`'s settings for these tests: a 1 s request timeout, no recycling.
pub(crate) fn spec(queue_max: usize, queue_timeout_ms: u64) -> PoolDispatchSpec {
    PoolDispatchSpec {
        name: "php".into(),
        queue_timeout_ms,
        queue_max,
        request_timeout_ms: 1000,
        max_requests: 0,
        max_requests_jitter: 0,
        external: false,
        starts_empty: false,
        grows_on_demand: true,
        protocol: Default::default(),
        keep_connections: true,
        send_ahead: false,
        send_ahead_below_us: 500,
    }
}

fn pool_with(
    queue_max: usize,
    queue_timeout_ms: u64,
    max_requests: u64,
) -> (
    Arc<PoolDispatch>,
    tokio::sync::mpsc::UnboundedReceiver<ToMaster>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let spec = PoolDispatchSpec {
        max_requests,
        ..spec(queue_max, queue_timeout_ms)
    };
    (
        Arc::new(PoolDispatch::new(spec, tx, Arc::new(Notify::new()))),
        rx,
    )
}

fn pool(queue_max: usize, queue_timeout_ms: u64) -> Arc<PoolDispatch> {
    pool_with(queue_max, queue_timeout_ms, 0).0
}

#[tokio::test]
async fn retiring_worker_finishes_its_request_then_reports_drained() {
    let (pool, mut to_master) = pool_with(10, 50, 0);
    pool.worker_up(1, 11, "/a".into(), 1);
    pool.worker_up(2, 22, "/b".into(), 1);
    let lease = pool.acquire_fresh().await.unwrap();
    assert_eq!(lease.worker().id, 2);
    pool.retire(2, ExitReason::Idle);
    assert!(to_master.try_recv().is_err(), "still busy: not drained yet");
    assert_eq!(
        pool.acquire_fresh().await.unwrap().worker().id,
        1,
        "no new request for a retiring worker"
    );
    drop(lease);
    assert_eq!(
        to_master.try_recv().unwrap(),
        ToMaster::Drained {
            pool: "php".into(),
            worker: 2,
            reason: ExitReason::Idle
        }
    );
    assert_eq!(pool.load().workers_known, 1);
}

#[tokio::test]
async fn a_threaded_worker_with_a_hung_request_is_killed_once_its_others_are_done() {
    let (pool, mut to_master) = pool_with(10, 50, 0);
    pool.worker_up(1, 11, "/a".into(), 1);
    pool.worker_up(2, 22, "/b".into(), 3);
    let hung = pool.acquire_fresh().await.unwrap();
    let other = pool.acquire_fresh().await.unwrap();
    assert_eq!((hung.worker().id, other.worker().id), (2, 2));
    pool.retire_after_timeout(&hung.worker().clone());
    drop(hung);
    assert!(
        to_master.try_recv().is_err(),
        "a request still runs on it: no kill yet"
    );
    assert_eq!(
        pool.acquire_fresh().await.unwrap().worker().id,
        1,
        "its free slot takes no new request"
    );
    drop(other);
    assert_eq!(
        to_master.try_recv().unwrap(),
        ToMaster::KillWorker {
            pool: "php".into(),
            worker: 2,
            reason: KillReason::RequestTimeout
        }
    );
}

#[tokio::test]
async fn worker_retires_after_max_requests() {
    let (pool, mut to_master) = pool_with(10, 50, 2);
    pool.worker_up(1, 11, "/a".into(), 1);
    drop(pool.acquire_fresh().await.unwrap());
    assert!(to_master.try_recv().is_err());
    let last = pool.acquire_fresh().await.unwrap();
    // The master hears of it as the last request starts (to start a successor), once.
    assert_eq!(
        to_master.try_recv().unwrap(),
        ToMaster::Retiring {
            pool: "php".into(),
            worker: 1,
            reason: ExitReason::MaxRequests
        }
    );
    assert!(to_master.try_recv().is_err(), "drained only once it ends");
    drop(last);
    assert!(matches!(
        to_master.try_recv().unwrap(),
        ToMaster::Drained {
            worker: 1,
            reason: ExitReason::MaxRequests,
            ..
        }
    ));
    assert!(matches!(
        pool.acquire_fresh().await,
        Err(AdmissionError::QueueTimeout(_))
    ));
}

#[tokio::test]
async fn load_reports_idle_and_waiting() {
    let pool = pool(10, 1_000);
    pool.worker_up(1, 11, "/a".into(), 2);
    let held = pool.acquire_fresh().await.unwrap();
    let load = pool.load();
    assert_eq!(
        (
            load.workers_known,
            load.idle_slots,
            load.busy_slots,
            load.waiting
        ),
        (1, 1, 1, 0)
    );
    assert!(load.idle_workers.is_empty());
    drop(held);
    let load = pool.load();
    assert_eq!(load.idle_workers.len(), 1);
}

#[tokio::test]
async fn most_recently_used_worker_is_preferred() {
    let pool = pool(10, 100);
    pool.worker_up(1, 11, "/a".into(), 1);
    pool.worker_up(2, 22, "/b".into(), 1);
    let first = pool.acquire_fresh().await.unwrap();
    assert_eq!(first.worker().id, 2);
    drop(first);
    assert_eq!(pool.acquire_fresh().await.unwrap().worker().id, 2);
}

#[tokio::test]
async fn queue_times_out_and_bounds_length() {
    let pool = pool(1, 50);
    pool.worker_up(1, 11, "/a".into(), 1);
    let held = pool.acquire_fresh().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire_fresh().await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        pool.acquire_fresh().await.unwrap_err(),
        AdmissionError::QueueFull("php".into())
    );
    assert_eq!(
        waiter.await.unwrap().unwrap_err(),
        AdmissionError::QueueTimeout("php".into())
    );
    drop(held);
    assert_eq!(pool.snapshot().waiting, 0);
}

#[tokio::test]
async fn dead_workers_slots_are_skipped() {
    let pool = pool(10, 50);
    pool.worker_up(1, 11, "/a".into(), 2);
    pool.worker_up(2, 22, "/b".into(), 1);
    pool.worker_down(2);
    let lease = pool.acquire_fresh().await.unwrap();
    assert_eq!(lease.worker().id, 1);
    drop(lease);
    pool.worker_down(1);
    assert!(matches!(
        pool.acquire_fresh().await,
        Err(AdmissionError::QueueTimeout(_))
    ));
}

#[tokio::test]
async fn failing_pool_without_workers_answers_at_once() {
    let pool = pool(10, 10_000);
    pool.set_failing(Some("command `php-cgi` was not found".into()));
    let error = pool.acquire_fresh().await.unwrap_err();
    assert!(matches!(error, AdmissionError::Failing { .. }));
}

/// A request waiting for the only worker of a pool that then fails (its worker dies, the
/// master backs off) is answered with the reason as soon as the worker is gone, not at its
/// queue timeout; while the worker lives, the request waits for it.
#[tokio::test]
async fn a_waiting_request_hears_at_once_that_its_pool_failed() {
    let pool = pool(10, 60_000);
    pool.worker_up(1, 11, "/a".into(), 1);
    let held = pool.acquire_fresh().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire_fresh().await.map(|_| ()) }
    });
    tokio::task::yield_now().await;
    pool.set_failing(Some("exits right after starting".into()));
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "its worker still lives");
    // The worker dies in its request: no slot comes back.
    pool.worker_down(1);
    drop(held);
    let error = tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .expect("answered when the worker went, long before the 60 s queue timeout")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&error, AdmissionError::Failing { reason, .. } if reason == "exits right after starting"),
        "{error:?}"
    );
}

/// Waits again (after a worker that could not be reached, or died before answering) spend
/// from the request's one `queue_timeout`; a slot free at once is still taken with none left.
#[tokio::test(start_paused = true)]
async fn a_request_waits_one_queue_timeout_over_all_its_waits() {
    let pool = pool(10, 300);
    pool.worker_up(1, 11, "/a".into(), 1);
    let held = pool.acquire_fresh().await.unwrap();
    let mut budget = QueueBudget::of(&pool);
    let started = tokio::time::Instant::now();
    assert!(matches!(
        pool.acquire(&mut budget).await,
        Err(AdmissionError::QueueTimeout(_))
    ));
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    assert!(matches!(
        pool.acquire(&mut budget).await,
        Err(AdmissionError::QueueTimeout(_))
    ));
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(300),
        "no second wait"
    );
    drop(held);
    assert!(pool.acquire(&mut budget).await.is_ok());
}

#[tokio::test]
async fn a_waiter_gets_a_slot_released_later() {
    let pool = pool(10, 1_000);
    pool.worker_up(1, 11, "/a".into(), 1);
    let held = pool.acquire_fresh().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire_fresh().await.map(|l| l.worker().id) }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(held);
    assert_eq!(waiter.await.unwrap(), Ok(1));
}

#[tokio::test]
async fn a_slot_freed_goes_to_the_request_waiting_not_to_one_arriving_at_that_moment() {
    let pool = pool(10, 200);
    pool.worker_up(1, 11, "/a".into(), 1);
    let held = pool.acquire_fresh().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire_fresh().await }
    });
    for _ in 0..1_000 {
        if pool.waiting.load(Ordering::Relaxed) == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        pool.waiting.load(Ordering::Relaxed),
        1,
        "the first request waits"
    );
    drop(held);
    // Arrives as the slot comes back, before the waiting request has run again: it must not
    // take the slot at once, but queue behind (and here time out, the waiter keeping it).
    let newcomer = pool.acquire_fresh().await;
    assert!(
        matches!(newcomer, Err(AdmissionError::QueueTimeout(_))),
        "{newcomer:?}"
    );
    let lease = waiter
        .await
        .unwrap()
        .expect("the waiting request got the slot");
    assert_eq!(lease.worker().id, 1);
}

#[tokio::test]
async fn a_reload_that_changes_keep_connections_replaces_the_kept_connection() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("worker.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let pool = pool(10, 1_000);
    pool.worker_up(1, 11, socket, 1);
    let mut lease = pool.acquire_fresh().await.unwrap();
    assert!(lease.connection().unwrap().keeps());
    drop(lease);
    let mut spec = (*pool.spec()).clone();
    spec.keep_connections = false;
    pool.set_spec(spec);
    let mut lease = pool.acquire_fresh().await.unwrap();
    assert!(
        !lease.connection().unwrap().keeps(),
        "opened again, not kept"
    );
}

/// A static pool's queue is not the master's business at once: it starts no worker for it. The
/// regular report still carries the queue's length.
#[tokio::test]
async fn a_static_pool_queues_without_waking_the_master() {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let spec = PoolDispatchSpec {
        grows_on_demand: false,
        ..spec(10, 5_000)
    };
    let pressure = Arc::new(Notify::new());
    let pool = Arc::new(PoolDispatch::new(spec, tx, pressure.clone()));
    pool.worker_up(1, 11, "/a".into(), 1);
    let held = pool.acquire_fresh().await.unwrap();
    let waiting = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.acquire_fresh().await.map(|_| ()) })
    };
    while pool.snapshot().waiting == 0 {
        tokio::task::yield_now().await;
    }
    // A signal sent with nobody listening is kept for the next listener, so this sees any.
    let signalled = tokio::time::timeout(Duration::from_millis(20), pressure.notified()).await;
    assert!(signalled.is_err(), "a static pool's queue woke the master");
    assert_eq!(
        pool.load().waiting,
        1,
        "the regular report carries the queue"
    );
    drop(held);
    waiting.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_master_hears_of_a_queue_only_when_it_grows() {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let spec = spec(10, 5_000);
    let pressure = Arc::new(Notify::new());
    let pool = Arc::new(PoolDispatch::new(spec, tx, pressure.clone()));
    let signalled = || async {
        tokio::time::timeout(Duration::from_millis(20), pressure.notified())
            .await
            .is_ok()
    };
    let wait_for_slot = |pool: &Arc<PoolDispatch>| {
        let pool = pool.clone();
        tokio::spawn(async move { pool.acquire_fresh().await.map(|_| ()) })
    };
    pool.worker_up(1, 11, "/a".into(), 1);
    let held = pool.acquire_fresh().await.unwrap();
    assert!(!signalled().await, "a free slot was taken: no pressure");
    let first = wait_for_slot(&pool);
    assert!(signalled().await, "the first request to wait is news");
    pool.load();
    let second = wait_for_slot(&pool);
    assert!(signalled().await, "a longer queue than reported is news");
    assert_eq!(pool.load().waiting, 2);
    drop(held);
    first.await.unwrap().unwrap();
    let third = wait_for_slot(&pool);
    assert!(
        !signalled().await,
        "back to the reported length: the tick tells the master"
    );
    second.await.unwrap().unwrap();
    third.await.unwrap().unwrap();
    assert_eq!(pool.snapshot().waiting, 0);
    let after_empty = pool.acquire_fresh().await.unwrap();
    let next = wait_for_slot(&pool);
    assert!(
        signalled().await,
        "after the queue emptied, a new wait is news"
    );
    drop(after_empty);
    next.await.unwrap().unwrap();
}
