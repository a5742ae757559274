//! What went wrong with a script request, classified once.
//!
//! Every failure on the way to a worker's answer (no slot, no connection, a failed or overrun
//! exchange, a reply that cannot be read back) becomes one [`ScriptError`]. In the manner of
//! pingora-error it says who failed ([`ErrorSource`]: the client, the worker, or paddock itself)
//! and whether another worker may be tried ([`Retry`]). Everything else follows from that one
//! classification: the status code, the `reason` label of `paddock_worker_retries_total`, the log
//! level, and what becomes of the worker ([`WorkerFate`]). The buffered and the streamed path
//! both use it (through `worker_call`), so that they cannot come to treat a failure differently.

use std::io;
use std::time::Duration;

use http::{Response, StatusCode};
use protocol::control::KillReason;
use tracing::{debug, error, warn};

use crate::http::response::{self, Body};
use crate::upstream::dispatch::AdmissionError;
use crate::upstream::worker_connection::ExchangeError;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorSource {
    /// The client went away.
    Client,
    /// The worker (or the application behind it) failed, or its pool cannot start any.
    Worker,
    /// paddock itself: a full queue, no descriptors left, a spool file that cannot be read.
    Internal,
}

/// Whether the request may go to another worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Nothing reached a worker: any request may go to another one.
    AnyMethod,
    /// The worker failed before any response byte, or went away in the middle of its reply (a
    /// killed process): GET, HEAD and OPTIONS may go to another one, as long as nothing of the
    /// reply has left for the client (the caller asks its sink); anything else may have had
    /// effects already and never runs twice.
    Idempotent,
    Never,
}

/// What a failure means for the worker that had the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkerFate {
    /// Not at fault, or not beyond its connection (which is dropped either way).
    Keep,
    /// Its socket refuses connections or is gone: no more requests until the master reports it.
    Gone,
    /// It can no longer be trusted: no more requests, and the master kills it.
    Kill(KillReason),
}

/// A script request failed; the variant names the step that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScriptError {
    #[error("the site names a pool that does not exist")]
    NoSuchPool,
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    #[error("cannot connect to the worker: {0}")]
    Connect(io::Error),
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error("the request overran the pool's {0:?} deadline")]
    Deadline(Duration),
    #[error("cannot read back a spooled response: {0}")]
    ReadBack(io::Error),
}

impl ScriptError {
    pub(crate) fn source(&self) -> ErrorSource {
        match self {
            ScriptError::Exchange(ExchangeError::ClientGone) => ErrorSource::Client,
            ScriptError::Admission(AdmissionError::Failing { .. }) => ErrorSource::Worker,
            ScriptError::Connect(e) if worker_gone(e) => ErrorSource::Worker,
            ScriptError::Exchange(ExchangeError::Spool(_) | ExchangeError::Unsendable(_)) => {
                ErrorSource::Internal
            }
            ScriptError::Exchange(_) | ScriptError::Deadline(_) => ErrorSource::Worker,
            ScriptError::NoSuchPool
            | ScriptError::Admission(_)
            | ScriptError::Connect(_)
            | ScriptError::ReadBack(_) => ErrorSource::Internal,
        }
    }

    pub(crate) fn retry(&self) -> Retry {
        match self {
            ScriptError::Connect(_) => Retry::AnyMethod,
            ScriptError::Exchange(e) if !e.response_started() => Retry::Idempotent,
            // The connection died mid-reply (the process was killed, or crashed): the reply is
            // lost, not wrong; the method decides as before any byte.
            ScriptError::Exchange(ExchangeError::Closed { .. } | ExchangeError::Read { .. }) => {
                Retry::Idempotent
            }
            _ => Retry::Never,
        }
    }

    /// Whether the request may go to another worker, for a request of this kind.
    pub(crate) fn may_retry(&self, idempotent: bool) -> bool {
        match self.retry() {
            Retry::AnyMethod => true,
            Retry::Idempotent => idempotent,
            Retry::Never => false,
        }
    }

