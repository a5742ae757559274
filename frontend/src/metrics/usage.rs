//! What requests cost their workers, as paddock's own PHP worker reports it (a USAGE record at
//! the end of each request, `protocol::fcgi::RequestUsage`): per-pool histograms of CPU time and
//! peak memory, the last request's figures per worker for `/status`, and the CPU time a request
//! running now has used so far, read from the worker process's clock.

use protocol::fcgi::RequestUsage;

use super::activity::WorkerActivity;
use super::Metrics;

/// Bucket bounds (seconds) for a request's CPU time.
pub(super) const CPU_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bucket bounds (bytes) for a request's peak memory: 256 KiB to 1 GiB, doubling.
pub(super) const MEMORY_BUCKETS: &[f64] = &[
    262_144.0,
    524_288.0,
    1_048_576.0,
    2_097_152.0,
    4_194_304.0,
    8_388_608.0,
    16_777_216.0,
    33_554_432.0,
    67_108_864.0,
    134_217_728.0,
    268_435_456.0,
    536_870_912.0,
    1_073_741_824.0,
];

impl Metrics {
    /// A worker of `pool` said what its request cost.
    pub(crate) fn request_usage(&self, pool: &str, worker: &WorkerActivity, usage: RequestUsage) {
        self.request_cpu
            .with_label_values(&[pool])
            .observe(usage.cpu_us as f64 / 1e6);
        self.request_memory
            .with_label_values(&[pool])
            .observe(usage.peak_memory_bytes as f64);
        worker.set_last_usage(usage);
    }
}

/// CPU seconds the request running on worker `pid` has used so far: the process's CPU clock now
/// less where it stood when its previous request ended. `None` before the worker's first
/// report (its clock at the start of this request is unknown) or when `/proc` cannot tell.
pub(super) fn running_cpu_seconds(pid: u32, last: Option<RequestUsage>) -> Option<f64> {
    let last = last?;
    let now = process_cpu_us(pid)?;
    Some(now.saturating_sub(last.process_cpu_us) as f64 / 1e6)
}

/// User plus system CPU time of process `pid`, in microseconds (clock-tick resolution).
fn process_cpu_us(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_us_from_stat(&stat, clock_ticks_per_second()?)
}

/// Fields 14 and 15 (utime, stime) of a `/proc/PID/stat` line, counted after the command name,
/// which is in parentheses and may itself hold spaces and parentheses.
fn cpu_us_from_stat(stat: &str, ticks_per_second: u64) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / ticks_per_second.max(1))
}

fn clock_ticks_per_second() -> Option<u64> {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (php (worker) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 30 0 0 20 0 1 0";
        assert_eq!(cpu_us_from_stat(stat, 100), Some(2_800_000));
        assert_eq!(cpu_us_from_stat("4242 (short) S 1", 100), None);
    }

    #[test]
    fn this_process_has_a_cpu_clock() {
        let pid = std::process::id();
        let used = process_cpu_us(pid).expect("/proc/self/stat");
        let since = RequestUsage {
            process_cpu_us: used,
            ..RequestUsage::default()
        };
        assert!(running_cpu_seconds(pid, Some(since)).unwrap() >= 0.0);
        assert_eq!(running_cpu_seconds(pid, None), None);
    }
}
