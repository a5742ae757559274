//! State shared by every connection of the front end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use dashmap::DashMap;
use protocol::control::{FrontendSpec, SiteSpec, ToFrontend, ToMaster, WorkerId};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;

use crate::acme::Challenges;
use crate::conn::tls::CertificateStore;
use crate::http::access_log::AccessLog;
use crate::metrics::report::{LoadingWorker, PoolFigures, StatusReport, WorkerReport};
use crate::metrics::{KnownBefore, Metrics};
use crate::site_rules::{CompiledSite, RuleFiles, SiteRuleSets};
use crate::static_files::file_cache::FileCache;
use crate::upstream::dispatch::PoolDispatch;

#[derive(Debug)]
pub(crate) struct State {
    /// The configuration; replaced as a whole by a reload, so each request reads one consistent
    /// snapshot (requests in flight keep theirs).
    spec: ArcSwap<FrontendSpec>,
    pub pools: DashMap<String, Arc<PoolDispatch>>,
    /// Workers loading their application (`readiness = "notify"`), for `/status` only: the
    /// dispatcher learns of a worker once it is ready.
    loading: DashMap<WorkerId, LoadingWorker>,
    pub metrics: Metrics,
    to_master: UnboundedSender<ToMaster>,
    /// Wakes the load reporter when some pool's queue grows.
    pub pressure: Arc<Notify>,
    /// Distinguishes request ids across front-end restarts.
    boot: u32,
    requests: AtomicU64,
    /// A stop began: every response asks its client to close the connection.
    stopping: std::sync::atomic::AtomicBool,
    /// One per HTTPS listener, reloaded on request from the master.
    certificates: Vec<Arc<CertificateStore>>,
    pub access_log: Option<Arc<AccessLog>>,
    /// Small static files in memory; replaced when a reload changes its size limits.
    file_cache: ArcSwap<FileCache>,
    /// Every site's compiled rules; replaced before the spec on reload, so that a request never
    /// sees a site of the new configuration without its rules.
    site_rules: ArcSwap<SiteRuleSets>,
    /// htpasswd and `.htaccess` files, each parsed once per version.
    pub rule_files: RuleFiles,
    /// HTTP-01 answers of ACME orders in progress, served before routing.
    pub acme_challenges: Arc<Challenges>,
}

impl State {
    /// Sets each HTTPS listener's expiry gauge from the certificates it serves now.
    pub(crate) fn report_certificate_expiry(&self) {
        for store in &self.certificates {
            self.metrics
                .certificates
                .set_expiry(store.listener(), store.earliest_expiry());
        }
    }

    pub(crate) fn new(
        spec: FrontendSpec,
        to_master: UnboundedSender<ToMaster>,
        certificates: Vec<Arc<CertificateStore>>,
        access_log: Option<Arc<AccessLog>>,
        metrics: Metrics,
        acme_challenges: Arc<Challenges>,
    ) -> Self {
        let pressure = Arc::new(Notify::new());
        let pools = spec
            .pools
            .iter()
            .map(|p| {
                let pool = PoolDispatch::new(p.clone(), to_master.clone(), pressure.clone());
                (p.name.clone(), Arc::new(pool))
            })
            .collect();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let file_cache = ArcSwap::from_pointee(file_cache_for(&spec));
        let site_rules = ArcSwap::from_pointee(SiteRuleSets::compile(&spec));
        Self {
            file_cache,
            site_rules,
            rule_files: RuleFiles::default(),
            acme_challenges,
            spec: ArcSwap::from_pointee(spec),
            pools,
            loading: DashMap::new(),
            metrics,
            to_master,
            pressure,
            boot: nanos ^ std::process::id().rotate_left(16),
            requests: AtomicU64::new(0),
            stopping: std::sync::atomic::AtomicBool::new(false),
            certificates,
            access_log,
        }
    }

