//! Running a hyper connection to its end: the client-facing deadlines of
//! [`crate::conn::deadlines`], a close the service asked for, and a graceful stop (HTTP/1.1 after
//! the current response, HTTP/2 with GOAWAY), with a short linger for a request already on its way.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tracing::debug;

use crate::conn::accept::StopSignal;
use crate::conn::deadlines::{Activity, Expiry};

/// How long an idle connection stays open after a stop began, for a request already on its way.
pub(super) const DRAIN_LINGER: Duration = Duration::from_millis(1000);
/// How often a lingering connection with a request under way is checked again.
const DRAIN_RECHECK: Duration = Duration::from_millis(100);
/// After a keep-alive timeout, how long an HTTP/2 client gets to take its GOAWAY.
const GOAWAY_GRACE: Duration = Duration::from_secs(1);

/// The part of a hyper connection that the connection task needs.
pub(super) trait GracefulConnection:
    Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>
{
    fn start_graceful_shutdown(self: std::pin::Pin<&mut Self>);
}

impl<I, S, B> GracefulConnection for auto::Connection<'static, I, S, TokioExecutor>
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>,
    S::Future: 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    TokioExecutor: auto::HttpServerConnExec<S::Future, B>,
{
    fn start_graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Runs a connection to its end while enforcing the deadlines, a requested close, and a stop.
/// `true` when the connection itself ended without an error (an HTTP/1.1 one may have parked).
pub(super) async fn drive<C: GracefulConnection + ?Sized>(
    mut connection: Pin<&mut C>,
    peer: SocketAddr,
    activity: &Activity,
    timeouts: &protocol::control::TimeoutsSpec,
    mut stop: StopSignal,
) -> bool {
    let mut closing = false;
    // While stopping, an idle keep-alive connection is not closed at once: a client may be
    // sending its next request right now, and would see the close instead of an answer. It gets
    // a short linger; a request that arrives in it is answered with `Connection: close`. A
    // connection that starts while a stop is under way (an HTTP/1.1 one back from parking,
    // because a request arrived) is in its linger from the start: shutting it down at once
    // would drop the request that woke it.
    let mut linger = stop
        .borrow()
        .is_some()
        .then(|| tokio::time::Instant::now() + DRAIN_LINGER);
    // One timer for the connection's life, moved only when a deadline comes earlier than the one
    // it is set for. The state changes several times a request (a read, the request's start, its
    // end), and each used to register a new timer in tokio's wheel and remove the old one; a
    // deadline that moved later (the keep-alive one, after every request) is found when the timer
    // fires early, which then sets it again. The activity record knows what the timer is set for,
    // and wakes this task only for a change that brings a deadline before it.
    let mut deadline_timer = std::pin::pin!(tokio::time::sleep_until(tokio::time::Instant::now()));
    let mut armed_for: Option<tokio::time::Instant> = None;
    let _watching = Watching(activity);
    loop {
        if let Some(at) = activity.arm(timeouts, armed_for) {
            deadline_timer.as_mut().reset(at);
            armed_for = Some(at);
        }
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = &result {
                    debug!(%peer, error = %e, "connection ended with an error");
                }
                return result.is_ok();
            }
            () = deadline_timer.as_mut(), if armed_for.is_some() => {
                armed_for = None;
                let Some((at, expiry)) = activity.next_deadline(timeouts) else { continue };
                if at > tokio::time::Instant::now() {
                    continue;
                }
                debug!(%peer, reason = expiry.describe(), "closing connection");
                if expiry == Expiry::KeepAlive {
                    // An idle connection: HTTP/1.1 closes at once, HTTP/2 sends GOAWAY first.
                    connection.as_mut().start_graceful_shutdown();
                    let _ = tokio::time::timeout(GOAWAY_GRACE, connection.as_mut()).await;
                }
                return false;
            }
            () = activity.changed.notified() => {
                if !closing && activity.close_requested() {
                    closing = true;
                    linger = None;
                    connection.as_mut().start_graceful_shutdown();
                }
            }
            () = sleep(linger), if linger.is_some() => {
                if activity.is_idle() {
                    closing = true;
                    linger = None;
                    connection.as_mut().start_graceful_shutdown();
                } else {
                    // A request is under way: its answer will carry `Connection: close`.
                    linger = Some(tokio::time::Instant::now() + DRAIN_RECHECK);
                }
            }
            changed = stop.changed(), if !closing && linger.is_none() => {
                let _ = changed;
                linger = Some(tokio::time::Instant::now() + DRAIN_LINGER);
            }
        }
    }
}

