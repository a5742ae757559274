//! Per-client request budgets for a site's `rate_limit` rules: a token bucket per rule and client
//! address, so that a password-guessing loop on `wp-login.php` is answered 429 by the front end
//! and never occupies a PHP worker.
//!
//! Buckets live as long as the site's compiled rules (a reload starts them afresh). Full buckets
//! carry no information, so the map is swept of them now and then. Memory stays bounded under a
//! flood from many addresses: an IPv6 client is counted by its /64 (one customer's network, which
//! can hold any number of addresses), and at most [`MAX_CLIENTS`] buckets exist per site; when
//! they are all in use even after a sweep, a client without a bucket is limited until one frees
//! up (as nginx's `limit_req` does when its zone is full).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use rules::site::RateLimitRule;
use rules::token_bucket::{Admission, TokenBucket};

/// Sweep the map once per this many checks.
const SWEEP_EVERY: u64 = 4096;
/// Buckets per site at most (a bucket is about 64 bytes with its key).
pub(super) const MAX_CLIENTS: usize = 100_000;

#[derive(Debug, Default)]
pub(super) struct RateLimiter {
    buckets: DashMap<(usize, IpAddr), TokenBucket>,
    checks: AtomicU64,
}

impl RateLimiter {
    /// `None` when the request may go on, else how long the client should wait.
    pub(super) fn check(
        &self,
        rule: &RateLimitRule,
        client: IpAddr,
        now: Instant,
    ) -> Option<Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(rule, now);
        }
        let key = (rule.index, client_key(client));
        // Full: a new client waits for the next sweep (sweeping here would make every request
        // of a flood walk the whole map).
        if self.buckets.len() >= MAX_CLIENTS && !self.buckets.contains_key(&key) {
            return Some(Duration::from_secs(1));
        }
        let mut bucket = self
            .buckets
            .entry(key)
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

/// The address a budget belongs to: an IPv4 address, or an IPv6 client's /64.
fn client_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(network.into())
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::site_rules::PathPatternSpec;
    use rules::pattern::PathPattern;

    fn rule() -> RateLimitRule {
        RateLimitRule {
            index: 0,
            pattern: PathPattern::compile(&PathPatternSpec::Prefix("/".into())).unwrap(),
            per_second: 1.0 / 60.0,
            burst: 2,
            methods: vec![],
        }
    }

    #[test]
    fn one_budget_per_ipv6_network_and_per_ipv4_address() {
        let limiter = RateLimiter::default();
        let now = Instant::now();
        let rule = rule();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(limiter.check(&rule, a, now), None);
        assert_eq!(limiter.check(&rule, b, now), None);
        assert!(
            limiter.check(&rule, a, now).is_some(),
            "same /64, same budget"
        );
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limiter.check(&rule, other, now), None);
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(limiter.check(&rule, v4, now), None);
        assert_eq!(limiter.check(&rule, mapped, now), None);
        assert!(
            limiter.check(&rule, v4, now).is_some(),
            "mapped is the same client"
        );
        assert_eq!(
            limiter.check(&rule, "192.0.2.2".parse().unwrap(), now),
            None
        );
    }

    #[test]
    fn the_map_stays_bounded_under_a_flood_of_addresses() {
        let limiter = RateLimiter::default();
        let now = Instant::now();
        let rule = rule();
        let mut limited = 0;
        for i in 0..(MAX_CLIENTS as u32 + 1000) {
            let client = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
            if limiter.check(&rule, client, now).is_some() {
                limited += 1;
            }
        }
        assert_eq!(limiter.buckets.len(), MAX_CLIENTS);
        assert_eq!(limited, 1000);
        // Once buckets refill, the next sweep frees them and new clients get one again.
        let later = now + Duration::from_secs(3600);
        let newcomer = "192.0.2.1".parse().unwrap();
        let admitted = (0..=SWEEP_EVERY).any(|_| limiter.check(&rule, newcomer, later).is_none());
        assert!(admitted);
        assert!(limiter.buckets.len() < MAX_CLIENTS);
    }
}
