//! The per-request metrics' handles, remembered per runtime thread.
//!
//! `with_label_values` hashes the label values (SipHash) and takes the metric family's read
//! lock, a count that both runtime threads write; two such look-ups for every answered request
//! were about 2.5 % of the front end's samples on a static file. An `IntCounter` or a
//! `Histogram` is a shared handle to the metric's own atomic counts, so a thread may keep the
//! handles it looked up and count through them: the figures are the same, only the look-up is
//! gone. The two families are never reset nor have label values removed, so a handle stays the
//! one the family exports.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{Histogram, IntCounter};

/// A thread remembers at most this many label sets (pools × status classes × methods seen);
/// past it, it starts again.
const MAX_HANDLES: usize = 128;

/// Names one [`super::Metrics`] (tests create several in one process).
pub(super) fn next_owner() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

struct Handles {
    owner: u64,
    pool: Box<str>,
    class: &'static str,
    method: &'static str,
    requests: IntCounter,
    duration: Histogram,
}

thread_local! {
    static HANDLES: RefCell<Vec<Handles>> = const { RefCell::new(Vec::new()) };
}

/// Counts one answered request through this thread's handles for its labels, looking them up
/// with `lookup` the first time.
pub(super) fn count(
    owner: u64,
    labels: (&str, &'static str, &'static str),
    lookup: impl FnOnce() -> (IntCounter, Histogram),
    seconds: f64,
) {
    let (pool, class, method) = labels;
    HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        let known = handles.iter().position(|h| {
            h.owner == owner && h.class == class && h.method == method && &*h.pool == pool
        });
        let index = match known {
            Some(index) => index,
            None => {
                if handles.len() >= MAX_HANDLES {
                    handles.clear();
                }
                let (requests, duration) = lookup();
                handles.push(Handles {
                    owner,
                    pool: pool.into(),
                    class,
                    method,
                    requests,
                    duration,
                });
                handles.len() - 1
            }
        };
        handles[index].requests.inc();
        handles[index].duration.observe(seconds);
    });
}

/// A per-pool histogram a thread keeps the handle of (the families are never reset either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PoolHistogram {
    QueueWait,
    WorkerDuration,
}

struct PoolHandle {
    owner: u64,
    which: PoolHistogram,
    pool: Box<str>,
    histogram: Histogram,
}

thread_local! {
    static POOL_HANDLES: RefCell<Vec<PoolHandle>> = const { RefCell::new(Vec::new()) };
}

/// This thread's handle of the `which` histogram of `pool`, looked up with `lookup` the first
/// time: each proxied request observes two of them, which were two label look-ups a request.
pub(super) fn pool_histogram(
    owner: u64,
    which: PoolHistogram,
    pool: &str,
    lookup: impl FnOnce() -> Histogram,
) -> Histogram {
    POOL_HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        let known = handles
            .iter()
            .find(|h| h.owner == owner && h.which == which && &*h.pool == pool);
        if let Some(handle) = known {
            return handle.histogram.clone();
        }
        if handles.len() >= MAX_HANDLES {
            handles.clear();
        }
        let histogram = lookup();
        handles.push(PoolHandle {
            owner,
            which,
            pool: pool.into(),
            histogram: histogram.clone(),
        });
        histogram
    })
}

#[cfg(test)]
mod tests {
    use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

    use super::*;

    fn family(name: &str) -> (IntCounterVec, HistogramVec) {
        let counts = IntCounterVec::new(Opts::new(name, "t"), &["pool", "class", "method"]);
        let times = HistogramVec::new(HistogramOpts::new(format!("{name}_s"), "t"), &["pool"]);
        (counts.unwrap(), times.unwrap())
    }

    #[test]
    fn counts_reach_their_own_family_through_remembered_handles() {
        let (first, second) = (family("first"), family("second"));
        let (one, two) = (next_owner(), next_owner());
        let lookup = |(counts, times): &(IntCounterVec, HistogramVec), class: &str| {
            (
                counts.with_label_values(&["php", class, "GET"]),
                times.with_label_values(&["php"]),
            )
        };
        for _ in 0..3 {
            count(one, ("php", "2xx", "GET"), || lookup(&first, "2xx"), 0.5);
        }
        count(two, ("php", "2xx", "GET"), || lookup(&second, "2xx"), 0.5);
        count(one, ("php", "4xx", "GET"), || lookup(&first, "4xx"), 0.5);
        let counted = |(counts, _): &(IntCounterVec, HistogramVec), class: &str| {
            counts.with_label_values(&["php", class, "GET"]).get()
        };
        assert_eq!(counted(&first, "2xx"), 3);
        assert_eq!(counted(&first, "4xx"), 1);
        assert_eq!(counted(&second, "2xx"), 1);
        assert_eq!(first.1.with_label_values(&["php"]).get_sample_count(), 4);
        assert_eq!(second.1.with_label_values(&["php"]).get_sample_count(), 1);
    }

    #[test]
    fn pool_histograms_are_their_own_familys_and_pools() {
        let (_, queue) = family("queue");
        let (_, work) = family("work");
        let owner = next_owner();
        let handle = |which, family: &HistogramVec, pool: &str| {
            pool_histogram(owner, which, pool, || family.with_label_values(&[pool]))
        };
        for _ in 0..2 {
            handle(PoolHistogram::QueueWait, &queue, "php").observe(0.1);
        }
        handle(PoolHistogram::WorkerDuration, &work, "php").observe(0.1);
        handle(PoolHistogram::QueueWait, &queue, "py").observe(0.1);
        let seen = |family: &HistogramVec, pool: &str| {
            family.with_label_values(&[pool]).get_sample_count()
        };
        assert_eq!(seen(&queue, "php"), 2);
        assert_eq!(seen(&queue, "py"), 1);
        assert_eq!(seen(&work, "php"), 1);
        assert_eq!(seen(&work, "py"), 0);
    }
}
