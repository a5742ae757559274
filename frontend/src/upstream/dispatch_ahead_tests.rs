//! Places ahead (`send_ahead`): when a request takes one, and how it learns its turn.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use protocol::control::PoolDispatchSpec;
use tokio::sync::Notify;

use super::tests::spec;
use super::{AdmissionError, PoolDispatch};

/// Two prefork workers, 1 and 2, each with two places ahead.
fn pool_sending_ahead() -> Arc<PoolDispatch> {
    pool_of_workers(2)
}

/// `workers` prefork workers, numbered from 1, each with two places ahead.
fn pool_of_workers(workers: u64) -> Arc<PoolDispatch> {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let spec = PoolDispatchSpec {
        send_ahead: true,
        ..spec(10, 50)
    };
    let pool = Arc::new(PoolDispatch::new(spec, tx, Arc::new(Notify::new())));
    for id in 1..=workers {
        pool.worker_up(id, 10 + id as u32, format!("/w{id}").into(), 1);
    }
    pool
}

/// Puts the pool's requests on record as short, and has each worker end a request with nothing
/// else in flight: that is when a worker gets its places ahead.
async fn measured_short(pool: &Arc<PoolDispatch>) {
    pool.service_us.store(0, Ordering::Relaxed);
    let workers = pool.workers.lock().unwrap().len();
    let mut running = Vec::new();
    for _ in 0..workers {
        running.push(pool.acquire_fresh().await.unwrap());
    }
    drop(running);
}

#[tokio::test]
async fn places_ahead_are_held_back_until_requests_are_measured_short_and_while_they_are_long() {
    let pool = pool_sending_ahead();
    let running = [
        pool.acquire_fresh().await.unwrap(),
        pool.acquire_fresh().await.unwrap(),
    ];
    assert_eq!(
        pool.acquire_fresh().await.unwrap_err(),
        AdmissionError::QueueTimeout("php".into()),
        "nothing measured yet: no place ahead"
    );
    drop(running);
    measured_short(&pool).await;
    let running = [
        pool.acquire_fresh().await.unwrap(),
        pool.acquire_fresh().await.unwrap(),
    ];
    let mut ahead = Vec::new();
    for _ in 0..4 {
        ahead.push(pool.acquire_fresh().await.unwrap());
    }
    assert!(ahead.iter().all(|l| l.ahead_of().is_some()));

    // Requests turn long: a place freed while its worker still runs a request is held back.
    pool.service_us.store(1_000_000, Ordering::Relaxed);
    drop(running);
    assert_eq!(
        pool.snapshot().sent_ahead,
        2,
        "the first sent ahead to each worker runs now, the second still waits"
    );
    assert_eq!(
        pool.acquire_fresh().await.unwrap_err(),
        AdmissionError::QueueTimeout("php".into()),
        "both workers busy, their places ahead held back"
    );
    drop(ahead);
    let again = [
        pool.acquire_fresh().await.unwrap(),
        pool.acquire_fresh().await.unwrap(),
    ];
    assert!(again.iter().all(|l| l.ahead_of().is_none()));
}

#[tokio::test]
async fn requests_go_ahead_only_once_every_worker_is_busy() {
    let pool = pool_sending_ahead();
    measured_short(&pool).await;
    let first = pool.acquire_fresh().await.unwrap();
    let second = pool.acquire_fresh().await.unwrap();
    assert_eq!(first.ahead_of(), None, "a free worker runs it at once");
    assert_eq!(second.ahead_of(), None);
    assert_ne!(
        first.worker().id,
        second.worker().id,
        "each on a free worker"
    );

    let ahead = pool.acquire_fresh().await.unwrap();
    assert!(ahead.ahead_of().is_some());
    assert_eq!(pool.snapshot().sent_ahead, 1);
    let load = pool.load();
    assert_eq!(load.busy_slots, 2, "a request sent ahead does not run yet");
    assert_eq!(
        load.waiting, 1,
        "it counts as waiting, for the master's sizing"
    );

    // The fourth goes ahead on the other worker (the one with fewer in flight), the fifth and
    // sixth to the second places, the seventh waits.
    let ahead_too = pool.acquire_fresh().await.unwrap();
    assert!(ahead_too.ahead_of().is_some());
    assert_ne!(ahead.worker().id, ahead_too.worker().id);
    let second_places = [
        pool.acquire_fresh().await.unwrap(),
        pool.acquire_fresh().await.unwrap(),
    ];
    assert!(second_places.iter().all(|l| l.ahead_of().is_some()));
    assert_ne!(second_places[0].worker().id, second_places[1].worker().id);
    assert_eq!(
        pool.acquire_fresh().await.unwrap_err(),
        AdmissionError::QueueTimeout("php".into())
    );
    assert_eq!(pool.snapshot().sent_ahead, 4);
    assert_eq!(pool.load().waiting, 4);
}

