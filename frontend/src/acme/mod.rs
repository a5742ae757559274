//! Automatic certificates from an ACME server (RFC 8555), through the `instant-acme` client.
//!
//! The ACME client runs in the front end: it owns the listeners that must answer the
//! challenges (HTTP-01 on a plain listener, TLS-ALPN-01 in the HTTPS listener's certificate
//! resolver) and the certificate stores that a new certificate is swapped into, and it has the
//! async runtime for the HTTPS calls to the CA. One task per listener with `acme`.
//!
//! # Layout
//! - [`challenges`] — the answers published while an order waits for validation.
//! - `issue` — one order: account, authorizations, validation, finalization.
//! - `renewal` — the task: stored certificate, renewal time, retries, swap-in.
//! - `schedule` — renewal time and retry backoff, pure.
//! - `storage` — the state directory: account and certificates, keys 0600.

pub(crate) mod challenges;
mod issue;
mod renewal;
mod schedule;
mod storage;

use std::sync::Arc;

use protocol::control::{ListenerSpec, RunAs};

pub(crate) use self::challenges::Challenges;
use self::renewal::Renewal;
use self::storage::Storage;
pub(crate) use self::storage::StorageError;
use crate::conn::tls::CertificateStore;
use crate::metrics::certificates::CertificateMetrics;

/// A listener with `acme`, its state directory prepared, ready to be started.
#[derive(Debug)]
pub(crate) struct Prepared {
    listener: ListenerSpec,
    storage: Storage,
    store: Arc<CertificateStore>,
}

/// Creates the listener's state directories; runs before the front end drops privileges so that
/// it can create them under a root-owned parent and hand them to `run_as`.
pub(crate) fn prepare(
    listener: &ListenerSpec,
    store: &Arc<CertificateStore>,
    run_as: Option<&RunAs>,
) -> Result<Option<Prepared>, StorageError> {
    let Some(spec) = &listener.acme else {
        return Ok(None);
    };
    let storage = Storage::new(spec, &listener.name);
    storage.prepare(run_as)?;
    Ok(Some(Prepared {
        listener: listener.clone(),
        storage,
        store: store.clone(),
    }))
}

/// Starts the renewal task of a prepared listener.
pub(crate) fn start(prepared: Prepared, challenges: Arc<Challenges>, metrics: CertificateMetrics) {
    let Some(spec) = prepared.listener.acme else {
        return;
    };
    tokio::spawn(
        Renewal {
            listener: prepared.listener.name,
            spec,
            storage: prepared.storage,
            store: prepared.store,
            challenges,
            metrics,
        }
        .run(),
    );
}
