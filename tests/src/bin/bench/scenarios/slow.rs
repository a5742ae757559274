//! Slow-request clients for the scaling scenarios: each request asks /sleep.php to sleep, and the
//! script answers with its pid and when it started and ended (microseconds since the epoch), so
//! we know exactly when each request reached a worker — the same way for every server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::client::Connection;

use crate::servers::Workers;

/// Microseconds since the epoch (the clock PHP's microtime reads too).
pub(crate) fn now_us() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_micros() as f64)
}

/// One request, with times in milliseconds relative to the scenario's zero.
#[derive(Debug, Clone)]
pub(crate) struct Timed {
    pub sent_ms: f64,
    pub done_ms: f64,
    pub ok: bool,
    /// When PHP started and finished the script, if it answered.
    pub ran_ms: Option<(f64, f64)>,
}

/// Sends `GET /sleep.php?ms=…` on `conn` and times it against `zero_us`.
pub(crate) fn timed_request(conn: &mut Connection, sleep_ms: u32, zero_us: f64) -> Timed {
    timed_get(conn, &format!("/sleep.php?ms={sleep_ms}"), zero_us)
}

/// [`timed_request`] for any path; `ran_ms` is filled only if the answer is `pid start end`.
pub(crate) fn timed_get(conn: &mut Connection, path: &str, zero_us: f64) -> Timed {
    let sent_ms = (now_us() - zero_us) / 1000.0;
    let response = conn.request("GET", path, &[], b"");
    let done_ms = (now_us() - zero_us) / 1000.0;
    let mut timed = Timed {
        sent_ms,
        done_ms,
        ok: false,
        ran_ms: None,
    };
    if let Ok(response) = response {
        timed.ok = response.status == 200;
        let text = response.text();
        let fields: Vec<f64> = text
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        if let [_pid, start, end] = fields[..] {
            timed.ran_ms = Some(((start - zero_us) / 1000.0, (end - zero_us) / 1000.0));
        }
    }
    timed
}

/// The first time (ms) at or after `from_ms` at which `target` scripts were running at once,
/// and the highest number that ever ran at once.
pub(crate) fn concurrency(requests: &[Timed], target: usize, from_ms: f64) -> (Option<f64>, usize) {
    let mut events: Vec<(f64, i32)> = requests
        .iter()
        .filter_map(|r| r.ran_ms)
        .flat_map(|(start, end)| [(start, 1), (end, -1)])
        .collect();
    // Ends before starts at the same instant: a worker that finishes and starts anew is not two.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut running, mut max, mut reached) = (0i32, 0usize, None);
    for (time, delta) in events {
        running += delta;
        max = max.max(running.max(0) as usize);
        if reached.is_none() && time >= from_ms && running as usize >= target {
            reached = Some(time);
        }
    }
    (reached, max)
}

/// Polls the number of worker processes every 5 ms on a thread until `stop`; reports the first
/// time (ms after `zero_us`) the count reached `target`.
#[derive(Debug)]
pub(crate) struct WorkerWatch {
    stop: Arc<AtomicBool>,
    reached: Arc<Mutex<Option<f64>>>,
    max: Arc<Mutex<usize>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WorkerWatch {
    pub(crate) fn start(
        workers: Workers,
        target: usize,
        zero_us: f64,
        limit: Duration,
    ) -> WorkerWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let reached = Arc::new(Mutex::new(None));
        let max = Arc::new(Mutex::new(0));
        let thread = {
            let (stop, reached, max) = (stop.clone(), reached.clone(), max.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + limit;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let count = workers.pids().len();
                    let now_ms = (now_us() - zero_us) / 1000.0;
                    {
                        let mut max = max.lock().unwrap();
                        *max = (*max).max(count);
                    }
                    let mut reached = reached.lock().unwrap();
                    if reached.is_none() && count >= target && now_ms >= 0.0 {
                        *reached = Some(now_ms);
                    }
                    drop(reached);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        WorkerWatch {
            stop,
            reached,
            max,
            thread: Some(thread),
        }
    }

    /// Stops polling; (first time the target was reached, most workers seen).
    pub(crate) fn finish(mut self) -> (Option<f64>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let reached = *self.reached.lock().unwrap();
        let max = *self.max.lock().unwrap();
        (reached, max)
    }
}

/// `n` clients, each with its own connection opened beforehand, send one request for
/// `/sleep.php?ms=SLEEP_MS` at the same instant (a barrier). Zero is the moment of release. Also
/// when all `n` workers existed, and the most that did.
pub(crate) fn burst(
    addr: SocketAddr,
    n: usize,
    sleep_ms: u32,
    workers: &Workers,
) -> (Vec<Timed>, Option<f64>, usize) {
    burst_of(addr, n, &format!("/sleep.php?ms={sleep_ms}"), workers, n)
}

/// [`burst`] for any `path`, waiting for `target_workers` worker processes (a threaded pool
/// needs fewer processes than requests).
pub(crate) fn burst_of(
    addr: SocketAddr,
    n: usize,
    path: &str,
    workers: &Workers,
    target_workers: usize,
) -> (Vec<Timed>, Option<f64>, usize) {
    let barrier = Arc::new(Barrier::new(n + 1));
    let zero = Arc::new(Mutex::new(0.0));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (barrier, zero, path) = (barrier.clone(), zero.clone(), path.to_string());
            std::thread::spawn(move || {
                let conn = Connection::open(addr);
                barrier.wait();
                // The main thread set zero just before it reached the barrier.
                let zero_us = *zero.lock().unwrap();
                match conn {
                    Ok(mut conn) => timed_get(&mut conn, &path, zero_us),
                    Err(_) => Timed {
                        sent_ms: 0.0,
                        done_ms: f64::NAN,
                        ok: false,
                        ran_ms: None,
                    },
                }
            })
        })
        .collect();
    let zero_us = now_us();
    *zero.lock().unwrap() = zero_us;
    let watch = WorkerWatch::start(
        workers.clone(),
        target_workers,
        zero_us,
        Duration::from_secs(15),
    );
    barrier.wait();
    let results: Vec<Timed> = threads
        .into_iter()
        .map(|t| t.join().expect("burst client"))
        .collect();
    let (all_workers, max_workers) = watch.finish();
    (results, all_workers, max_workers)
}
