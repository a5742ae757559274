//! Per-client request budgets for a site's `rate_limit` rules: a token bucket per rule and client
//! address, so that a password-guessing loop on `wp-login.php` is answered 429 by the front end
//! and never occupies a PHP worker.
//!
//! Buckets live as long as the site's compiled rules (a reload starts them afresh). Full buckets
//! carry no information, so the map is swept of them now and then and cannot grow without bound
//! beyond the clients that are actually over their budget.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use rules::site::RateLimitRule;
use rules::token_bucket::{Admission, TokenBucket};

/// Sweep the map once per this many checks.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: DashMap<(usize, IpAddr), TokenBucket>,
    checks: AtomicU64,
}

impl RateLimiter {
    /// `None` when the request may go on, else how long the client should wait.
    pub fn check(&self, rule: &RateLimitRule, client: IpAddr, now: Instant) -> Option<Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(rule, now);
        }
        let mut bucket = self
            .buckets
            .entry((rule.index, client))
            .or_insert_with(|| TokenBucket::new(rule.burst, now));
        match bucket.take(rule.per_second, rule.burst, now) {
            Admission::Allowed => None,
            Admission::Limited(wait) => Some(wait),
        }
    }

    /// Forgets the buckets of `rule` that have refilled completely.
    fn sweep(&self, rule: &RateLimitRule, now: Instant) {
        self.buckets.retain(|(index, _), bucket| {
            *index != rule.index || !bucket.is_full_at(rule.per_second, rule.burst, now)
        });
    }
}
