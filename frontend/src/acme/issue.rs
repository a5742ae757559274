//! One ACME order from start to certificate: the account (stored, or created and stored), a
//! new order for the listener's names, the chosen challenge for each pending authorization,
//! the wait for validation, finalization with a fresh key, and the chain.
//!
//! A failed validation is reported with what the CA said for each name (its problem
//! documents), so that the log line says *why*: a port that does not answer, a name that
//! does not resolve, a wrong answer.

use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, Order, OrderStatus, RetryPolicy,
};
use protocol::control::{AcmeChallenge, AcmeSpec};
use rustls::crypto::CryptoProvider;
use tracing::info;

use super::challenges::Challenges;
use super::storage::{Storage, StorageError};

/// How long an order may wait for validation, and then for its certificate, before the attempt
/// counts as failed (retried later with backoff).
const ORDER_PATIENCE: Duration = Duration::from_secs(180);

#[derive(Debug, thiserror::Error)]
pub(crate) enum IssueError {
    #[error("cannot set up the ACME client: {0}")]
    Client(instant_acme::Error),
    #[error("cannot use or create the ACME account at {directory}: {source}")]
    Account {
        directory: String,
        source: instant_acme::Error,
    },
    #[error("the ACME server refused the order: {0}")]
    Order(instant_acme::Error),
    #[error("the ACME server no longer knows the stored account ({0}); a new one is made at the next attempt")]
    AccountGone(instant_acme::Error),
    #[error("the ACME server offers no {challenge} challenge for `{domain}`")]
    NoChallenge { challenge: String, domain: String },
    #[error("`{domain}` cannot be authorized: its authorization is {status}")]
    Authorization { domain: String, status: String },
    #[error("cannot make the TLS-ALPN-01 certificate: {0}")]
    ChallengeCertificate(String),
    #[error("{challenge} validation failed: {details}")]
    Validation { challenge: String, details: String },
    #[error("the order did not complete: {0}")]
    Incomplete(instant_acme::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A certificate chain and its key, as PEM.
#[derive(Debug)]
pub(crate) struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

/// The stored account, or a new one (stored at once).
pub(crate) async fn account(spec: &AcmeSpec, storage: &Storage) -> Result<Account, IssueError> {
    let builder = || match &spec.ca_certificate {
        Some(root) => Account::builder_with_root(root),
        None => Account::builder(),
    };
    let account_error = |source| IssueError::Account {
        directory: spec.directory.clone(),
        source,
    };
    if let Some(json) = storage.account() {
        if let Ok(credentials) = serde_json::from_str::<AccountCredentials>(&json) {
            return builder()
                .map_err(IssueError::Client)?
                .from_credentials(credentials)
                .await
                .map_err(account_error);
        }
    }
    let contact: Vec<String> = spec.email.iter().map(|e| format!("mailto:{e}")).collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount {
        contact: &contact,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, credentials) = builder()
        .map_err(IssueError::Client)?
        .create(&new, spec.directory.clone(), None)
        .await
        .map_err(account_error)?;
    storage.save_account(&serde_json::to_string(&credentials).expect("serializable"))?;
    info!(directory = %spec.directory, id = account.id(), "ACME account created");
    Ok(account)
}

/// Places an order for `spec.domains` and sees it through.
pub(crate) async fn order(
    account: &Account,
    spec: &AcmeSpec,
    challenges: &Challenges,
    provider: &CryptoProvider,
) -> Result<Issued, IssueError> {
    let identifiers: Vec<Identifier> = spec
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| match &e {
            instant_acme::Error::Api(problem)
                if problem
                    .r#type
                    .as_deref()
                    .is_some_and(|t| t.ends_with(":accountDoesNotExist")) =>
            {
                IssueError::AccountGone(e)
            }
            _ => IssueError::Order(e),
        })?;
    // Answers stay published until this guard goes, whatever way the order ends.
    let mut armed = Armed {
        challenges,
        http01: Vec::new(),
        tls_alpn01: Vec::new(),
    };
    let kind = match spec.challenge {
        AcmeChallenge::Http01 => ChallengeType::Http01,
        AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
    };
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(IssueError::Order)?;
        let domain = authorization.identifier().to_string();
        match authorization.status {
            AuthorizationStatus::Pending => {}
            // Still valid from an earlier order of this account: nothing to prove.
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(IssueError::Authorization {
                    domain,
                    status: format!("{other:?}").to_lowercase(),
                })
            }
        }
        let mut challenge =
            authorization
                .challenge(kind.clone())
                .ok_or_else(|| IssueError::NoChallenge {
                    challenge: challenge_name(spec.challenge).into(),
                    domain: domain.clone(),
                })?;
        let key_authorization = challenge.key_authorization();
        match spec.challenge {
            AcmeChallenge::Http01 => {
                challenges.set_http01(&challenge.token, key_authorization.as_str());
                armed.http01.push(challenge.token.clone());
            }
            AcmeChallenge::TlsAlpn01 => {
                challenges
                    .set_tls_alpn01(&domain, key_authorization.digest().as_ref(), provider)
                    .map_err(IssueError::ChallengeCertificate)?;
                armed.tls_alpn01.push(domain.clone());
            }
        }
        // A CA that validates at once (pebble without its random delay, some private CAs)
        // answers this very request with the validation's problem.
        challenge.set_ready().await.map_err(|e| match e {
            instant_acme::Error::Api(problem) => IssueError::Validation {
                challenge: challenge_name(spec.challenge).into(),
                details: format!("{domain}: {problem}"),
            },
            other => IssueError::Order(other),
        })?;
    }
    let patience = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .timeout(ORDER_PATIENCE);
    match order.poll_ready(&patience).await {
        Ok(OrderStatus::Ready) => {}
        Ok(_) | Err(instant_acme::Error::Api(_)) => {
            return Err(IssueError::Validation {
                challenge: challenge_name(spec.challenge).into(),
                details: validation_problems(&mut order).await,
            })
        }
        Err(other) => return Err(IssueError::Incomplete(other)),
    }
    drop(armed);
    let key_pem = order.finalize().await.map_err(IssueError::Incomplete)?;
    let chain_pem = order
        .poll_certificate(&patience)
        .await
        .map_err(IssueError::Incomplete)?;
    Ok(Issued { chain_pem, key_pem })
}

