//! Automatic certificates from an ACME server (RFC 8555), through the `instant-acme` client.
//!
//! The ACME client runs in the front end: it owns the listeners that must answer the
//! challenges (HTTP-01 on a plain listener, TLS-ALPN-01 in the HTTPS listener's certificate
//! resolver) and the certificate stores that a new certificate is swapped into, and it has the
//! async runtime for the HTTPS calls to the CA. One task per listener or site with `acme`.
//!
//! # Layout
//! - [`challenges`] — the answers published while an order waits for validation.
//! - `issue` — one order: account, authorizations, validation, finalization.
//! - `renewal` — the task: stored certificate, renewal time, retries, swap-in.
//! - `schedule` — renewal time and retry backoff, pure.
//! - `storage` — the state directory: account and certificates, keys 0600.
//! - `target` — whose certificate it is (a listener's or a site's) and where it is installed.

pub(crate) mod challenges;
mod issue;
mod renewal;
mod schedule;
mod storage;
mod target;

use std::sync::Arc;

use protocol::control::{AcmeSpec, ListenerSpec, RunAs, SiteAcmeSpec};

pub(crate) use self::challenges::Challenges;
use self::renewal::Renewal;
use self::storage::Storage;
pub(crate) use self::storage::StorageError;
use self::target::Target;
use crate::conn::tls::CertificateStore;
use crate::metrics::certificates::CertificateMetrics;

/// A listener or site with `acme`, its state directory prepared, ready to be started.
#[derive(Debug)]
pub(crate) struct Prepared {
    spec: AcmeSpec,
    target: Target,
    storage: Storage,
}

/// Creates the listener's state directories, if it has `acme`. Runs before the front end drops
/// privileges, so that it can create them under a root-owned parent and hand them to `run_as`.
pub(crate) fn prepare_listener(
    listener: &ListenerSpec,
    store: &Arc<CertificateStore>,
    run_as: Option<&RunAs>,
) -> Result<Option<Prepared>, StorageError> {
    let Some(spec) = &listener.acme else {
        return Ok(None);
    };
    prepare(spec, Target::Listener(store.clone()), run_as).map(Some)
}

/// Creates a site's state directories; its certificate goes to every HTTPS listener in
/// `stores`.
pub(crate) fn prepare_site(
    site: &SiteAcmeSpec,
    stores: &[Arc<CertificateStore>],
    run_as: Option<&RunAs>,
) -> Result<Prepared, StorageError> {
    let target = Target::Site {
        site: site.site.clone(),
        stores: stores.to_vec(),
    };
    prepare(&site.acme, target, run_as)
}

fn prepare(
    spec: &AcmeSpec,
    target: Target,
    run_as: Option<&RunAs>,
) -> Result<Prepared, StorageError> {
    let storage = Storage::new(spec, &target.path());
    storage.prepare(run_as)?;
    Ok(Prepared {
        spec: spec.clone(),
        target,
        storage,
    })
}

/// Starts the renewal task of a prepared listener or site.
pub(crate) fn start(prepared: Prepared, challenges: Arc<Challenges>, metrics: CertificateMetrics) {
    tokio::spawn(
        Renewal {
            spec: prepared.spec,
            target: prepared.target,
            storage: prepared.storage,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            challenges,
            metrics,
        }
        .run(),
    );
}
