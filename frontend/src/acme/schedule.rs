//! When to renew and when to try again: pure functions of the certificate's validity, the
//! number of failures so far and a random draw, so that they are tested without a clock.
//!
//! Renewal starts at two thirds of the lifetime (Let's Encrypt's 90 days: after 60, with 30
//! left for retries), a little earlier by a random share of up to 1/30 of the lifetime so that
//! many servers started together do not all renew in the same second. A failed attempt is
//! tried again after 30 s, doubling up to 6 h, each delay drawn between half and all of its
//! value (jittered exponential backoff), so a CA that is down is not hammered.

use std::time::{Duration, SystemTime};

const FIRST_RETRY: Duration = Duration::from_secs(30);
const LONGEST_RETRY: Duration = Duration::from_secs(6 * 3600);

/// When a certificate valid from `not_before` to `not_after` should be renewed; `draw` is
/// uniform in [0, 1).
pub(crate) fn renew_at(not_before: SystemTime, not_after: SystemTime, draw: f64) -> SystemTime {
    let lifetime = not_after
        .duration_since(not_before)
        .unwrap_or(Duration::ZERO);
    let early = lifetime.mul_f64(draw.clamp(0.0, 1.0) / 30.0);
    not_before + lifetime * 2 / 3 - early
}

/// How long to wait after the `failures`-th failure in a row (1 for the first); `draw` is
/// uniform in [0, 1).
pub(crate) fn retry_after(failures: u32, draw: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let full = FIRST_RETRY
        .saturating_mul(1 << doublings)
        .min(LONGEST_RETRY);
    full.mul_f64(0.5 + draw.clamp(0.0, 1.0) / 2.0)
}

/// A uniform draw in [0, 1) from the system's random source.
pub(crate) fn draw() -> f64 {
    let mut bytes = [0u8; 4];
    // The jitter only spreads load; if the random source failed, no jitter is fine.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_90_day_certificate_is_renewed_after_60_days_minus_at_most_3() {
        let start = SystemTime::UNIX_EPOCH + DAY * 1000;
        let end = start + DAY * 90;
        assert_eq!(renew_at(start, end, 0.0), start + DAY * 60);
        let earliest = renew_at(start, end, 0.999_999);
        assert!(earliest < start + DAY * 60 && earliest > start + DAY * 57);
    }

    #[test]
    fn a_certificate_that_ends_before_it_starts_is_due_at_once() {
        let start = SystemTime::UNIX_EPOCH + DAY;
        assert_eq!(renew_at(start, start - DAY, 0.5), start);
    }

    #[test]
    fn retries_double_from_30_seconds_up_to_6_hours_with_jitter() {
        assert_eq!(retry_after(1, 0.999_999).as_secs(), 29);
        assert_eq!(retry_after(1, 0.0), Duration::from_secs(15));
        assert_eq!(retry_after(2, 0.0), Duration::from_secs(30));
        assert_eq!(retry_after(4, 0.0), Duration::from_secs(120));
        assert_eq!(retry_after(100, 0.0), LONGEST_RETRY / 2);
        assert!(retry_after(100, 0.999_999) <= LONGEST_RETRY);
    }

    #[test]
    fn draws_are_in_the_unit_interval_and_vary() {
        let draws: Vec<f64> = (0..16).map(|_| draw()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}
