//! One module per scenario of issue 7 (and the benchmarks of issues 4 and 5).

pub(crate) mod builtin;
pub(crate) mod builtin_app;
pub(crate) mod burst;
pub(crate) mod idle_memory;
pub(crate) mod keepalive;
pub(crate) mod kills;
pub(crate) mod php;
pub(crate) mod rules;
pub(crate) mod slow;
pub(crate) mod static_files;
pub(crate) mod static_large;
pub(crate) mod step;
pub(crate) mod wsgi;
pub(crate) mod wsgi_burst;
pub(crate) mod wsgi_paced;
pub(crate) mod wsgi_storm;

use crate::load::Load;
use crate::report::{ratio, Summary};
use crate::servers::Server;
use crate::Bench;

/// The columns of one measured load (`Summary::cells`), between a table's own columns.
pub(crate) const LOAD_COLUMNS: [&str; 5] = ["req/s", "spread", "p50 ms", "p99 ms", "errors"];

/// `path` on `server`: plain HTTP for the variant "plain", HTTPS for any other.
pub(crate) fn url_for(server: &Server, variant: &str, path: &str) -> String {
    if variant == "plain" {
        server.url(path)
    } else {
        server.https_url(path)
    }
}

/// The paddock / peer column of a row: empty on paddock's own row.
pub(crate) fn ratio_cell(server: &Server, paddock_rps: f64, summary: &Summary) -> String {
    if server.name == "paddock" {
        String::new()
    } else {
        ratio(paddock_rps, summary.rps())
    }
}

/// Warms every load up, then runs each `bench.runs` times, interleaved (the order rotates every
/// round, so a burst of noise from the shared machine does not hit one server only).
pub(crate) fn interleaved(bench: &Bench, scenario: &str, loads: &[(String, Load)]) -> Vec<Summary> {
    for (label, load) in loads {
        bench.warm_up(scenario, label, load);
    }
    let mut summaries = vec![Summary::default(); loads.len()];
    for run in 0..bench.runs {
        for k in 0..loads.len() {
            let i = (k + run) % loads.len();
            let (label, load) = &loads[i];
            let result = bench.run_load(scenario, &format!("{label}-run{}", run + 1), load);
            summaries[i].push(result);
        }
    }
    summaries
}

/// A tiny xorshift generator: enough to pick a victim, no dependency.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn seeded() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() as u64);
        Rng(nanos | 1)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}
