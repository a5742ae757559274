//! `cpu_affinity = "spread"`: the CPU a pool's next worker is pinned to.
//!
//! Each worker goes to the CPU holding the fewest of the pool's live workers, among those the
//! master itself may run on (what `taskset`, a cgroup's cpuset or the service manager left it),
//! the first such in order. Workers started together go round the CPUs; a worker started in
//! place of one that ended takes the CPU it left, so a pool of as many processes as CPUs keeps
//! one process on each however often they are recycled.

use nix::sched::{sched_getaffinity, CpuSet};
use nix::unistd::Pid;

/// The CPUs the master may run on, in ascending order; empty if the kernel will not say.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Of `allowed`, the CPU holding the fewest of `pinned` (the CPUs of the pool's live
/// workers), the first in order among equals; `None` when nothing is allowed.
pub(crate) fn least_used(
    allowed: &[usize],
    pinned: impl IntoIterator<Item = usize>,
) -> Option<usize> {
    let mut counts = vec![0usize; allowed.len()];
    for cpu in pinned {
        if let Ok(index) = allowed.binary_search(&cpu) {
            counts[index] += 1;
        }
    }
    let (index, _) = counts
        .iter()
        .enumerate()
        .min_by_key(|&(index, &count)| (count, index))?;
    Some(allowed[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_go_round_the_allowed_cpus() {
        let allowed = [0, 2, 3];
        let mut pinned = Vec::new();
        for _ in 0..7 {
            let cpu = least_used(&allowed, pinned.iter().copied()).unwrap();
            pinned.push(cpu);
        }
        assert_eq!(pinned, [0, 2, 3, 0, 2, 3, 0]);
    }

    #[test]
    fn a_replacement_takes_the_cpu_its_predecessor_left() {
        // Four workers on two CPUs; the second one on CPU 1 ends.
        assert_eq!(least_used(&[0, 1], [0, 1, 0]), Some(1));
        // CPUs no longer allowed (a cpuset that shrank) do not count.
        assert_eq!(least_used(&[0, 1], [0, 5, 5]), Some(1));
        assert_eq!(least_used(&[], [0]), None);
    }

    #[test]
    fn the_master_may_run_somewhere() {
        let allowed = allowed_cpus();
        assert!(!allowed.is_empty());
        assert!(allowed.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
