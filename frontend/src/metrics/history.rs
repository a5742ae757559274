//! The last 15 minutes of each pool, one sample a second, for the status page's charts: requests
//! per second, p50 and p99 latency, queue depth and busy slots. Kept by paddock itself, so the
//! charts need no Prometheus server and no script from elsewhere.
//!
//! Rates and latencies come from the request-duration histogram (`paddock_request_duration_
//! seconds`, time to the response head): each second's difference of its counts is that
//! second's requests, and a quantile is read from the difference of its buckets, interpolated
//! within the bucket it falls in (as Prometheus' `histogram_quantile` does). Queue depth and
//! busy slots are the values at the sample.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prometheus::core::Metric;
use prometheus::HistogramVec;

use super::report::StatusReport;

/// 15 minutes of one-second samples.
pub(crate) const KEPT_SAMPLES: usize = 900;
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);

/// One second of one pool. Latencies are `None` for a second without requests.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub(crate) struct Sample {
    /// Seconds since the Unix epoch.
    pub t: f64,
    pub rps: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub waiting: usize,
    pub busy: u64,
}

/// A histogram's cumulative counts at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Counts {
    pub total: u64,
    /// Cumulative count per upper bound, in bound order.
    pub buckets: Vec<(f64, u64)>,
}

impl Counts {
    pub(crate) fn of(histograms: &HistogramVec, pool: &str) -> Self {
        let metric = histograms.with_label_values(&[pool]).metric();
        let histogram = metric.get_histogram();
        Counts {
            total: histogram.get_sample_count(),
            buckets: histogram
                .get_bucket()
                .iter()
                .map(|b| (b.upper_bound(), b.cumulative_count()))
                .collect(),
        }
    }
}

#[derive(Debug, Default)]
struct Series {
    samples: VecDeque<Sample>,
    last: Option<(Counts, SystemTime)>,
}

/// Every pool's samples.
#[derive(Debug, Default)]
pub(crate) struct History {
    pools: Mutex<HashMap<String, Series>>,
}

impl History {
    /// Adds the sample of `pool` taken at `at`, from the histogram's counts then.
    pub(crate) fn record(
        &self,
        pool: &str,
        at: SystemTime,
        counts: Counts,
        waiting: usize,
        busy: u64,
    ) {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let series = pools.entry(pool.to_string()).or_default();
        if let Some((before, then)) = &series.last {
            let seconds = at.duration_since(*then).unwrap_or_default().as_secs_f64();
            if seconds > 0.0 && counts.total >= before.total {
                let requests = counts.total - before.total;
                let sample = Sample {
                    t: at
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                    rps: requests as f64 / seconds,
                    p50_ms: quantile(before, &counts, 0.5).map(|s| s * 1000.0),
                    p99_ms: quantile(before, &counts, 0.99).map(|s| s * 1000.0),
                    waiting,
                    busy,
                };
                if series.samples.len() == KEPT_SAMPLES {
                    series.samples.pop_front();
                }
                series.samples.push_back(sample);
            }
        }
        series.last = Some((counts, at));
    }

    /// Forgets pools no longer configured.
    pub(crate) fn keep_only(&self, pools: &[&str]) {
        let mut all = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|name, _| pools.contains(&name.as_str()));
    }

    /// Every pool's samples, oldest first.
    pub(crate) fn snapshot(&self) -> HashMap<String, Vec<Sample>> {
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .iter()
            .map(|(name, series)| (name.clone(), series.samples.iter().copied().collect()))
            .collect()
    }
}

/// The `q` quantile (in seconds) of the requests counted between `before` and `after`; `None`
/// without requests. Within a bucket the requests are taken as spread evenly; past the last
/// finite bound, that bound is the answer.
fn quantile(before: &Counts, after: &Counts, q: f64) -> Option<f64> {
    let total = after.total.checked_sub(before.total).filter(|n| *n > 0)?;
    let rank = q * total as f64;
    let mut lower = 0.0;
    let mut below = 0u64;
    for (i, &(bound, cumulative)) in after.buckets.iter().enumerate() {
        let earlier = before.buckets.get(i).map_or(0, |b| b.1);
        let count = cumulative.saturating_sub(earlier);
        if count as f64 >= rank {
            let within = (count - below) as f64;
            if within <= 0.0 {
                return Some(bound);
            }
            return Some(lower + (bound - lower) * ((rank - below as f64) / within));
        }
        below = count;
        lower = bound;
    }
    Some(lower)
}

/// Takes a sample of every pool each second, until the front end stops.
pub(crate) async fn sample_every_second(
    history: Arc<History>,
    histograms: HistogramVec,
    report: impl Fn() -> StatusReport,
) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let report = report();
        let now = SystemTime::now();
        for pool in &report.pools {
            let counts = Counts::of(&histograms, &pool.name);
            let waiting = pool.waiting + pool.sent_ahead;
            history.record(&pool.name, now, counts, waiting, pool.busy_slots);
        }
        let names: Vec<&str> = report.pools.iter().map(|p| p.name.as_str()).collect();
        history.keep_only(&names);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(total: u64, buckets: &[(f64, u64)]) -> Counts {
        Counts {
            total,
            buckets: buckets.to_vec(),
        }
    }

    #[test]
    fn quantiles_come_from_the_second_s_own_requests() {
        // Before: 100 slow requests. In this second: 10 requests, all under 10 ms.
        let before = counts(100, &[(0.01, 0), (0.1, 0), (1.0, 100)]);
        let after = counts(110, &[(0.01, 10), (0.1, 10), (1.0, 110)]);
        let p50 = quantile(&before, &after, 0.5).unwrap();
        assert!((p50 - 0.005).abs() < 1e-9, "{p50}");
        assert_eq!(quantile(&before, &before, 0.5), None);
        // Half fast, half between 0.1 and 1 s: p99 near the top of the slow bucket.
        let after = counts(120, &[(0.01, 10), (0.1, 10), (1.0, 120)]);
        let p99 = quantile(&before, &after, 0.99).unwrap();
        assert!(p99 > 0.9 && p99 <= 1.0, "{p99}");
    }

    #[test]
    fn fifteen_minutes_are_kept_and_no_more() {
        let history = History::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for second in 0..(KEPT_SAMPLES as u64 + 100) {
            let at = start + Duration::from_secs(second);
            history.record("php", at, counts(second * 5, &[(1.0, second * 5)]), 1, 2);
        }
        let samples = &history.snapshot()["php"];
        assert_eq!(samples.len(), KEPT_SAMPLES);
        assert!(samples
            .iter()
            .all(|s| s.rps == 5.0 && s.waiting == 1 && s.busy == 2));
        assert!(samples.windows(2).all(|w| w[1].t - w[0].t == 1.0));
        history.keep_only(&[]);
        assert!(history.snapshot().is_empty());
    }
}
