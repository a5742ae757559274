//! Reloading the configuration (SIGHUP) without closing a listener or a connection.
//!
//! The new file is validated first; if it is invalid, the old configuration keeps running and the
//! error (file, line, key) is logged and counted. If it is valid:
//! - the front end gets the new `Configure` and applies it to new requests (sites, limits, pool
//!   dispatch settings, certificates); requests in flight finish under the old one;
//! - a pool whose settings changed starts a new generation: its workers are retired (they finish
//!   their in-flight request first) and the sizing policy starts new ones at once;
//! - a new pool starts; a removed pool's workers retire.
//!
//! Listeners are the one thing a reload cannot change: they are bound by the master and inherited
//! by the front end, so adding or moving one needs a restart (or a binary upgrade).

use std::time::Instant;

use protocol::control::{ExitReason, ToFrontend, WorkerId};
use tracing::{error, info, warn};

use super::Master;
use crate::config::{self, Config, PoolConfig, Sizing};
use crate::pool::Pool;

impl Master {
    /// Reloads the configuration; the error says why the running one stays.
    pub(super) fn reload(&mut self) -> Result<(), String> {
        crate::sd_notify::notify("RELOADING=1");
        let outcome = config::reload(&self.config)
            .map_err(|e| e.to_string())
            .and_then(|new| self.check_listeners(&new).map(|()| new));
        let result = match outcome {
            Err(reason) => {
                error!("configuration reload failed, the running configuration stays: {reason}");
                self.tell_frontend(ToFrontend::ReloadOutcome { success: false });
                Err(reason)
            }
            Ok(new) => {
                self.apply(new);
                // Certificates are re-read even when their paths did not change (renewed files);
                // a bad new certificate keeps the old one in use (the front end says why).
                self.tell_frontend(ToFrontend::ReloadCertificates);
                info!(config = %self.config.origin, "configuration reloaded");
                self.tell_frontend(ToFrontend::ReloadOutcome { success: true });
                Ok(())
            }
        };
        crate::sd_notify::notify("READY=1\nSTATUS=serving");
        result
    }

    fn check_listeners(&self, new: &Config) -> Result<(), String> {
        // ACME settings are compared apart: the names they cover follow the sites' hosts, and a
        // new site must not make the whole reload fail.
        let without_acme = |listeners: &[protocol::control::ListenerSpec]| {
            let mut listeners = listeners.to_vec();
            listeners.iter_mut().for_each(|l| l.acme = None);
            listeners
        };
        if without_acme(&self.configured_listeners) != without_acme(&new.frontend.listeners) {
            return Err(format!(
                "{}: listeners (names, kinds, addresses, options, certificate paths) cannot change \
                 on reload: they are bound once by the master. Restart paddock to change them; to \
                 renew certificates, replace the files in place and reload",
                new.origin
            ));
        }
        // Certificates are re-read by a reload: a file that no longer loads fails the reload
        // here, with its path, instead of only inside the front end.
        for listener in &new.frontend.listeners {
            for files in listener.tls.iter().chain(&listener.sni_certificates) {
                frontend::tls::check_files(files)
                    .map_err(|e| format!("{}: listener `{}`: {e}", new.origin, listener.name))?;
            }
        }
        let acme = |listeners: &[protocol::control::ListenerSpec]| {
            listeners.iter().map(|l| l.acme.clone()).collect::<Vec<_>>()
        };
        if acme(&self.configured_listeners) != acme(&new.frontend.listeners)
            || self.config.frontend.site_acme != new.frontend.site_acme
        {
            warn!("acme settings (or the site hosts they cover) changed: they take effect at the next restart");
        }
        if new.runtime_dir != self.config.runtime_dir {
            warn!("server.runtime_dir changed: it takes effect at the next restart");
        }
        if new.frontend_runtime != self.config.frontend_runtime {
            warn!("server.frontend_runtime changed: it takes effect when the front end next starts (a restart or an upgrade)");
        }
        Ok(())
    }

    fn apply(&mut self, mut new: Config) {
        let now = Instant::now();
        // Keep the addresses actually bound (port 0 resolved) and the running runtime directory.
        for (listener, bound) in new
            .frontend
            .listeners
            .iter_mut()
            .zip(&self.config.frontend.listeners)
        {
            listener.address = bound.address;
        }
        new.runtime_dir = self.config.runtime_dir.clone();
        self.tell_frontend(ToFrontend::Configure(Box::new(new.frontend.clone())));

        let mut touched = vec![false; self.pools.len()];
        for pool_config in &new.pools {
            match self
                .pools
                .iter()
                .position(|p| p.config.name == pool_config.name)
            {
                Some(index) => {
                    touched[index] = true;
                    if self.pools[index].config != *pool_config {
                        self.replace_pool(index, pool_config.clone(), now);
                    }
                }
                None => {
                    let external_id = self.external_id_for(pool_config);
                    self.pools.push(Pool::new(pool_config.clone(), external_id));
                    self.announce_external(self.pools.len() - 1);
                    self.start_pool(self.pools.len() - 1, now);
                }
            }
        }
        for (index, kept) in touched.into_iter().enumerate() {
            if !kept && !self.pools[index].removed {
                info!(pool = %self.pools[index].config.name, "pool removed by the reload");
                self.withdraw_external(index);
                self.pools[index].removed = true;
                // Its PHP parent, if any, ends when its control socket closes.
                self.pools[index].php_parent = None;
                self.pools[index].config.sizing = Sizing::Static { workers: 0 };
                self.retire_generation(index);
            }
        }
        self.config = new;
    }

    /// A pool's settings changed: new workers with the new settings replace the old generation.
    fn replace_pool(&mut self, index: usize, config: PoolConfig, now: Instant) {
        info!(pool = %config.name, "pool settings changed: starting a new generation of workers");
        self.withdraw_external(index);
        let external_id = self.external_id_for(&config);
        let pool = &mut self.pools[index];
        *pool = Pool::new(config, external_id);
        self.announce_external(index);
        self.retire_generation(index);
        self.start_pool(index, now);
    }

    fn retire_generation(&mut self, index: usize) {
        let old: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| w.pool == index)
            .map(|(&id, _)| id)
            .collect();
        for id in old {
            self.retire_worker(id, ExitReason::Reload);
        }
        // Retiring workers do not count as active, so the policy fills the pool again at once.
    }

    fn external_id_for(&mut self, config: &PoolConfig) -> Option<WorkerId> {
        config.external_socket.as_ref().map(|_| {
            self.next_worker += 1;
            self.next_worker - 1
        })
    }

    fn announce_external(&mut self, index: usize) {
        let pool = &self.pools[index];
        if let (Some(worker), Some(socket)) = (pool.external_id, &pool.config.external_socket) {
            let message = ToFrontend::WorkerUp {
                pool: pool.config.name.clone(),
                worker,
                pid: 0,
                socket: socket.clone(),
                slots: pool.config.slots_per_worker,
                ready_after_ms: None,
                cpu: None,
            };
            self.tell_frontend(message);
        }
    }

    fn withdraw_external(&mut self, index: usize) {
        let pool = &self.pools[index];
        if let Some(worker) = pool.external_id {
            let message = ToFrontend::WorkerDown {
                pool: pool.config.name.clone(),
                worker,
                reason: ExitReason::Reload,
            };
            self.tell_frontend(message);
        }
    }
}