#[tokio::test]
async fn requests_on_one_worker_are_numbered_in_order_and_run_in_turn() {
    let pool = pool_of_workers(1);
    measured_short(&pool).await;
    let running = pool.acquire_fresh().await.unwrap();
    let first_ahead = pool.acquire_fresh().await.unwrap();
    let second_ahead = pool.acquire_fresh().await.unwrap();
    assert_eq!(running.ahead_of(), None);
    // The FastCGI ids the worker orders its waiting requests by.
    assert_eq!(first_ahead.fastcgi_id(), running.fastcgi_id() + 1);
    assert_eq!(second_ahead.fastcgi_id(), first_ahead.fastcgi_id() + 1);

    let worker = running.worker().clone();
    let turn_of = |lease: &super::Lease| {
        let (worker, ended) = (worker.clone(), lease.ahead_of().expect("sent ahead"));
        tokio::spawn(async move { worker.ended_more_than(ended).await })
    };
    let (first_turn, second_turn) = (turn_of(&first_ahead), turn_of(&second_ahead));
    drop(running);
    tokio::time::timeout(Duration::from_secs(5), first_turn)
        .await
        .expect("the first sent ahead runs when the running one ends")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!second_turn.is_finished(), "the second waits for the first");
    assert_eq!(pool.snapshot().sent_ahead, 1);
    drop(first_ahead);
    tokio::time::timeout(Duration::from_secs(5), second_turn)
        .await
        .expect("then the second runs")
        .unwrap();
    assert_eq!(pool.snapshot().sent_ahead, 0);
}

#[test]
fn fastcgi_ids_run_from_1_to_65535_and_round_again() {
    use protocol::fcgi::sequenced_request_id as fastcgi_id_of;
    assert_eq!(fastcgi_id_of(0), 1);
    assert_eq!(fastcgi_id_of(65_534), 65_535);
    assert_eq!(fastcgi_id_of(65_535), 1);
    assert_eq!(fastcgi_id_of(2 * 65_535 + 6), 7);
}

