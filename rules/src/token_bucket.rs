//! A token bucket per client: `burst` requests at once, then `per_second` on average. Sans-IO:
//! the caller passes the clock.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

/// What a bucket says about one more request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    Allowed,
    /// Refused; a token will be there after this long (for `Retry-After`).
    Limited(Duration),
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            updated: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, per_second: f64, burst: u32, now: Instant) -> Admission {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(f64::from(burst));
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admission::Allowed;
        }
        let missing = 1.0 - self.tokens;
        Admission::Limited(Duration::from_secs_f64(
            missing / per_second.max(f64::MIN_POSITIVE),
        ))
    }

    /// Whether the bucket would be full by `now`: such a bucket can be forgotten.
    pub fn is_full_at(&self, per_second: f64, burst: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * per_second >= f64::from(burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(1.0, 3, start), Admission::Allowed);
        }
        let Admission::Limited(wait) = bucket.take(1.0, 3, start) else {
            panic!("the fourth request at once is limited");
        };
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        let later = start + Duration::from_millis(1500);
        assert_eq!(bucket.take(1.0, 3, later), Admission::Allowed);
        assert!(matches!(bucket.take(1.0, 3, later), Admission::Limited(_)));
        assert!(bucket.is_full_at(1.0, 3, later + Duration::from_secs(3)));
    }
}
