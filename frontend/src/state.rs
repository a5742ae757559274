//! State shared by every connection of the front end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use protocol::control::{FrontendSpec, SiteSpec, ToFrontend, ToMaster};
use tokio::sync::mpsc::UnboundedSender;

use crate::access_log::AccessLog;
use crate::dispatch::PoolDispatch;
use crate::tls::CertificateStore;

#[derive(Debug)]
pub struct State {
    pub spec: FrontendSpec,
    pub pools: DashMap<String, Arc<PoolDispatch>>,
    to_master: UnboundedSender<ToMaster>,
    /// Distinguishes request ids across front-end restarts.
    boot: u32,
    requests: AtomicU64,
    /// One per HTTPS listener, reloaded on request from the master.
    certificates: Vec<Arc<CertificateStore>>,
    pub access_log: Option<Arc<AccessLog>>,
}

impl State {
    pub fn new(
        spec: FrontendSpec,
        to_master: UnboundedSender<ToMaster>,
        certificates: Vec<Arc<CertificateStore>>,
        access_log: Option<Arc<AccessLog>>,
    ) -> Self {
        let pools = spec
            .pools
            .iter()
            .map(|p| (p.name.clone(), Arc::new(PoolDispatch::new(p.clone()))))
            .collect();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self {
            spec,
            pools,
            to_master,
            boot: nanos ^ std::process::id().rotate_left(16),
            requests: AtomicU64::new(0),
            certificates,
            access_log,
        }
    }

    /// A short id, unique per front-end run, for logs, the worker and the `X-Request-Id` header.
    pub fn next_request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:x}", self.boot)
    }

    pub fn tell_master(&self, message: ToMaster) {
        // The master going away ends this process through the control task; nothing to do here.
        let _ = self.to_master.send(message);
    }

    /// The site for a `Host` value (see [`crate::vhost`]).
    pub fn site_for(&self, host: Option<&str>) -> &SiteSpec {
        crate::vhost::select(&self.spec.sites, host)
    }

    /// Applies a worker event from the master.
    pub fn apply(&self, message: &ToFrontend) {
        match message {
            ToFrontend::WorkerUp {
                pool,
                worker,
                pid,
                socket,
                slots,
            } => {
                if let Some(p) = self.pools.get(pool) {
                    p.worker_up(*worker, *pid, socket.clone(), *slots);
                }
            }
            ToFrontend::WorkerDown { pool, worker, .. } => {
                if let Some(p) = self.pools.get(pool) {
                    p.worker_down(*worker);
                }
            }
            ToFrontend::PoolStatus { pool, failing } => {
                if let Some(p) = self.pools.get(pool) {
                    p.set_failing(failing.clone());
                }
            }
            ToFrontend::ReloadCertificates => {
                for store in &self.certificates {
                    if let Err(e) = store.reload() {
                        tracing::error!(error = %e, "certificate reload failed; the previous certificates stay in use");
                    }
                }
            }
            ToFrontend::ReopenLogs => {
                if let Some(log) = &self.access_log {
                    log.reopen();
                }
            }
            ToFrontend::WorkerStats { .. }
            | ToFrontend::Configure(_)
            | ToFrontend::Shutdown { .. } => {}
        }
    }
}
