//! One script request on a pool's workers, for buffered and streamed responses alike.
//!
//! [`lease_and_connect`] takes a slot from the pool's queue and a connection to its worker;
//! [`call`] runs the FastCGI exchange on it, tries another worker when the failure allows, and
//! gives the reply to a [`StdoutSink`] (a response buffer, or the channel of a streamed
//! response). Both paths come through here, so that the queue and retry metrics, the status
//! page's view of the worker (its current request, its served count), the stderr rate limit and
//! what a failure does to a worker are the same for both: two copies of this loop had drifted
//! apart.
//!
//! Failure rules (docs/request-lifecycle.md, step 10 "Failures"), decided by [`ScriptError`]:
//! - the worker could not be reached: nothing was sent, so any request goes to another worker (at
//!   most [`MAX_CONNECT_ATTEMPTS`] attempts);
//! - the worker failed before any response byte, or died mid-reply while nothing of the reply
//!   had left for the client (a buffered response): GET, HEAD and OPTIONS are retried on another
//!   worker (at most [`MAX_IDEMPOTENT_RETRIES`] times, so a request is not lost when workers die
//!   in quick succession), everything else gets 502 (a POST never runs twice);
//! - the per-pool deadline expired: 504, and the master kills that worker (pid known exactly); a
//!   threaded worker first finishes its other requests, taking no new one.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use protocol::control::{KillReason, ToMaster};

use crate::http::body::BufferedBody;
use crate::state::State;
use crate::upstream::dispatch::{Lease, PoolDispatch, QueueBudget, WorkerHandle};
use crate::upstream::script_error::{ScriptError, WorkerFate};
use crate::upstream::worker_connection::{ExchangeError, RequestWriter, StdoutSink};
use crate::upstream::worker_stderr::WorkerStderr;

/// Attempts when the worker could not even be reached (nothing was sent) for a reason of
/// paddock's own, such as no descriptor left.
pub(crate) const MAX_CONNECT_ATTEMPTS: usize = 3;
/// Slots skipped because their worker turned out to be gone (socket refused or removed), per
/// request. Such a slot is a worker that died before the master said so: the connect fails at
/// once, marks the worker dead (its slots never come back) and sends nothing, so trying the
/// next slot is always safe. These have their own, larger bound than `MAX_CONNECT_ATTEMPTS`:
/// with workers killed one after another, the slot of each victim is usually handed to the
/// request at the head of the queue, and one request met three in a row (a CI run of the
/// builtin chaos test: a GET failed with 502 after three connects to removed sockets, with
/// live workers in the pool). The bound only guards against a pool whose every new worker is
/// gone before it is used; the master stops such a crash loop long before.
pub(crate) const MAX_STALE_SLOTS: usize = 16;
/// Retries of an idempotent request whose worker failed before answering.
/// Three, so that in a pool of four each worker is tried once (nginx's `proxy_next_upstream_tries`
/// defaults to every upstream): with workers killed every 100 ms under a CPU hog, two retries
/// still lost about one GET in ten thousand. Bounded, because a request that itself crashes
/// its worker must not take the whole pool down one worker after another.
pub(crate) const MAX_IDEMPOTENT_RETRIES: usize = 3;

/// What every attempt of one script request sends, and how the request shows on the status page.
pub(crate) struct ScriptCall<'a> {
    pub pool: &'a str,
    pub request_id: &'a str,
    pub method: &'a Method,
    /// The URL path without the query string.
    pub path: &'a str,
    pub body: &'a BufferedBody,
    /// The request as its worker gets it (CGI meta-variables, or an HTTP head).
    pub request: &'a dyn RequestWriter,
}

