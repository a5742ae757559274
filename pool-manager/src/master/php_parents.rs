//! The PHP parents of `builtin = "php"` pools: starting one with its pool, asking it for
//! workers once it is ready, and replacing it when it dies (its workers serve on).

use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Token};
use protocol::control::WorkerId;
use tracing::{debug, error, info, warn};

use super::{ExitKind, Master, FIRST_WORKER_TOKEN};
use crate::children::SpawnError;
use crate::php_parent::{
    explain, fork_prepared, fork_refused, prepare_workers, Ended, Forks, ParentNews, PhpParent,
};

impl Master {
    /// Whether the pool's PHP parent is ready for fork requests; starts one if the pool has none.
    pub(super) fn php_parent_ready(&mut self, pool: usize) -> Result<bool, SpawnError> {
        if self.pools[pool].php_parent.is_none() {
            self.start_php_parent(pool)?;
        }
        Ok(self.pools[pool]
            .php_parent
            .as_ref()
            .is_some_and(PhpParent::is_ready))
    }

    fn start_php_parent(&mut self, pool: usize) -> Result<(), SpawnError> {
        let token = self.next_worker;
        self.next_worker += 1;
        let parent = PhpParent::start(&self.pools[pool].config, token)?;
        let fd = parent.source_fd();
        if let Err(e) = self.poll.registry().register(
            &mut SourceFd(&fd),
            Token(FIRST_WORKER_TOKEN + token as usize),
            Interest::READABLE,
        ) {
            warn!(error = %e, "cannot watch the PHP parent");
        }
        info!(pool = %self.pools[pool].config.name, pid = parent.pid.as_raw(), "PHP parent started");
        self.pools[pool].php_parent = Some(parent);
        Ok(())
    }

    /// Forks `count` workers through the pool's ready parent, asked for all at once, and adds
    /// each as its pid comes; a parent that fails is replaced. False when not all started.
    pub(super) fn fork_php_workers(&mut self, pool: usize, count: u32, now: Instant) -> bool {
        let ids: Vec<WorkerId> = (0..count)
            .map(|_| {
                self.next_worker += 1;
                self.next_worker - 1
            })
            .collect();
        let (prepared, unprepared) = prepare_workers(&self.pools[pool].config, &ids, &self.runtime);
        let name = self.pools[pool].config.name.clone();
        // Out of the pool while the master adds the workers it forks.
        let mut parent = self.pools[pool].php_parent.take().expect("a ready parent");
        let asked = Instant::now();
        let mut forked = 0;
        let result = fork_prepared(&mut parent, prepared, |id, spawned| {
            forked += 1;
            self.add_worker(pool, id, spawned, now);
        });
        // From the requests to the last pid: the whole cost of the new workers to the master.
        let fork_us = asked.elapsed().as_micros() as u64;
        debug!(pool = %name, workers = forked, asked = count, fork_us, "workers forked by the PHP parent");
        let failure = match (result, unprepared) {
            (Ok(Forks::All), None) => {
                self.pools[pool].php_parent = Some(parent);
                return true;
            }
            // The parent is fine; the system said no, and the pool backs off before it asks again.
            (Ok(Forks::Refused), _) => {
                self.pools[pool].php_parent = Some(parent);
                fork_refused()
            }
            (Ok(Forks::All), Some(e)) => {
                self.pools[pool].php_parent = Some(parent);
                e
            }
            (Err(e), _) => {
                warn!(pool = %name, pid = parent.pid.as_raw(), error = %e, "the PHP parent did not fork; replacing it");
                parent.kill_and_explain()
            }
        };
        self.spawn_failed(pool, &failure, now);
        false
    }

    /// The pool whose PHP parent is watched under `token`, if any.
    pub(super) fn php_parent_pool(&self, token: WorkerId) -> Option<usize> {
        self.pools
            .iter()
            .position(|p| p.php_parent.as_ref().is_some_and(|z| z.token == token))
    }

    pub(super) fn on_php_parent_readable(&mut self, pool: usize) {
        let p = &mut self.pools[pool];
        let Some(parent) = p.php_parent.as_mut() else {
            return;
        };
        if parent.on_readable() != ParentNews::Ready {
            // Closed: the parent is exiting, and its exit is reaped like any child's.
            return;
        }
        info!(pool = %p.config.name, pid = parent.pid.as_raw(), lived = ?parent.started.elapsed(), "PHP parent ready");
        // The workers the pool would have started at once, had PHP been up: then the policy.
        let now = Instant::now();
        let wanted = std::mem::take(&mut self.pools[pool].php_initial_workers);
        let active = self
            .workers
            .values()
            .filter(|w| w.pool == pool && w.is_active())
            .count() as u32;
        self.start_workers(pool, wanted.saturating_sub(active), now);
        self.size_pool(pool, now, false);
    }

    /// PHP parents that did not start PHP in time are stopped, and their pools fail.
    pub(super) fn check_php_parent_starts(&mut self, now: Instant) {
        for pool in 0..self.pools.len() {
            let late = self.pools[pool]
                .php_parent
                .as_ref()
                .and_then(PhpParent::start_deadline)
                .is_some_and(|deadline| now >= deadline);
            if late {
                let parent = self.pools[pool].php_parent.take().expect("late parent");
                let failure = parent.kill_and_explain();
                self.spawn_failed(pool, &failure, now);
            }
        }
    }

    /// When a starting PHP parent must be ready.
    pub(super) fn php_parent_deadlines(&self) -> impl Iterator<Item = Instant> + '_ {
        self.pools
            .iter()
            .filter_map(|p| p.php_parent.as_ref()?.start_deadline())
    }

    /// A pool's PHP parent died. The workers it forked are the master's children and go on
    /// serving; a ready parent is replaced at once. One that died before PHP started is a
    /// start-up failure: the pool fails with the reason (e.g. libphp missing) under the
    /// crash-loop backoff, and the next worker start tries again.
    pub(super) fn on_php_parent_exit(
        &mut self,
        pool: usize,
        status: &str,
        how: ExitKind,
        now: Instant,
    ) {
        let Some(parent) = self.pools[pool].php_parent.take() else {
            return;
        };
        let name = self.pools[pool].config.name.clone();
        if !parent.is_ready() {
            let ended = match how {
                ExitKind::Status(code) => Ended::Exited(code),
                ExitKind::Signal(signal) => Ended::Killed(signal),
            };
            self.spawn_failed(pool, &explain(ended), now);
            return;
        }
        warn!(pool = %name, pid = parent.pid.as_raw(), status, lived = ?now - parent.started, "PHP parent exited; its workers go on serving");
        if self.shutdown.is_some() || !self.pools[pool].is_managed() {
            return;
        }
        match self.start_php_parent(pool) {
            Ok(()) => info!(pool = %name, "PHP parent restarted"),
            Err(e) => error!(pool = %name, "cannot restart the PHP parent: {e}"),
        }
    }
}