    pub(crate) fn begin_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// A short id, unique per front-end run, for logs, the worker and the `X-Request-Id` header.
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        request_id(self.boot, n)
    }

    pub(crate) fn tell_master(&self, message: ToMaster) {
        // The master going away ends this process through the control task; nothing to do here.
        let _ = self.to_master.send(message);
    }

    pub(crate) fn file_cache(&self) -> Arc<FileCache> {
        self.file_cache.load_full()
    }

    /// The compiled rules of the site named `site`.
    pub(crate) fn site_rules(&self, site: &str) -> Arc<CompiledSite> {
        self.site_rules.load().site(site)
    }

    /// The current configuration.
    pub(crate) fn spec(&self) -> Arc<FrontendSpec> {
        self.spec.load_full()
    }

    /// Applies a reloaded configuration: new requests see it at once; pools keep their workers
    /// and take the new dispatch settings; new pools appear. A removed pool stays known until its
    /// last worker is gone, so its retiring workers can still be drained and reported.
    pub(crate) fn reconfigure(&self, spec: FrontendSpec) {
        for pool in &spec.pools {
            match self.pools.get(&pool.name) {
                Some(existing) => existing.set_spec(pool.clone()),
                None => {
                    let dispatch = PoolDispatch::new(
                        pool.clone(),
                        self.to_master.clone(),
                        self.pressure.clone(),
                    );
                    self.pools.insert(pool.name.clone(), Arc::new(dispatch));
                }
            }
        }
        for pool in self.pools.iter() {
            if !spec.pools.iter().any(|p| p.name == pool.name) {
                pool.mark_removed();
            }
        }
        let old = &self.spec.load().limits;
        if (old.static_cache_bytes, old.static_cache_max_file_bytes)
            != (
                spec.limits.static_cache_bytes,
                spec.limits.static_cache_max_file_bytes,
            )
        {
            self.file_cache.store(Arc::new(file_cache_for(&spec)));
        }
        self.site_rules
            .store(Arc::new(SiteRuleSets::compile(&spec)));
        self.spec.store(Arc::new(spec));
        tracing::info!("configuration applied");
    }

    /// The site of `spec` for a `Host` value (see [`crate::http::vhost`]).
    pub(crate) fn site_for<'a>(spec: &'a FrontendSpec, host: Option<&str>) -> &'a SiteSpec {
        crate::http::vhost::select(&spec.sites, host)
    }

    /// Sends every pool's load to the master twice a second, and at once when a queue grows.
    pub(crate) async fn report_load(self: Arc<Self>) {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = self.pressure.notified() => {}
            }
            for pool in self.pools.iter() {
                self.tell_master(ToMaster::PoolLoad(pool.load()));
            }
        }
    }

    /// Applies a message from the master. The metrics observe it first, while the worker it names
    /// is still known (a worker going down: its pid and request count) and the pool's previous
    /// failing state can be compared; then the message changes the state.
    pub(crate) fn apply(&self, message: &ToFrontend) {
        let worker = match message {
            ToFrontend::WorkerDown { pool, worker, .. }
            | ToFrontend::WorkerStats { pool, worker, .. } => {
                self.pools.get(pool).and_then(|p| p.worker(*worker))
            }
            _ => None,
        };
        let pool_was_failing = match message {
            ToFrontend::PoolStatus { pool, .. } => self
                .pools
                .get(pool)
                .is_some_and(|p| p.snapshot().failing.is_some()),
            _ => false,
        };
        let before = KnownBefore {
            worker: worker.as_deref().map(|w| (w.pid, &*w.activity)),
            pool_was_failing,
        };
        self.metrics.observe_control(message, &before);
        self.change(message);
    }

    /// What `message` changes; see [`State::apply`] for the order.
    fn change(&self, message: &ToFrontend) {
        match message {
            ToFrontend::WorkerUp {
                pool,
                worker,
                pid,
                socket,
                slots,
                ready_after_ms,
                cpu,
            } => {
                self.loading.remove(worker);
                if let Some(p) = self.pools.get(pool) {
                    p.worker_up(*worker, *pid, socket.clone(), *slots);
                    if let Some(w) = p.worker(*worker) {
                        if let Some(cpu) = cpu {
                            w.activity.set_cpu(*cpu);
                        }
                        if ready_after_ms.is_some() {
                            w.activity.mark_ready();
                        }
                    }
                }
            }
            ToFrontend::WorkerLoading { pool, worker, pid } => {
                self.loading
                    .insert(*worker, LoadingWorker::new(pool.clone(), *pid));
            }
            ToFrontend::WorkerDown { pool, worker, .. } => {
                self.loading.remove(worker);
                let gone = self.pools.get(pool).is_some_and(|p| {
                    p.worker_down(*worker);
                    p.is_removed() && p.workers().is_empty()
                });
                if gone {
                    self.pools.remove(pool);
                }
            }
            ToFrontend::PoolStatus { pool, failing } => {
                if let Some(p) = self.pools.get(pool) {
                    p.set_failing(failing.clone());
                }
            }
            ToFrontend::Retire {
                pool,
                worker,
                reason,
            } => {
                if let Some(p) = self.pools.get(pool) {
                    p.retire(*worker, *reason);
                }
            }
            ToFrontend::ReloadOutcome { success } => {
                tracing::debug!(success, "configuration reload");
            }
            ToFrontend::MaxWorkersReached { pool } => {
                tracing::debug!(pool = %pool, "pool at its maximum size while requests wait");
            }
            ToFrontend::ReloadCertificates => {
                for store in &self.certificates {
                    if let Err(e) = store.reload() {
                        tracing::error!(error = %e, "certificate reload failed; the previous certificates stay in use");
                    }
                }
                self.report_certificate_expiry();
            }
            ToFrontend::ReopenLogs => {
                if let Some(log) = &self.access_log {
                    log.reopen();
                }
            }
            ToFrontend::Configure(spec) => self.reconfigure((**spec).clone()),
            ToFrontend::WorkerStats { .. } | ToFrontend::Shutdown { .. } => {}
        }
    }

    /// Every pool and worker as `/status` and the pool gauges show them.
    pub(crate) fn status_report(&self) -> StatusReport {
        let pools = self
            .pools
            .iter()
            .filter(|entry| !entry.value().is_removed())
            .map(|entry| {
                let pool = entry.value();
                let snapshot = pool.snapshot();
                let mut processes: Vec<WorkerReport> = pool
                    .workers()
                    .iter()
                    .map(|w| WorkerReport::new(w.id, w.pid, w.is_usable(), &w.activity))
                    .collect();
                processes.extend(
                    self.loading
                        .iter()
                        .filter(|l| l.value().pool == pool.name)
                        .map(|l| WorkerReport::loading(*l.key(), l.value())),
                );
                let figures = PoolFigures {
                    name: snapshot.name,
                    idle_slots: snapshot.idle_slots,
                    waiting: snapshot.waiting,
                    sent_ahead: snapshot.sent_ahead,
                    queue_max: pool.spec().queue_max,
                    queue_timeout_ms: pool.spec().queue_timeout_ms,
                    request_timeout_ms: pool.spec().request_timeout_ms,
                    ready: pool.is_ready(),
                    failing: snapshot.failing,
                };
                (figures, processes)
            });
        self.metrics.status_report(pools)
    }
}

/// `{boot:08x}-{n:x}`, written without the formatting machinery: once per request, `format!`
/// was about 1.5 % of the front end's samples on a proxied request.
fn request_id(boot: u32, n: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(8 + 1 + 16);
    for shift in (0..8).rev() {
        id.push(char::from(HEX[(boot >> (shift * 4)) as usize & 0xf]));
    }
    id.push('-');
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        id.push(char::from(HEX[(n >> (shift * 4)) as usize & 0xf]));
    }
    id
}

fn file_cache_for(spec: &FrontendSpec) -> FileCache {
    FileCache::new(
        spec.limits.static_cache_bytes,
        spec.limits.static_cache_max_file_bytes,
    )
}

#[cfg(test)]
pub(crate) mod tests;