impl ScriptCall<'_> {
    fn idempotent(&self) -> bool {
        matches!(*self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

/// Runs `call` on a worker of its pool, passing the worker's reply to `sink`. `Ok` once the
/// worker ended the request; its slot is free again by then. A sink that has taken any byte is
/// given a second worker's reply only if it can forget the first (nothing reached the client).
pub(crate) async fn call(
    state: &State,
    call: &ScriptCall<'_>,
    sink: &mut impl StdoutSink,
) -> Result<(), ScriptError> {
    let pool = state.pools.get(call.pool).map(|p| p.clone());
    let Some(pool) = pool else {
        let error = ScriptError::NoSuchPool;
        error.log(call.pool, call.request_id, None, false);
        return Err(error);
    };
    let timeout = Duration::from_millis(pool.spec().request_timeout_ms);
    let mut retries = 0;
    // One `queue_timeout` for every wait of the request, retries included.
    let mut queue_budget = QueueBudget::of(&pool);
    loop {
        // A retry never trusts a kept connection: after a worker died, each of its other slots
        // still holds one, and writing the request to it only fails again (a threaded worker
        // has `threads` of them, more than the retries). A new connection to a dead worker is
        // refused at once, which marks the worker gone.
        let fresh = retries > 0;
        let mut lease =
            lease_and_connect(state, &pool, call.request_id, fresh, &mut queue_budget).await?;
        let worker = lease.worker().clone();
        let ahead_of = lease.ahead_of();
        let mut stderr = WorkerStderr::new(call.pool, worker.pid, call.request_id);
        let on_worker = || {
            state.metrics.worker_request(
                call.pool,
                &worker.activity,
                call.request_id,
                call.method,
                call.path,
            )
        };
        // A request sent ahead shows on its worker, and has its deadline, from when the request
        // before it ends (it waits behind it in the worker's socket until then). Should the
        // client go away while it waits, the worker is given that one's deadline too.
        match ahead_of {
            None => lease.begin_request(tokio::time::Instant::now() + timeout, Some(on_worker())),
            Some(_) => lease.begin_request(tokio::time::Instant::now() + 2 * timeout, None),
        }
        let mut began_ahead = None;
        let fastcgi_id = lease.fastcgi_id();
        let connection = lease
            .open_connection()
            .expect("lease_and_connect hands out connected slots");
        let exchange = connection.exchange(fastcgi_id, call.request, call.body, sink, |b| {
            stderr.write(b)
        });
        let deadline = async {
            if let Some(ended) = ahead_of {
                worker.ended_more_than(ended).await;
                began_ahead = Some(on_worker());
            }
            tokio::time::sleep(timeout).await;
        };
        let outcome = tokio::select! {
            outcome = exchange => Ok(outcome),
            () = deadline => Err(()),
        };
        if ahead_of.is_some() {
            lease.set_activity(began_ahead.take().unwrap_or_else(on_worker));
        }
        let error = match outcome {
            Ok(Ok(reply)) => {
                if let Some(usage) = reply.usage {
                    state
                        .metrics
                        .request_usage(call.pool, &worker.activity, usage);
                }
                if !reply.reusable {
                    lease.discard_connection();
                }
                // The slot is free at the end of the request, whatever the client's pace.
                drop(lease);
                return Ok(());
            }
            Ok(Err(e)) => ScriptError::Exchange(e),
            Err(()) => ScriptError::Deadline(timeout),
        };
        if matches!(error, ScriptError::Exchange(ExchangeError::ClientGone)) {
            // The worker may still be running the script: its slot comes back when it is done.
            lease.client_gone();
            error.log(call.pool, call.request_id, Some(worker.pid), false);
            return Err(error);
        }
        // Its state is unknown after a failed or abandoned exchange.
        lease.discard_connection();
        settle(state, &pool, &worker, &error);
        let retry = retries < MAX_IDEMPOTENT_RETRIES
            && error.may_retry(call.idempotent())
            && (!sink.started() || sink.restart());
        error.log(call.pool, call.request_id, Some(worker.pid), retry);
        if !retry {
            return Err(error);
        }
        retries += 1;
        state.metrics.retried(call.pool, error.retry_reason());
    }
}

/// A slot of `pool` with an open connection to its worker. Waits in the pool's queue (timed and
/// counted for the queue metrics; a caller dropped while waiting counts as a client gone), then
/// connects (`fresh`: a new connection even if the slot keeps one), and moves on to another slot
/// when a worker cannot be reached. Every wait spends from `budget`.
pub(crate) async fn lease_and_connect(
    state: &State,
    pool: &Arc<PoolDispatch>,
    request_id: &str,
    fresh: bool,
    budget: &mut QueueBudget,
) -> Result<Lease, ScriptError> {
    let mut attempts = 0;
    let mut stale = 0;
    loop {
        let queued = state.metrics.queue_entered(&pool.name);
        let mut lease = match queued.wait(pool.acquire(budget)).await {
            Ok(lease) => lease,
            Err(e) => {
                let error = ScriptError::from(e);
                error.log(&pool.name, request_id, None, false);
                return Err(error);
            }
        };
        if fresh {
            lease.discard_connection();
        }
        let error = match lease.connection() {
            Ok(_) => return Ok(lease),
            Err(e) => ScriptError::Connect(e),
        };
        // Before the lease goes back: a gone worker's slot must not return to the idle stack.
        let worker = lease.worker().clone();
        if settle(state, pool, &worker, &error) == WorkerFate::Gone {
            stale += 1;
        } else {
            attempts += 1;
        }
        let retry = attempts < MAX_CONNECT_ATTEMPTS && stale < MAX_STALE_SLOTS;
        error.log(&pool.name, request_id, Some(worker.pid), retry);
        if !retry {
            return Err(error);
        }
        state.metrics.retried(&pool.name, error.retry_reason());
    }
}

/// Does to the worker what the failure calls for, and counts a timeout; returns that fate.
fn settle(
    state: &State,
    pool: &PoolDispatch,
    worker: &WorkerHandle,
    error: &ScriptError,
) -> WorkerFate {
    if matches!(error, ScriptError::Deadline(_)) {
        state.metrics.request_timed_out(&pool.name);
    }
    let fate = error.worker_fate(pool.spec().external);
    match fate {
        WorkerFate::Keep => {}
        WorkerFate::Gone => worker.mark_dead(),
        // A threaded worker's other requests are not the hung one's victims: it retires, and is
        // killed once they are done (docs/worker-lifecycle.md, "A request that hangs").
        WorkerFate::Kill(KillReason::RequestTimeout) if worker.slots > 1 => {
            pool.retire_after_timeout(worker);
        }
        WorkerFate::Kill(reason) => {
            worker.mark_dead();
            state.tell_master(ToMaster::KillWorker {
                pool: pool.name.clone(),
                worker: worker.id,
                reason,
            });
        }
    }
    fate
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workers that died before the master reported them: their slots are on top of the idle
    /// stack and their sockets are gone. The request skips all of them and reaches the live
    /// worker under them (with three connect attempts in all, it failed with 502).
    #[tokio::test]
    async fn a_request_skips_every_slot_of_a_gone_worker() {
        let dir = tempfile::tempdir().unwrap();
        let live_socket = dir.path().join("live.sock");
        let _live = std::os::unix::net::UnixListener::bind(&live_socket).unwrap();
        let state = crate::state::tests::state_for(crate::metrics::tests::spec());
        let pool = state.pools.get("php").unwrap().clone();
        pool.worker_up(1, 100, live_socket, 1);
        // Pushed last, popped first: four workers whose sockets were removed when they died.
        for id in 2..=5 {
            let removed = dir.path().join(format!("gone-{id}.sock"));
            pool.worker_up(id, 100 + id as u32, removed, 1);
        }
        let lease = lease_and_connect(&state, &pool, "test", false, &mut QueueBudget::of(&pool))
            .await
            .expect("the live worker is reached");
        assert_eq!(lease.worker().pid, 100);
        for id in 2..=5 {
            assert!(
                !pool.worker(id).unwrap().is_alive(),
                "worker {id} marked dead"
            );
        }
    }
}
