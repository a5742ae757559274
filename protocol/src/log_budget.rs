//! A token bucket for log volume, so that a worker flooding its stderr cannot flood paddock's log
//! (or its disk): bursts up to `capacity` bytes pass, then `per_second` bytes a second; what is
//! turned away is counted so that one summary line can say how much was left out.
//!
//! Sans-IO like the rest of the crate: the caller passes the clock.

use std::time::Instant;

#[derive(Debug, Clone)]
pub struct LogBudget {
    capacity: u64,
    per_second: u64,
    tokens: u64,
    refilled: Option<Instant>,
    dropped: u64,
}

impl LogBudget {
    /// Starts full.
    pub const fn new(capacity: u64, per_second: u64) -> Self {
        Self {
            capacity,
            per_second,
            tokens: capacity,
            refilled: None,
            dropped: 0,
        }
    }

    /// Whether `bytes` more may be logged at `now`; if not, they count as dropped.
    pub fn allow(&mut self, bytes: u64, now: Instant) -> bool {
        self.refill(now);
        if bytes <= self.tokens {
            self.tokens -= bytes;
            true
        } else {
            self.dropped += bytes;
            false
        }
    }

    /// Bytes turned away since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    fn refill(&mut self, now: Instant) {
        let Some(last) = self.refilled else {
            self.refilled = Some(now);
            return;
        };
        let elapsed_ms = now.saturating_duration_since(last).as_millis() as u64;
        let earned = elapsed_ms.saturating_mul(self.per_second) / 1000;
        if earned > 0 {
            self.tokens = self.tokens.saturating_add(earned).min(self.capacity);
            self.refilled = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_passes_then_the_rate_applies() {
        let start = Instant::now();
        let mut budget = LogBudget::new(100, 10);
        assert!(budget.allow(60, start));
        assert!(budget.allow(40, start));
        assert!(!budget.allow(1, start));
        assert!(!budget.allow(5, start + Duration::from_millis(200)));
        assert_eq!(budget.take_dropped(), 6);
        assert_eq!(budget.take_dropped(), 0);
        // One second later, 10 bytes are back (not more: the refill counts from the last one).
        assert!(budget.allow(10, start + Duration::from_millis(1000)));
        assert!(!budget.allow(1, start + Duration::from_millis(1000)));
    }

    #[test]
    fn the_bucket_never_holds_more_than_its_capacity() {
        let start = Instant::now();
        let mut budget = LogBudget::new(100, 1000);
        assert!(budget.allow(1, start));
        let later = start + Duration::from_secs(3600);
        assert!(budget.allow(100, later));
        assert!(!budget.allow(1, later));
    }
}
