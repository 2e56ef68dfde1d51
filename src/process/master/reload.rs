//! Reloads (SIGUSR2, or an emergency after too many crashes): a new
//! generation of workers, with the configuration read again, takes over
//! once every one of them is ready, and the old one drains; a reload that
//! cannot finish is abandoned and the old generation stays. SIGUSR1's log
//! reopening is here too.

use std::os::fd::AsFd;
use std::time::Duration;

use super::super::systemd;
use super::exit::monotonic_usec;
use super::{
    close_unused, lock, log_running, raw, share_listeners, signal, slots_of, Master, Phase,
    Previous,
};

impl Master {
    /// Finishes the reload in progress once every worker of the new
    /// generation is ready (lazy pools have none to wait for).
    pub(super) fn reload_progress(&mut self) {
        if let Phase::Reloading(generation) = self.phase {
            let pending = self
                .procs
                .iter()
                .any(|p| p.generation == generation && !p.ready);
            if !pending {
                self.finish_reload(generation);
            }
        }
    }

    /// SIGUSR1: reopens the master's log files, and has every worker
    /// reopen its own.
    pub(super) fn reopen_logs(&self) {
        super::super::logfile::reopen_all();
        // php-fpm's two lines, whatever files there are.
        tracing::info!("error log file re-opened");
        tracing::info!("access log file re-opened");
        for p in &self.procs {
            signal(p.pid, libc::SIGUSR1);
        }
    }

    /// Starts a new generation (for SIGUSR2, or an emergency restart), with
    /// the configuration read again; the old one drains once the new one is
    /// ready.
    pub(super) async fn reload(&mut self, why: &str) {
        match self.phase {
            Phase::Serving => {}
            Phase::Reloading(_) => {
                tracing::debug!("{why}: a reload is already in progress");
                return;
            }
            Phase::Starting | Phase::Stopping(_) => return,
        }
        tracing::info!("reloading: {why}: re-reading the configuration, starting new workers");
        for l in self.pools.iter().flat_map(|p| &p.listeners) {
            tracing::info!(
                "using inherited socket fd={}, \"{}\"",
                raw(l.as_fd()),
                l.addr().as_configured()
            );
        }
        if let Err(e) = self.reread().await {
            tracing::error!("{e}");
            tracing::error!("reload failed: the running workers stay");
            return;
        }
        systemd::notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
        self.generation += 1;
        self.phase = Phase::Reloading(self.generation);
        self.respawns.clear();
        for index in 0..self.slots.len() {
            if let Err(e) = self.start_slot(index) {
                tracing::error!("reload failed: cannot start worker {index}: {e}");
                self.abandon_reload();
                return;
            }
        }
        self.reload_progress();
    }

    /// Takes the configuration as it is now, keeping what it replaces for
    /// an abandoned reload. Without a config file nothing changes.
    pub(super) async fn reread(&mut self) -> Result<(), String> {
        let Some(reread) = &self.reread else {
            return Ok(());
        };
        let held = self
            .pools
            .iter()
            .flat_map(|p| p.listeners.iter().cloned())
            .collect();
        let (config, pools) = reread(held).await?;
        share_listeners(&pools)?;
        let slots = slots_of(&pools);
        self.previous = Some(Previous {
            config: std::mem::replace(&mut self.config, config),
            pools: std::mem::replace(&mut self.pools, pools),
            slots: std::mem::replace(&mut self.slots, slots),
        });
        self.note_pools();
        Ok(())
    }

    /// The new generation is ready: the older ones stop taking connections
    /// (leaving the backlog to the new ones) and drain. The reload is done
    /// once none of them accepts any more: from then on every connection
    /// meets the new configuration.
    pub(super) fn finish_reload(&mut self, generation: u64) {
        self.phase = Phase::Serving;
        let mut old = Vec::new();
        for at in 0..self.procs.len() {
            let p = &self.procs[at];
            if p.generation >= generation || p.stopping {
                continue;
            }
            // Its kept connections go to the pool that listens there now.
            let hand_over = self.successor(&p.listeners).is_some();
            old.push((p.pid, p.link.clone(), hand_over));
            self.procs[at].stopping = true;
        }
        self.forget_stopping();
        self.unpark(|g| g < generation);
        if let Some(previous) = self.previous.take() {
            close_unused(&previous.pools, &self.pools);
        }
        self.place_held();
        tokio::spawn(async move {
            let retiring = old.iter().map(|(pid, link, hand_over)| async move {
                if !link.retire(*hand_over).await {
                    signal(*pid, libc::SIGQUIT);
                }
            });
            futures_util::future::join_all(retiring).await;
            tracing::debug!(generation, "reloaded: old workers are draining");
            log_running();
            systemd::notify("READY=1\nSTATUS=reloaded");
        });
    }

    /// A worker of the new generation could not start: keep the old one.
    pub(super) fn abandon_reload(&mut self) {
        let Phase::Reloading(generation) = self.phase else {
            return;
        };
        self.phase = Phase::Serving;
        for p in self.procs.iter_mut().filter(|p| p.generation == generation) {
            p.stopping = true;
            signal(p.pid, libc::SIGTERM);
        }
        self.forget_stopping();
        self.unpark(|g| g == generation);
        if let Some(previous) = self.previous.take() {
            close_unused(&self.pools, &previous.pools);
            self.config = previous.config;
            self.pools = previous.pools;
            self.slots = previous.slots;
            self.note_pools();
        }
        self.generation = generation - 1;
        tracing::error!("reload abandoned: the running workers stay");
        // Workers of the running generation that died meanwhile come back.
        for index in 0..self.slots.len() {
            let alive = self
                .procs
                .iter()
                .any(|p| p.index == index && p.generation == self.generation && !p.stopping);
            if !alive {
                self.schedule_respawn(index, Duration::ZERO);
            }
        }
        systemd::notify("READY=1\nSTATUS=reload failed; still serving");
    }

    /// Drops stopping workers from the metrics list.
    pub(super) fn forget_stopping(&mut self) {
        let stopping: Vec<u32> = self
            .procs
            .iter()
            .filter(|p| p.stopping)
            .map(|p| p.pid)
            .collect();
        lock(&self.ready).retain(|(pid, _)| !stopping.contains(pid));
    }
}
