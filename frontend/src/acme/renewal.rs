//! The life of one listener's or site's ACME certificate: load the stored one, order when there
//! is none (or it was ordered for other names or another CA), renew at two thirds of its
//! lifetime, retry failures with jittered backoff, and swap each new certificate into the
//! listeners' certificate stores ([`Target`]) — later handshakes get it, open connections keep
//! theirs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::Account;
use protocol::control::AcmeSpec;
use rustls::crypto::CryptoProvider;
use tracing::{error, info, warn};

use super::challenges::Challenges;
use super::issue::{self, IssueError, Issued};
use super::schedule;
use super::storage::{OrderRecord, Storage, StoredCertificate};
use super::target::Target;
use crate::metrics::certificates::CertificateMetrics;

/// The longest single sleep: a long wait is cut into pieces and the wall clock re-read, so that
/// a suspended machine or a clock change does not push a renewal late.
const LONGEST_SLEEP: Duration = Duration::from_secs(3600);

/// Everything one renewal task works with.
#[derive(Debug)]
pub(crate) struct Renewal {
    pub spec: AcmeSpec,
    pub target: Target,
    pub storage: Storage,
    pub provider: Arc<CryptoProvider>,
    pub challenges: Arc<Challenges>,
    pub metrics: CertificateMetrics,
}

/// The validity of the certificate in use.
#[derive(Debug, Clone, Copy)]
struct Validity {
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Renewal {
    /// Runs for the life of the front end.
    pub(crate) async fn run(self) {
        let record = OrderRecord {
            directory: self.spec.directory.clone(),
            domains: self.spec.domains.clone(),
        };
        let mut current = self.load_stored(&record);
        let mut account: Option<Account> = None;
        let mut failures = 0u32;
        let mut next = match current {
            Some(validity) => {
                schedule::renew_at(validity.not_before, validity.not_after, schedule::draw())
            }
            None => SystemTime::now(),
        };
        loop {
            sleep_until(next).await;
            info!(certificate = %self.target, domains = ?self.spec.domains, directory = %self.spec.directory, "ordering an ACME certificate");
            match self.attempt(&mut account, &record).await {
                Ok(validity) => {
                    failures = 0;
                    current = Some(validity);
                    self.metrics.ordered(&self.target.path(), true);
                    next = schedule::renew_at(
                        validity.not_before,
                        validity.not_after,
                        schedule::draw(),
                    );
                    info!(
                        certificate = %self.target,
                        expires = %httpdate::fmt_http_date(validity.not_after),
                        renew_in_s = until(next).as_secs(),
                        "ACME certificate installed"
                    );
                }
                Err(e) => {
                    failures += 1;
                    self.metrics.ordered(&self.target.path(), false);
                    // Loaded again at the next attempt, in case it was what failed.
                    account = None;
                    let delay = schedule::retry_after(failures, schedule::draw());
                    next = SystemTime::now() + delay;
                    let kept = if current.is_some() {
                        "the current certificate stays in use"
                    } else {
                        "the listeners keep their configured or self-signed certificates"
                    };
                    error!(
                        certificate = %self.target,
                        error = %e,
                        failures,
                        retry_in_s = delay.as_secs(),
                        "ACME certificate order failed; {kept}"
                    );
                }
            }
        }
    }

    /// The certificate kept in the state directory, installed if it was ordered for the same
    /// CA and names and still loads.
    fn load_stored(&self, record: &OrderRecord) -> Option<Validity> {
        let stored = self.storage.certificate()?;
        if stored.record != *record {
            info!(certificate = %self.target, "the stored ACME certificate was ordered for other names or another CA; ordering a new one");
            return None;
        }
        match self.install(&stored.chain_pem, &stored.key_pem) {
            Ok(validity) => {
                info!(
                    certificate = %self.target,
                    expires = %httpdate::fmt_http_date(validity.not_after),
                    "ACME certificate loaded from the state directory"
                );
                Some(validity)
            }
            Err(e) => {
                warn!(certificate = %self.target, error = %e, "the stored ACME certificate cannot be used; ordering a new one");
                None
            }
        }
    }

    async fn attempt(
        &self,
        account: &mut Option<Account>,
        record: &OrderRecord,
    ) -> Result<Validity, IssueError> {
        let Issued { chain_pem, key_pem } = match self.order(account).await {
            Err(IssueError::AccountGone(e)) => {
                // A private CA that was reset: a new account, and the order again at once.
                warn!(certificate = %self.target, error = %e, "the ACME server no longer knows the stored account; creating a new one");
                self.storage.forget_account();
                *account = None;
                self.order(account).await?
            }
            other => other?,
        };
        let validity = self
            .install(&chain_pem, &key_pem)
            .map_err(|e| IssueError::Validation {
                challenge: "certificate".into(),
                details: format!("the issued certificate cannot be used: {e}"),
            })?;
        self.storage.save_certificate(&StoredCertificate {
            chain_pem,
            key_pem,
            record: record.clone(),
        })?;
        Ok(validity)
    }

    /// One order with the cached account, loading or creating it first if needed.
    async fn order(&self, account: &mut Option<Account>) -> Result<Issued, IssueError> {
        let account = match account {
            Some(account) => account,
            None => account.insert(issue::account(&self.spec, &self.storage).await?),
        };
        issue::order(account, &self.spec, &self.challenges, &self.provider).await
    }

    /// Puts the certificate into the listeners' stores and their expiry gauges.
    fn install(&self, chain_pem: &str, key_pem: &str) -> Result<Validity, String> {
        let certified = crate::conn::tls::certified_from_pem(chain_pem, key_pem, &self.provider)
            .map_err(|e| e.to_string())?;
        let leaf = certified.end_entity_cert().map_err(|e| e.to_string())?;
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| e.to_string())?;
        let validity = parsed.validity();
        let (not_before, not_after) = (
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        );
        self.target.install(certified, &self.metrics);
        Ok(Validity {
            not_before: unix(not_before),
            not_after: unix(not_after),
        })
    }
}

fn unix(seconds: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.max(0).unsigned_abs())
}

fn until(when: SystemTime) -> Duration {
    when.duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

async fn sleep_until(when: SystemTime) {
    loop {
        let left = until(when);
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(LONGEST_SLEEP)).await;
    }
}
