//! Processes seen through /proc: trees, command names, resident memory, and signals by pid.

use std::collections::HashMap;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Every process on the machine as pid → (parent pid, command name).
fn table() -> HashMap<u32, (u32, String)> {
    let mut table = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return table;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().unwrap_or("");
        if state == "Z" {
            continue;
        }
        let ppid = rest.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        table.insert(pid, (ppid, comm));
    }
    table
}

/// `root` and all its living descendants.
pub(crate) fn tree(root: u32) -> Vec<u32> {
    let table = table();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            table
                .iter()
                .filter(|(_, (ppid, _))| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.retain(|pid| table.contains_key(pid));
    found
}

/// Living children of `parent` whose command name is `comm`.
pub(crate) fn children_named(parent: u32, comm: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = table()
        .into_iter()
        .filter(|(_, (ppid, name))| *ppid == parent && name == comm)
        .map(|(pid, _)| pid)
        .collect();
    pids.sort_unstable();
    pids
}

/// Resident set size of one process in KiB (0 if it is gone).
pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Summed resident memory of the trees under `roots`, in KiB.
pub(crate) fn trees_rss_kib(roots: &[u32]) -> u64 {
    roots.iter().flat_map(|root| tree(*root)).map(rss_kib).sum()
}

/// Clock ticks a second in /proc's CPU times: the kernel's USER_HZ, fixed at 100 on Linux
/// whatever the scheduler's own tick rate.
const USER_HZ: f64 = 100.0;

/// CPU time (user + system) of one process and of the children it has reaped, in clock ticks
/// (0 if it is gone). A recycled worker's time thus stays counted in its parent's.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after "pid (comm)": state is the first, utime the 12th … cstime the 15th.
    harness::stat_fields_after_name(&stat)
        .get(11..15)
        .map_or(0, |times| {
            times.iter().filter_map(|t| t.parse::<u64>().ok()).sum()
        })
}

/// CPU seconds used so far by every living process of the trees under `roots`.
pub(crate) fn trees_cpu_seconds(roots: &[u32]) -> f64 {
    let ticks: u64 = roots
        .iter()
        .flat_map(|root| tree(*root))
        .map(cpu_ticks)
        .sum();
    ticks as f64 / USER_HZ
}

/// The front end's processes in the trees under `roots`: nginx's (its master and workers), and
/// paddock's front-end process (not its master, not its workers). The rest of a stack is its
/// application server, so the two parts of a request's CPU time can be told apart.
pub(crate) fn front_end_pids(roots: &[u32]) -> Vec<u32> {
    let table = table();
    roots
        .iter()
        .flat_map(|root| tree(*root))
        .filter(|pid| match table.get(pid) {
            Some((_, comm)) if comm == "nginx" => true,
            Some((_, comm)) if comm == "paddock" => is_paddock_front_end(*pid),
            _ => false,
        })
        .collect()
}

/// Whether `pid` runs `paddock frontend` (the master spawns its front end so).
fn is_paddock_front_end(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.split(|&b| b == 0).nth(1) == Some(b"frontend".as_slice()))
}

/// CPU seconds used so far by the processes `pids` (their own and their reaped children's).
pub(crate) fn pids_cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter().copied().map(cpu_ticks).sum::<u64>() as f64 / USER_HZ
}

/// Sends SIGKILL to one pid.
pub(crate) fn kill_pid(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok()
}

/// Kills (by pid) whatever is left of the processes in `pids`: the last guard after a server was
/// stopped, so that a peer that leaves children behind does not outlive the benchmark.
pub(crate) fn kill_leftovers(pids: &[u32]) -> usize {
    // Children of a stopped parent may still be on their way out: give them a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        let alive = table();
        if !pids.iter().any(|pid| alive.contains_key(pid)) {
            return 0;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let alive = table();
    pids.iter()
        .filter(|pid| alive.contains_key(pid))
        .filter(|pid| kill_pid(**pid))
        .count()
}