#[tokio::test]
async fn a_request_sent_ahead_runs_once_the_one_before_it_ends() {
    let pool = pool_sending_ahead();
    measured_short(&pool).await;
    let [a, b] = [
        pool.acquire_fresh().await.unwrap(),
        pool.acquire_fresh().await.unwrap(),
    ];
    let ahead = pool.acquire_fresh().await.unwrap();
    let ended = ahead.ahead_of().expect("sent ahead");
    let worker = ahead.worker().clone();
    let turn = tokio::spawn({
        let worker = worker.clone();
        async move { worker.ended_more_than(ended).await }
    });
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
async fn a_free_worker_is_taken_before_a_place_ahead() {
    let pool = pool_sending_ahead();
    measured_short(&pool).await;
    let [a, b] = [
        pool.acquire_fresh().await.unwrap(),
        pool.acquire_fresh().await.unwrap(),
    ];
    let ahead = pool.acquire_fresh().await.unwrap();
    let busy = ahead.worker().id;
    let elsewhere = if a.worker().id == busy { b } else { a };
    // The other worker is free again; its place ahead was given back last, its slot before it:
    // the next request runs there, not ahead of anything.
    drop(elsewhere);
    let next = pool.acquire_fresh().await.unwrap();
    assert_eq!(next.ahead_of(), None);
    assert_ne!(next.worker().id, busy);
}

#[tokio::test]
async fn without_send_ahead_a_prefork_worker_has_one_slot() {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let spec = PoolDispatchSpec {
        send_ahead: false,
        send_ahead_below_us: 500,
        ..(*pool_sending_ahead().spec()).clone()
    };
    let pool = Arc::new(PoolDispatch::new(spec, tx, Arc::new(Notify::new())));
    pool.worker_up(1, 11, "/a".into(), 1);
    let running = pool.acquire_fresh().await.unwrap();
    assert_eq!(running.ahead_of(), None);
    assert_eq!(
        pool.acquire_fresh().await.unwrap_err(),
        AdmissionError::QueueTimeout("php".into())
    );
}

/// One threaded worker of `threads` threads with `send_ahead`, whose requests count as short
/// even when a test holds them through a queue timeout (50 ms).
fn threaded_worker_sending_ahead(threads: u32) -> Arc<PoolDispatch> {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let spec = PoolDispatchSpec {
        send_ahead: true,
        send_ahead_below_us: 1_000_000,
        ..spec(10, 50)
    };
    let pool = Arc::new(PoolDispatch::new(spec, tx, Arc::new(Notify::new())));
    pool.worker_up(1, 11, "/w1".into(), threads);
    pool
}

#[tokio::test]
async fn a_threaded_worker_takes_as_many_requests_ahead_as_threads_once_a_thread_is_free() {
    let pool = threaded_worker_sending_ahead(2);
    pool.service_us.store(0, Ordering::Relaxed);
    let first = pool.acquire_fresh().await.unwrap();
    let second = pool.acquire_fresh().await.unwrap();
    assert_eq!((first.ahead_of(), second.ahead_of()), (None, None));
    assert_eq!(
        pool.acquire_fresh().await.unwrap_err(),
        AdmissionError::QueueTimeout("php".into()),
        "its places ahead start held back"
    );
    // Under steady load a threaded worker is never idle: its places come out as soon as a
    // request ends with a thread left free (a prefork worker's once it has nothing in flight).
    drop(second);
    let second = pool.acquire_fresh().await.unwrap();
    assert_eq!(second.ahead_of(), None, "a free thread runs it at once");
    let ahead = [
        pool.acquire_fresh().await.unwrap(),
        pool.acquire_fresh().await.unwrap(),
    ];
    assert_eq!(
        pool.acquire_fresh().await.unwrap_err(),
        AdmissionError::QueueTimeout("php".into()),
        "two threads running, two requests ahead: full"
    );
    let load = pool.load();
    assert_eq!((load.busy_slots, load.waiting), (2, 2));
    assert_eq!(pool.snapshot().sent_ahead, 2);

    // The k-th request waiting runs once k more requests have ended, whichever thread ends.
    let worker = first.worker().clone();
    let turn_of = |lease: &super::Lease| {
        let (worker, ended) = (worker.clone(), lease.ahead_of().expect("sent ahead"));
        tokio::spawn(async move { worker.ended_more_than(ended).await })
    };
    let first_turn = turn_of(&ahead[0]);
    drop(second);
    tokio::time::timeout(Duration::from_secs(5), first_turn)
        .await
        .expect("the first waiting runs when a thread ends its request")
        .unwrap();
}

#[tokio::test]
async fn the_second_request_waiting_on_a_threaded_worker_runs_after_two_endings() {
    let pool = threaded_worker_sending_ahead(2);
    measured_short(&pool).await;
    let running = [
        pool.acquire_fresh().await.unwrap(),
        pool.acquire_fresh().await.unwrap(),
    ];
    let first_ahead = pool.acquire_fresh().await.unwrap();
    let second_ahead = pool.acquire_fresh().await.unwrap();
    let worker = first_ahead.worker().clone();
    let (ended, ended_second) = (
        first_ahead.ahead_of().expect("sent ahead"),
        second_ahead.ahead_of().expect("sent ahead"),
    );
    assert_eq!(ended_second, ended + 1);
    let second_turn = tokio::spawn({
        let worker = worker.clone();
        async move { worker.ended_more_than(ended_second).await }
    });
    let [a, b] = running;
    drop(a);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!second_turn.is_finished(), "one ending is the first's turn");
    drop(b);
    tokio::time::timeout(Duration::from_secs(5), second_turn)
        .await
        .expect("the second ending is its turn")
        .unwrap();
}
