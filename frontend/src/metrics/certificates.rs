//! Certificate metrics: when each ACME listener's certificate expires, and how its renewals
//! went. Kept apart from the request metrics: they change a few times a month, not per request.

use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};
use protocol::control::FrontendSpec;

use super::names::{self, label};

/// The `result` label values of renewals.
const RESULTS: [&str; 2] = ["success", "failure"];

#[derive(Debug, Clone)]
pub(crate) struct CertificateMetrics {
    expiry: GaugeVec,
    renewals: IntCounterVec,
}

impl CertificateMetrics {
    /// Registers both families, with every ACME listener's renewal counters at zero so that
    /// `increase()` sees the first event.
    pub(crate) fn new(registry: &Registry, spec: &FrontendSpec) -> Self {
        let expiry = GaugeVec::new(
            Opts::new(
                names::CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS,
                "When the listener's ACME certificate expires (notAfter), in seconds since the Unix epoch.",
            ),
            &[label::LISTENER],
        )
        .expect("valid metric");
        let renewals = IntCounterVec::new(
            Opts::new(
                names::ACME_ORDERS_TOTAL,
                "ACME certificate orders (first issuance and renewals), by listener and result (success, failure).",
            ),
            &[label::LISTENER, label::RESULT],
        )
        .expect("valid metric");
        registry.register(Box::new(expiry.clone())).expect("unique");
        registry
            .register(Box::new(renewals.clone()))
            .expect("unique");
        for listener in spec.listeners.iter().filter(|l| l.acme.is_some()) {
            for result in RESULTS {
                renewals.with_label_values(&[listener.name.as_str(), result]);
            }
        }
        CertificateMetrics { expiry, renewals }
    }

    /// The listener now serves a certificate that ends at `not_after` (Unix seconds).
    pub(crate) fn installed(&self, listener: &str, not_after: i64) {
        self.expiry
            .with_label_values(&[listener])
            .set(not_after as f64);
    }

    pub(crate) fn ordered(&self, listener: &str, success: bool) {
        let result = RESULTS[usize::from(!success)];
        self.renewals.with_label_values(&[listener, result]).inc();
    }
}
