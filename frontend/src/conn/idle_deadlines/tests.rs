//! In paused tokio time: the timers take no wall-clock time, so a loaded machine cannot race them.

use std::task::Poll;
use std::time::Duration;

use tokio::sync::watch;

use super::*;

/// A stand-in for a parked connection: waits until `at` (or `linger` after a stop), as
/// `conn::http1_session` does; resolves to the instant it saw its deadline pass and whether the
/// stop ended it.
async fn parked(idle: Arc<IdleDeadlines>, at: Instant, linger: Duration) -> (Instant, bool) {
    let mut timer = idle.timer();
    let mut linger_at: Option<Instant> = None;
    std::future::poll_fn(|cx| loop {
        if linger_at.is_none() && idle.stopping() {
            linger_at = Some(Instant::now() + linger);
        }
        let wake = linger_at.map_or(at, |l| l.min(at));
        match timer.poll_until(wake, linger_at.is_some(), cx) {
            Wait::Armed => return Poll::Pending,
            Wait::Stopping => continue,
            Wait::Due => return Poll::Ready((Instant::now(), linger_at.is_some_and(|l| l <= at))),
        }
    })
    .await
}

fn entries(idle: &IdleDeadlines) -> (usize, usize) {
    let table = idle.lock();
    (table.entries.len(), table.order.len())
}

#[tokio::test(start_paused = true)]
async fn each_parked_connection_is_woken_at_its_own_deadline() {
    let idle = IdleDeadlines::new();
    let (_stop, stopped) = watch::channel(None);
    let _task = tokio::spawn(idle.clone().run(stopped));
    let start = Instant::now();
    let late = tokio::spawn(parked(
        idle.clone(),
        start + Duration::from_secs(75),
        Duration::ZERO,
    ));
    tokio::task::yield_now().await;
    // Armed after the later one: the task must wake earlier than it had planned.
    let early = tokio::spawn(parked(
        idle.clone(),
        start + Duration::from_secs(10),
        Duration::ZERO,
    ));
    let (woke, _) = early.await.unwrap();
    assert_eq!(woke - start, Duration::from_secs(10));
    let (woke, _) = late.await.unwrap();
    assert_eq!(woke - start, Duration::from_secs(75));
    assert_eq!(entries(&idle), (0, 0), "a finished wait leaves the table");
}

#[tokio::test(start_paused = true)]
async fn a_stop_wakes_every_parked_connection_for_its_linger() {
    let idle = IdleDeadlines::new();
    let (stop, stopped) = watch::channel(None);
    let _task = tokio::spawn(idle.clone().run(stopped));
    let start = Instant::now();
    let waits: Vec<_> = (0..3)
        .map(|_| {
            let at = start + Duration::from_secs(75);
            tokio::spawn(parked(idle.clone(), at, Duration::from_secs(1)))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(entries(&idle), (3, 3));
    stop.send(Some(Duration::from_secs(30))).unwrap();
    for wait in waits {
        let (woke, by_stop) = wait.await.unwrap();
        assert!(by_stop);
        assert_eq!(
            woke - start,
            Duration::from_secs(6),
            "the stop at 5 s plus the linger"
        );
    }
    // A connection that parks after the stop takes its linger at once.
    let after = parked(
        idle.clone(),
        Instant::now() + Duration::from_secs(75),
        Duration::from_secs(1),
    );
    let (woke, by_stop) = after.await;
    assert!(by_stop);
    assert_eq!(woke - start, Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_wait_leaves_the_table_and_a_moved_deadline_replaces_the_old_one() {
    let idle = IdleDeadlines::new();
    let mut timer = idle.timer();
    let waker = std::task::Waker::noop();
    let cx = std::task::Context::from_waker(waker);
    let now = Instant::now();
    assert_eq!(timer.poll_until(now, false, &cx), Wait::Due);
    assert_eq!(entries(&idle), (0, 0), "a passed deadline is not armed");
    assert_eq!(
        timer.poll_until(now + Duration::from_secs(5), false, &cx),
        Wait::Armed
    );
    assert_eq!(
        timer.poll_until(now + Duration::from_secs(9), false, &cx),
        Wait::Armed
    );
    assert_eq!(entries(&idle), (1, 1), "one entry, at its latest deadline");
    assert_eq!(
        idle.lock().order.first().unwrap().0,
        now + Duration::from_secs(9)
    );
    drop(timer);
    assert_eq!(entries(&idle), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_connection_arming_once_the_stop_came_is_told_so() {
    let idle = IdleDeadlines::new();
    idle.stop_now();
    let mut timer = idle.timer();
    let cx = std::task::Context::from_waker(std::task::Waker::noop());
    let at = Instant::now() + Duration::from_secs(75);
    assert_eq!(timer.poll_until(at, false, &cx), Wait::Stopping);
    assert_eq!(entries(&idle), (0, 0));
    assert_eq!(timer.poll_until(at, true, &cx), Wait::Armed);
}

/// Counts its wake-ups.
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A real socket put to sleep in the listener's epoll set: it leaves tokio, the client's bytes
/// wake its connection through the set, and taken back it reads them. (Real time: epoll.)
#[tokio::test]
async fn a_sleeping_socket_wakes_its_connection_when_the_client_speaks() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let idle = IdleDeadlines::with_deep_park_after(Duration::from_millis(10));
    let (_stop, stopped) = watch::channel(None);
    let _task = tokio::spawn(idle.clone().run(stopped));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let mut socket = ClientSocket::new(server);

    let woken = Arc::new(CountingWaker(std::sync::atomic::AtomicUsize::new(0)));
    let waker = std::task::Waker::from(woken.clone());
    let cx = std::task::Context::from_waker(&waker);
    let mut timer = idle.timer();
    let far = Instant::now() + Duration::from_secs(60);
    assert_eq!(timer.poll_until(far, false, &cx), Wait::Armed);
    assert!(idle.sleep_deep(&mut socket, &timer));
    assert!(socket.is_asleep());

    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while woken.0.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "not woken by the client's bytes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    idle.wake_deep(&mut socket).unwrap();
    assert!(!socket.is_asleep());
    let mut read = [0u8; 18];
    socket.read_exact(&mut read).await.unwrap();
    assert_eq!(&read, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(
        idle.deep_park_at(far),
        Some(far + Duration::from_millis(10))
    );
}
