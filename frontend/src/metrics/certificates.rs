//! Certificate metrics: when each HTTPS listener's certificates expire (files and ACME alike),
//! and how ACME orders went. Kept apart from the request metrics: they change a few times a
//! month, not per request.

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
    /// Registers both families, with every ACME certificate's renewal counters at zero so that
    /// `increase()` sees the first event.
    pub(crate) fn new(registry: &Registry, spec: &FrontendSpec) -> Self {
        let expiry = GaugeVec::new(
            Opts::new(
                names::CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS,
                "The earliest notAfter among the certificates the HTTPS listener presents (configured, SNI or ACME), in seconds since the Unix epoch.",
            ),
            &[label::LISTENER],
        )
        .expect("valid metric");
        let renewals = IntCounterVec::new(
            Opts::new(
                names::ACME_ORDERS_TOTAL,
                "ACME certificate orders (first issuance and renewals), by certificate (listener/NAME or site/NAME) and result (success, failure).",
            ),
            &[label::CERTIFICATE, label::RESULT],
        )
        .expect("valid metric");
        registry.register(Box::new(expiry.clone())).expect("unique");
        registry
            .register(Box::new(renewals.clone()))
            .expect("unique");
        let listeners = spec
            .listeners
            .iter()
            .filter(|l| l.acme.is_some())
            .map(|l| format!("listener/{}", l.name));
        let sites = spec.site_acme.iter().map(|s| format!("site/{}", s.site));
        for certificate in listeners.chain(sites) {
            for result in RESULTS {
                renewals.with_label_values(&[certificate.as_str(), result]);
            }
        }
        CertificateMetrics { expiry, renewals }
    }

    /// The listener's certificates now end at `not_after` at the earliest (Unix seconds);
    /// `None` (unreadable dates) removes the series rather than report a wrong date.
    pub(crate) fn set_expiry(&self, listener: &str, not_after: Option<i64>) {
        match not_after {
            Some(not_after) => self
                .expiry
                .with_label_values(&[listener])
                .set(not_after as f64),
            None => {
                let _ = self.expiry.remove_label_values(&[listener]);
            }
        }
    }

    /// An order for `certificate` (`listener/NAME` or `site/NAME`) ended.
    pub(crate) fn ordered(&self, certificate: &str, success: bool) {
        let result = RESULTS[usize::from(!success)];
        self.renewals
            .with_label_values(&[certificate, result])
            .inc();
    }
}
