//! Counters driven by the master's worker events: spawns, exits by reason, crash loops, RSS.
//!
//! An event is observed *before* the front end applies it (`State::apply` does both, in that
//! order): a worker going down is then still known (for its pid and request count), and a pool's
//! previous failing state can be compared. What the counters need from before is handed in as
//! [`KnownBefore`].

use protocol::control::ToFrontend;

use super::activity::WorkerActivity;
use super::exits::ExitedWorker;
use super::Metrics;

/// What the front end knew, before applying a master's message, about the worker or pool the
/// message names: the figures the counters need that the message does not carry.
#[derive(Debug, Default)]
pub(crate) struct KnownBefore<'a> {
    /// `WorkerDown` and `WorkerStats`: the worker's pid and figures, if the front end knew it.
    pub worker: Option<(u32, &'a WorkerActivity)>,
    /// `PoolStatus`: whether the pool was already failing.
    pub pool_was_failing: bool,
}

impl Metrics {
    pub(crate) fn observe_control(&self, message: &ToFrontend, before: &KnownBefore<'_>) {
        match message {
            ToFrontend::WorkerUp {
                pool,
                ready_after_ms,
                ..
            } => {
                self.spawns.with_label_values(&[pool]).inc();
                if let Some(ms) = ready_after_ms {
                    self.worker_start
                        .with_label_values(&[pool])
                        .observe(*ms as f64 / 1000.0);
                }
            }
            ToFrontend::WorkerDown {
                pool,
                worker,
                reason,
            } => {
                self.exits.with_label_values(&[pool, reason.as_str()]).inc();
                let known = before.worker;
                let exited = ExitedWorker {
                    worker: *worker,
                    pid: known.map(|(pid, _)| pid),
                    requests_served: known.map_or(0, |(_, activity)| activity.served()),
                    lived_seconds: known.map(|(_, activity)| activity.age().as_secs_f64()),
                };
                self.exit_log.record(pool, exited, *reason);
            }
            ToFrontend::WorkerStats { rss_bytes, .. } => {
                if let Some((_, activity)) = before.worker {
                    activity.set_rss(*rss_bytes);
                }
            }
            ToFrontend::PoolStatus { pool, failing } => {
                if failing.is_some() && !before.pool_was_failing {
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
            | ToFrontend::WorkerLoading { .. }
            | ToFrontend::ReloadCertificates
            | ToFrontend::ReopenLogs
            | ToFrontend::Shutdown { .. } => {}
        }
    }
}
