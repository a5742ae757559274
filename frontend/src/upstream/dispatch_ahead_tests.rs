//! Places ahead (`send_ahead`): which requests take them, when, and how they learn their turn.

use std::sync::Arc;
use std::time::Duration;

use protocol::control::PoolDispatchSpec;
use tokio::sync::Notify;

use super::{AdmissionError, PoolDispatch};

/// Two prefork workers, 1 and 2, each with a place ahead.
fn pool_sending_ahead(queue_timeout_ms: u64) -> Arc<PoolDispatch> {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let spec = PoolDispatchSpec {
        name: "php".into(),
        queue_timeout_ms,
        queue_max: 10,
        request_timeout_ms: 1000,
        max_requests: 0,
        max_requests_jitter: 0,
        external: false,
        starts_empty: false,
        protocol: Default::default(),
        keep_connections: true,
        send_ahead: true,
    };
    let pool = Arc::new(PoolDispatch::new(spec, tx, Arc::new(Notify::new())));
    pool.worker_up(1, 11, "/a".into(), 1);
    pool.worker_up(2, 22, "/b".into(), 1);
    pool
}

#[tokio::test]
async fn only_idempotent_requests_go_ahead_and_only_once_every_worker_is_busy() {
    let pool = pool_sending_ahead(50);
    let first = pool.acquire(true).await.unwrap();
    let second = pool.acquire(true).await.unwrap();
    assert_eq!(first.ahead_of(), None, "a free worker runs it at once");
    assert_eq!(second.ahead_of(), None);
    assert_ne!(first.worker().id, second.worker().id);

    // Every worker busy: a POST waits in the queue (and times out here), a GET goes ahead.
    assert_eq!(
        pool.acquire(false).await.unwrap_err(),
        AdmissionError::QueueTimeout("php".into())
    );
    let ahead = pool.acquire(true).await.unwrap();
    assert!(ahead.ahead_of().is_some());
    let snapshot = pool.snapshot();
    assert_eq!(snapshot.sent_ahead, 1);
    let load = pool.load();
    assert_eq!(load.busy_slots, 2, "a request sent ahead does not run yet");
    assert_eq!(
        load.waiting, 1,
        "it counts as waiting, for the master's sizing"
    );

    // One place ahead per worker: the third GET also goes ahead, the fourth waits.
    let ahead_too = pool.acquire(true).await.unwrap();
    assert_ne!(ahead.worker().id, ahead_too.worker().id);
    assert_eq!(
        pool.acquire(true).await.unwrap_err(),
        AdmissionError::QueueTimeout("php".into())
    );
    assert_eq!(pool.snapshot().sent_ahead, 2);
}

#[tokio::test]
async fn a_request_sent_ahead_runs_once_the_one_before_it_ends() {
    let pool = pool_sending_ahead(50);
    let running = [
        pool.acquire(true).await.unwrap(),
        pool.acquire(true).await.unwrap(),
    ];
    let ahead = pool.acquire(true).await.unwrap();
    let ended = ahead.ahead_of().expect("sent ahead");
    let worker = ahead.worker().clone();
    let turn = tokio::spawn({
        let worker = worker.clone();
        async move { worker.ended_more_than(ended).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!turn.is_finished(), "the request before it still runs");
    let [a, b] = running;
    let (before, other) = if a.worker().id == worker.id {
        (a, b)
    } else {
        (b, a)
    };
    drop(other);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !turn.is_finished(),
        "another worker's request ending is not its turn"
    );
    drop(before);
    tokio::time::timeout(Duration::from_secs(5), turn)
        .await
        .expect("its turn comes when the request before it ends")
        .unwrap();
    assert_eq!(pool.snapshot().sent_ahead, 0, "it runs now");
}

#[tokio::test]
async fn a_free_worker_is_taken_before_a_place_ahead_and_places_follow_the_running_request() {
    let pool = pool_sending_ahead(50);
    let running = [
        pool.acquire(true).await.unwrap(),
        pool.acquire(true).await.unwrap(),
    ];
    let ahead = pool.acquire(true).await.unwrap();
    let busy = ahead.worker().id;
    let [a, b] = running;
    let (before_ahead, elsewhere) = if a.worker().id == busy {
        (a, b)
    } else {
        (b, a)
    };
    // The other worker is free again: a GET runs there, not ahead.
    drop(elsewhere);
    let next = pool.acquire(true).await.unwrap();
    assert_eq!(next.ahead_of(), None);
    assert_ne!(next.worker().id, busy);

    // The request before the one sent ahead ends: that one runs now, and the slot given back is
    // the busy worker's place ahead, not a free slot.
    drop(before_ahead);
    assert_eq!(pool.snapshot().sent_ahead, 0);
    assert_eq!(
        pool.snapshot().idle_slots,
        0,
        "no worker is free: no idle slot"
    );
    let again_ahead = pool.acquire(true).await.unwrap();
    assert!(again_ahead.ahead_of().is_some());

    drop((ahead, next, again_ahead));
    assert_eq!(pool.snapshot().sent_ahead, 0);
    assert_eq!(
        pool.snapshot().idle_slots,
        2,
        "both workers free, one idle slot each"
    );
}

#[tokio::test]
async fn a_gone_workers_places_ahead_go_with_it() {
    let pool = pool_sending_ahead(50);
    let running = [
        pool.acquire(true).await.unwrap(),
        pool.acquire(true).await.unwrap(),
    ];
    pool.worker_down(1);
    pool.worker_down(2);
    assert!(pool.ahead.lock().unwrap().is_empty());
    assert_eq!(
        pool.acquire(true).await.unwrap_err(),
        AdmissionError::QueueTimeout("php".into())
    );
    drop(running);
}
