//! The sizing policy: a pure function from a pool snapshot to actions.
//!
//! It knows nothing about processes or sockets, so every sizing rule is tested with plain tables
//! (see the tests below); the master executes what it returns.
//!
//! Rules, per pool:
//! - **static**: keep exactly `workers`.
//! - **dynamic** (php-fpm `dynamic`, Apache's MPMs): keep spare slots between `min_spare` and
//!   `max_spare`, up to `max` workers. Below `min_spare`, spawn on each one-second tick with a ramp
//!   of 1, 2, 4 … up to `spawn_rate` (as Apache and php-fpm do), and above `max_spare` retire the
//!   longest-idle worker, one per tick.
//! - **ondemand** (php-fpm `ondemand`): no worker until requests wait; retire a worker that has been
//!   idle for `idle_timeout`, one per tick.
//! - **queue pressure** (dynamic and ondemand, paddock's addition): when requests are waiting, spawn
//!   at once as many workers as the queue needs, without waiting for a tick or a ramp, because the
//!   front end knows its queue exactly. Apache and php-fpm only learn about demand on their next
//!   one-second maintenance pass, and then ramp 1, 2, 4 …
//! - `max` is never exceeded; hitting it while requests wait is reported (once per episode).

use std::time::Duration;

use protocol::control::WorkerId;

use crate::config::Sizing;

/// What the master knows about one pool at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// Workers running and not retiring (including ones just spawned).
    pub active: u32,
    /// Spawned workers the front end has not reported on yet: all their slots are spare.
    pub unreported: u32,
    /// Free slots on workers the front end knows, excluding retiring ones.
    pub idle_slots: u32,
    /// Requests waiting in the front end's queue for this pool.
    pub waiting: u32,
    /// Fully idle workers and for how long, longest idle first.
    pub idle_workers: Vec<(WorkerId, Duration)>,
}

/// Sizing memory between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ramp {
    /// Spawns allowed on the next tick for a spare shortfall (1, 2, 4 …).
    pub next: u32,
    /// Whether "max workers reached" was already reported for the current episode.
    pub max_reported: bool,
}

impl Default for Ramp {
    fn default() -> Self {
        Self {
            next: 1,
            max_reported: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Spawn(u32),
    /// Retire this idle worker (gracefully: it finishes what it is doing first).
    Retire(WorkerId),
    /// Requests wait but the pool is at its maximum; reported once per episode.
    MaxReached,
}

/// Decides what to do now. `tick` is true on the one-second maintenance pass, false when the
/// front end reported queue pressure in between.
pub(crate) fn plan(
    sizing: &Sizing,
    slots: u32,
    spawn_rate: u32,
    snapshot: &Snapshot,
    ramp: &mut Ramp,
    tick: bool,
) -> Vec<Action> {
    let slots = slots.max(1);
    let max = sizing.max_workers();
    let room = max.saturating_sub(snapshot.active);
    let spare = snapshot.idle_slots + snapshot.unreported * slots;
    let mut actions = Vec::new();

    // Workers the queue needs right now, beyond those already on their way.
    let pressure = snapshot.waiting.saturating_sub(spare).div_ceil(slots);

    let mut spawn = match *sizing {
        Sizing::Static { workers } => workers.saturating_sub(snapshot.active),
        Sizing::Dynamic { min_spare, .. } => {
            let shortfall = min_spare.saturating_sub(spare.saturating_sub(snapshot.waiting));
            let by_ramp = if tick && shortfall > 0 {
                let allowed = ramp.next;
                ramp.next = (ramp.next * 2).min(spawn_rate.max(1));
                shortfall.div_ceil(slots).min(allowed)
            } else {
                if tick {
                    ramp.next = 1;
                }
                0
            };
            pressure.max(by_ramp)
        }
        Sizing::OnDemand { .. } => pressure,
    };
    if spawn > room {
        if snapshot.waiting > 0 && !ramp.max_reported {
            actions.push(Action::MaxReached);
            ramp.max_reported = true;
        }
        spawn = room;
    }
    if snapshot.waiting == 0 {
        ramp.max_reported = false;
    }
    if spawn > 0 {
        actions.push(Action::Spawn(spawn));
        return actions;
    }

    if tick && snapshot.waiting == 0 {
        let longest_idle = snapshot.idle_workers.first();
        match *sizing {
            Sizing::Static { .. } => {}
            Sizing::Dynamic {
                min_spare,
                max_spare,
                ..
            } => {
                if spare > max_spare && spare.saturating_sub(slots) >= min_spare {
                    if let Some(&(worker, _)) = longest_idle {
                        actions.push(Action::Retire(worker));
                    }
                }
            }
            Sizing::OnDemand { idle_timeout, .. } => {
                if let Some(&(worker, idle)) = longest_idle {
                    if idle >= idle_timeout {
                        actions.push(Action::Retire(worker));
                    }
                }
            }
        }
    }
    actions
}

#[cfg(test)]
mod tests;
