//! Whose certificate an ACME task keeps: one HTTPS listener's (`listeners.NAME.acme`, served to
//! every name no SNI certificate covers), or one site's (`sites.NAME.acme`, served on every
//! HTTPS listener to the names it covers).

use std::fmt;
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use crate::conn::tls::CertificateStore;
use crate::metrics::certificates::CertificateMetrics;

#[derive(Debug, Clone)]
pub(crate) enum Target {
    Listener(Arc<CertificateStore>),
    Site {
        site: String,
        stores: Vec<Arc<CertificateStore>>,
    },
}

impl Target {
    /// Swaps `key` in, then sets the expiry gauge of every listener that presents it.
    pub(crate) fn install(&self, key: Arc<CertifiedKey>, metrics: &CertificateMetrics) {
        match self {
            Target::Listener(store) => store.install_acme(key),
            Target::Site { site, stores } => {
                for store in stores {
                    store.install_site_acme(site, key.clone());
                }
            }
        }
        for store in self.stores() {
            metrics.set_expiry(store.listener(), store.earliest_expiry());
        }
    }

    fn stores(&self) -> &[Arc<CertificateStore>] {
        match self {
            Target::Listener(store) => std::slice::from_ref(store),
            Target::Site { stores, .. } => stores,
        }
    }

    /// The state directory's name for it under `certificates/`, and the `certificate` label.
    pub(crate) fn path(&self) -> String {
        match self {
            Target::Listener(store) => format!("listener/{}", store.listener()),
            Target::Site { site, .. } => format!("site/{site}"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}