/// While alive, the activity record knows what `drive`'s timer is set for; when `drive` ends (or
/// is dropped), every deadline-making change wakes the next task that watches the connection.
struct Watching<'a>(&'a Activity);

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        self.0.disarm();
    }
}

async fn sleep(until: Option<tokio::time::Instant>) {
    match until {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::deadlines::guard_body;
    use crate::http::response;
    use protocol::control::TimeoutsSpec;

    /// A connection that never ends on its own: only a deadline ends `drive`.
    struct Endless;

    impl Future for Endless {
        type Output = Result<(), Box<dyn std::error::Error + Send + Sync>>;

        fn poll(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Self::Output> {
            std::task::Poll::Pending
        }
    }

    impl GracefulConnection for Endless {
        fn start_graceful_shutdown(self: Pin<&mut Self>) {}
    }

    fn timeouts() -> TimeoutsSpec {
        TimeoutsSpec {
            tls_handshake_ms: 1_000,
            request_header_ms: 5_000,
            request_body_ms: 5_000,
            keepalive_ms: 75_000,
            send_ms: 10_000,
        }
    }

    /// Runs `drive` on an endless connection; returns when it ends, with the time it took.
    fn drive_endless(activity: std::sync::Arc<Activity>) -> tokio::task::JoinHandle<Duration> {
        let (stop_sender, stop) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            // No stop ever comes, and a dropped sender would read as one.
            let _no_stop = stop_sender;
            let start = tokio::time::Instant::now();
            let mut connection = Endless;
            let peer = "127.0.0.1:1".parse().expect("address");
            drive(
                Pin::new(&mut connection),
                peer,
                &activity,
                &timeouts(),
                stop,
            )
            .await;
            start.elapsed()
        })
    }

    /// The timer is set for the keep-alive deadline (75 s); a response that then waits on the
    /// client brings the send deadline (10 s after it) in front of it, and the timer must move.
    #[tokio::test(start_paused = true)]
    async fn a_deadline_that_comes_earlier_moves_the_timer() {
        let activity = Activity::new();
        drop(activity.begin_request().1);
        let ended = drive_endless(activity.clone());
        tokio::time::sleep(Duration::from_secs(20)).await;
        let (_, in_flight) = activity.begin_request();
        let _waiting_body = guard_body(response::full("answer"), in_flight);
        let took = ended.await.expect("drive");
        assert_eq!(
            took.as_secs(),
            30,
            "closed at the send deadline, 20 s + 10 s"
        );
    }

    /// A deadline that moved later (a request at 50 s restarts the 75 s keep-alive) neither closes
    /// the connection at the old deadline nor lets it live past the new one.
    #[tokio::test(start_paused = true)]
    async fn a_deadline_that_moved_later_is_kept_not_the_old_one() {
        let activity = Activity::new();
        drop(activity.begin_request().1);
        let ended = drive_endless(activity.clone());
        tokio::time::sleep(Duration::from_secs(50)).await;
        drop(activity.begin_request().1);
        let took = ended.await.expect("drive");
        // An idle connection at its keep-alive deadline gets GOAWAY_GRACE to end by itself.
        assert_eq!(
            took,
            Duration::from_secs(125) + GOAWAY_GRACE,
            "closed 75 s after the second request"
        );
    }
}