    /// What becomes of the worker. Only paddock's own workers are marked or killed: an external
    /// pool's server is not paddock's to judge, and its one entry must stay usable.
    pub(crate) fn worker_fate(&self, external: bool) -> WorkerFate {
        match self {
            _ if external => WorkerFate::Keep,
            ScriptError::Connect(e) if worker_gone(e) => WorkerFate::Gone,
            ScriptError::Exchange(e) if e.worker_is_broken() => {
                WorkerFate::Kill(KillReason::ProtocolError)
            }
            ScriptError::Deadline(_) => WorkerFate::Kill(KillReason::RequestTimeout),
            _ => WorkerFate::Keep,
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ScriptError::Admission(_) => StatusCode::SERVICE_UNAVAILABLE,
            ScriptError::Deadline(_) => StatusCode::GATEWAY_TIMEOUT,
            // nginx's "client closed request": nobody receives it, but the access log shows it.
            ScriptError::Exchange(ExchangeError::ClientGone) => {
                StatusCode::from_u16(499).expect("a valid status code")
            }
            _ if self.source() == ErrorSource::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The `reason` label of `paddock_worker_retries_total` when the request goes to another
    /// worker after this failure.
    pub(crate) fn retry_reason(&self) -> &'static str {
        match self {
            ScriptError::Connect(_) => "unreachable",
            _ => "failed",
        }
    }

    /// The client's answer: paddock's own error page, never the internals of the failure.
    pub(crate) fn response(&self) -> Response<Body> {
        let status = self.status();
        match self {
            ScriptError::Admission(AdmissionError::Failing { reason, .. }) => {
                response::unavailable(reason, 5)
            }
            ScriptError::Admission(_) => {
                response::unavailable("the server is busy; please retry shortly", 1)
            }
            ScriptError::NoSuchPool => response::error(status, &self.to_string()),
            ScriptError::Connect(_) => response::error(status, "no worker could be reached"),
            ScriptError::Deadline(_) => {
                response::error(status, "the application did not answer in time")
            }
            ScriptError::ReadBack(_) | ScriptError::Exchange(ExchangeError::Spool(_)) => {
                response::error(status, "the response could not be stored")
            }
            ScriptError::Exchange(ExchangeError::Unsendable(_)) => response::error(
                status,
                "the request is too large to pass to the application",
            ),
            ScriptError::Exchange(_) => response::error(status, "the application failed to answer"),
        }
    }

    /// Logs the failure at the level its classification calls for: the client's doing and a
    /// turned-away request at debug (a rejection is counted in the metrics; logging each one
    /// would flood the log under the very overload that causes them), a missing pool at error,
    /// everything else at warn. `pid` is the worker's, when one had the request; the request id
    /// ties every attempt of a retried request to its access-log line.
    pub(crate) fn log(&self, pool: &str, request_id: &str, pid: Option<u32>, retry: bool) {
        let source = self.source();
        match self {
            ScriptError::NoSuchPool => error!(pool, request_id, "{self}"),
            ScriptError::Admission(_) => {
                debug!(pool, request_id, error = %self, "request turned away")
            }
            _ if source == ErrorSource::Client => debug!(
                pool,
                request_id,
                pid,
                error = %self,
                "client went away during a script request"
            ),
            ScriptError::Connect(_) => warn!(pool, request_id, pid, error = %self, retry,
                ?source, "worker unreachable"),
            ScriptError::Deadline(timeout) => warn!(
                pool,
                request_id,
                pid,
                ?timeout,
                "request timed out; worker will be killed"
            ),
            _ => warn!(pool, request_id, pid, error = %self, retry, ?source, "worker failed"),
        }
    }
}

/// A refused or missing socket means the worker is gone; other connect errors (EMFILE) are
/// paddock's own.
fn worker_gone(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> io::Error {
        io::Error::from(io::ErrorKind::ConnectionRefused)
    }

    #[test]
    fn an_unreachable_worker_is_retried_for_any_method_and_only_a_gone_one_is_dropped() {
        let gone = ScriptError::Connect(refused());
        assert!(gone.may_retry(false));
        assert_eq!(gone.worker_fate(false), WorkerFate::Gone);
        assert_eq!(gone.worker_fate(true), WorkerFate::Keep, "external pool");
        assert_eq!(gone.retry_reason(), "unreachable");
        // Out of descriptors: paddock's problem, the worker is fine.
        let emfile = ScriptError::Connect(io::Error::from_raw_os_error(24));
        assert_eq!(emfile.source(), ErrorSource::Internal);
        assert_eq!(emfile.worker_fate(false), WorkerFate::Keep);
    }

    #[test]
    fn a_failure_before_any_byte_is_retried_only_for_idempotent_methods() {
        let closed = ScriptError::Exchange(ExchangeError::Closed {
            response_started: false,
        });
        assert!(closed.may_retry(true));
        assert!(!closed.may_retry(false));
        assert_eq!(closed.worker_fate(false), WorkerFate::Keep);
        assert_eq!(closed.status(), StatusCode::BAD_GATEWAY);
        let abandoned = ScriptError::Exchange(ExchangeError::Closed {
            response_started: true,
        });
        // A reply cut off by the worker's death: a GET may still go to another worker (if its
        // sink can start over); a POST never.
        assert!(abandoned.may_retry(true));
        assert!(!abandoned.may_retry(false));
        let broken = ScriptError::Exchange(ExchangeError::Protocol("bad record".into()));
        assert!(!broken.may_retry(true), "a wrong reply is not retried");
        assert_eq!(
            abandoned.worker_fate(false),
            WorkerFate::Kill(KillReason::ProtocolError)
        );
    }

    #[test]
    fn status_codes_follow_the_source() {
        let timeout = ScriptError::Deadline(Duration::from_secs(1));
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            timeout.worker_fate(false),
            WorkerFate::Kill(KillReason::RequestTimeout)
        );
        assert_eq!(timeout.worker_fate(true), WorkerFate::Keep);
        let full = ScriptError::Admission(AdmissionError::QueueFull("php".into()));
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(full.response().headers().contains_key("retry-after"));
        let spool = ScriptError::Exchange(ExchangeError::Spool(io::Error::other("disk full")));
        assert_eq!(spool.source(), ErrorSource::Internal);
        assert_eq!(spool.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let gone = ScriptError::Exchange(ExchangeError::ClientGone);
        assert_eq!(gone.source(), ErrorSource::Client);
        assert!(!gone.may_retry(true));
    }
}
