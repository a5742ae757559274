//! Counters driven by the master's worker events: spawns, exits by reason, crash loops, RSS.
//!
//! Called by [`State::apply`] *before* it applies the event, so that a worker going down can
//! still be found (for its pid and request count) and a pool's previous failing state compared.

use protocol::control::ToFrontend;

use super::exits::ExitedWorker;
use super::Metrics;
use crate::state::State;

impl Metrics {
    pub(crate) fn observe_control(&self, state: &State, message: &ToFrontend) {
        match message {
            ToFrontend::WorkerUp { pool, .. } => {
                self.spawns.with_label_values(&[pool]).inc();
            }
            ToFrontend::WorkerDown {
                pool,
                worker,
                reason,
            } => {
                self.exits.with_label_values(&[pool, reason.as_str()]).inc();
                let handle = state.pools.get(pool).and_then(|p| p.worker(*worker));
                let exited = ExitedWorker {
                    worker: *worker,
                    pid: handle.as_ref().map(|w| w.pid),
                    requests_served: handle.as_ref().map_or(0, |w| w.activity.served()),
                    lived_seconds: handle.as_ref().map(|w| w.activity.age().as_secs_f64()),
                };
                self.exit_log.record(pool, exited, *reason);
            }
            ToFrontend::WorkerStats {
                pool,
                worker,
                rss_bytes,
            } => {
                if let Some(handle) = state.pools.get(pool).and_then(|p| p.worker(*worker)) {
                    handle.activity.set_rss(*rss_bytes);
                }
            }
            ToFrontend::PoolStatus { pool, failing } => {
                let was_failing = state
                    .pools
                    .get(pool)
                    .is_some_and(|p| p.snapshot().failing.is_some());
                if failing.is_some() && !was_failing {
                    self.crash_loops.with_label_values(&[pool]).inc();
                }
            }
            ToFrontend::Configure(spec) => {
                for pool in &spec.pools {
                    self.add_pool(&pool.name);
                }
            }
            ToFrontend::ReloadOutcome { success } => self.config_reloaded(*success),
            ToFrontend::MaxWorkersReached { pool } => self.max_workers_reached(pool),
            ToFrontend::Retire { .. }
            | ToFrontend::ReloadCertificates
            | ToFrontend::ReopenLogs
            | ToFrontend::Shutdown { .. } => {}
        }
    }
}