pub(crate) fn challenge_name(challenge: AcmeChallenge) -> &'static str {
    match challenge {
        AcmeChallenge::Http01 => "http-01",
        AcmeChallenge::TlsAlpn01 => "tls-alpn-01",
    }
}

/// What the CA said about each name that failed, fetched fresh: `name: problem; …`.
async fn validation_problems(order: &mut Order) -> String {
    let mut problems = Vec::new();
    let order_error = order.state().error.as_ref().map(ToString::to_string);
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authorization)) = authorizations.next().await {
        let domain = authorization.identifier().to_string();
        let Ok(state) = authorization.refresh().await else {
            continue;
        };
        let mut said = false;
        for challenge in &state.challenges {
            if let Some(error) = &challenge.error {
                problems.push(format!("{domain}: {error}"));
                said = true;
            }
        }
        if !said && state.status != AuthorizationStatus::Valid {
            problems.push(format!("{domain}: authorization {:?}", state.status));
        }
    }
    // The order's own error usually repeats a challenge's; it is kept only when it is all
    // there is.
    problems.extend(order_error.filter(|_| problems.is_empty()));
    if problems.is_empty() {
        "the order became invalid and the ACME server gave no reason".into()
    } else {
        problems.join("; ")
    }
}

/// Withdraws the published answers when dropped.
struct Armed<'a> {
    challenges: &'a Challenges,
    http01: Vec<String>,
    tls_alpn01: Vec<String>,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        for token in &self.http01 {
            self.challenges.clear_http01(token);
        }
        for domain in &self.tls_alpn01 {
            self.challenges.clear_tls_alpn01(domain);
        }
    }
}

impl std::fmt::Debug for Armed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Armed")
            .field("http01", &self.http01)
            .field("tls_alpn01", &self.tls_alpn01)
            .finish()
    }
}
