//! TLS configuration: certificates chosen by SNI, a default certificate, reload without dropping
//! connections, and a self-signed fallback for localhost.
//!
//! Each HTTPS listener has one [`CertificateStore`]: a default certificate plus any number of SNI
//! certificates. The rustls `ServerConfig` never changes; its certificate resolver reads the
//! store's current contents at each handshake. A reload builds a complete new set first and swaps
//! it in only when every file loaded, so a bad file leaves the old certificates in use; connections
//! already open are not touched (their session keys do not depend on the files).
//!
//! Which SNI certificate answers is decided by the certificate itself: the first one whose subject
//! alternative names cover the requested name (wildcards included, checked by webpki, as a client
//! would). That keeps the names in one place, the certificate.
//!
//! A listener with `acme` also holds the certificate its ACME task obtained (`install_acme`),
//! which answers every name that no SNI certificate covers, in place of the configured or
//! generated default (that one only answers until the first ACME certificate arrives). Sites
//! with `acme` put theirs in every HTTPS listener (`install_site_acme`); each answers the names
//! it covers, after the configured SNI certificates. With the TLS-ALPN-01 challenge, a
//! handshake that offers the `acme-tls/1` protocol gets the validation certificate of the
//! order in progress instead (RFC 8737).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use protocol::control::{ListenerSpec, TlsFiles};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// TLS 1.2 sessions kept for resumption by session id (a few hundred bytes each).
const SESSION_CACHE: usize = 10_000;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, DnsName, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tracing::{info, warn};

use crate::acme::challenges::{Challenges, ACME_TLS_ALPN};

/// ALPN protocols offered, in order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificates from {path}: {reason}")]
    ReadCertificate { path: PathBuf, reason: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("cannot read a private key from {path}: {reason}")]
    ReadKey { path: PathBuf, reason: String },
    #[error("{path}: the certificate cannot be parsed: {reason}")]
    ParseCertificate { path: PathBuf, reason: String },
    #[error("{path}: the certificate and key do not form a usable pair: {source}")]
    Pair {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("cannot build the TLS configuration: {0}")]
    BuildConfig(#[from] rustls::Error),
    #[error("cannot generate a self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
}

/// One loaded certificate with its chain and signing key.
#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
}

/// The certificates of one listener at one moment.
#[derive(Debug)]
struct CertificateSet {
    default: Loaded,
    by_sni: Vec<Loaded>,
}

/// The certificates of one HTTPS listener, swappable at run time.
#[derive(Debug)]
pub struct CertificateStore {
    listener: String,
    default_files: Option<TlsFiles>,
    sni_files: Vec<TlsFiles>,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertificateSet>>,
    /// The certificate from the listener's ACME task, once there is one.
    acme: RwLock<Option<Arc<CertifiedKey>>>,
    /// Sites' own ACME certificates, by site, each answering the names it covers.
    site_acme: RwLock<Vec<(String, Arc<CertifiedKey>)>>,
    /// TLS-ALPN-01 answers, when this listener proves its names that way.
    challenges: Option<Arc<Challenges>>,
}

impl CertificateStore {
    /// Loads the listener's certificates; any failure is an error (paddock does not start).
    /// `challenges`: where the listener finds TLS-ALPN-01 validation certificates, when its
    /// own or a site's ACME certificate is validated that way.
    pub(crate) fn load(
        spec: &ListenerSpec,
        challenges: Option<&Arc<Challenges>>,
    ) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let set = load_set(
            spec.tls.as_ref(),
            &spec.sni_certificates,
            &provider,
            spec.acme.is_some(),
        )?;
        Ok(Arc::new(Self {
            listener: spec.name.clone(),
            default_files: spec.tls.clone(),
            sni_files: spec.sni_certificates.clone(),
            provider,
            current: RwLock::new(Arc::new(set)),
            acme: RwLock::new(None),
            site_acme: RwLock::new(Vec::new()),
            challenges: challenges.cloned(),
        }))
    }

    /// Serves `key` to every later handshake whose name no SNI certificate covers; open
    /// connections keep the certificate they were handshaken with.
    pub(crate) fn install_acme(&self, key: Arc<CertifiedKey>) {
        *self.acme.write().expect("not poisoned") = Some(key);
    }

    /// Serves a site's ACME certificate (replacing its previous one) to later handshakes for
    /// names it covers and no `sni_certificates` entry does.
    pub(crate) fn install_site_acme(&self, site: &str, key: Arc<CertifiedKey>) {
        let mut sites = self.site_acme.write().expect("not poisoned");
        match sites.iter_mut().find(|(name, _)| name == site) {
            Some(entry) => entry.1 = key,
            None => sites.push((site.to_owned(), key)),
        }
    }

    pub(crate) fn listener(&self) -> &str {
        &self.listener
    }

    /// The earliest end of validity (Unix seconds) among the certificates this listener
    /// presents now: its SNI certificates, the sites' ACME certificates, and its own ACME
    /// certificate or else the default one.
    pub(crate) fn earliest_expiry(&self) -> Option<i64> {
        let set = self.current();
        let acme = self.acme.read().expect("not poisoned").clone();
        let default = acme.unwrap_or_else(|| set.default.key.clone());
        let sites = self.site_acme.read().expect("not poisoned");
        set.by_sni
            .iter()
            .map(|loaded| &loaded.key)
            .chain(sites.iter().map(|(_, key)| key))
            .chain([&default])
            .filter_map(|key| not_after(key))
            .min()
    }

    /// Reads the certificate files again. On success the new certificates answer every later
    /// handshake; on failure the old ones stay and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        if self.default_files.is_none() {
            // The generated certificate is kept: a new one would change for no reason.
            return Ok(());
        }
        let set = load_set(
            self.default_files.as_ref(),
            &self.sni_files,
            &self.provider,
            false,
        )?;
        *self.current.write().expect("not poisoned") = Arc::new(set);
        info!(listener = %self.listener, "certificates reloaded");
        Ok(())
    }

    /// The rustls configuration for the listener: TLS 1.2 and 1.3 only, ALPN h2 and http/1.1,
    /// certificates from this store, and session resumption.
    ///
    /// Resumption skips the certificate and key exchange work of a full handshake for a client
    /// that comes back: stateless tickets (TLS 1.3, and RFC 5077 for TLS 1.2) whose keys rotate
    /// every 6 hours and never leave the process, as nginx and Caddy do by default, and a cache
    /// of session ids for TLS 1.2 clients without tickets.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        if self.challenges.is_some() {
            // Last, so that it is chosen only by a client that offers nothing else: the CA's
            // validation handshake.
            config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
        }
        config.ticketer = rustls::crypto::ring::Ticketer::new()?;
        config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
        Ok(Arc::new(config))
    }

    fn current(&self) -> Arc<CertificateSet> {
        self.current.read().expect("not poisoned").clone()
    }
}

impl ResolvesServerCert for CertificateStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(challenges) = &self.challenges {
            let validation = hello
                .alpn()
                .is_some_and(|mut offered| offered.any(|p| p == ACME_TLS_ALPN));
            if validation {
                // Only the validation certificate may answer `acme-tls/1`; none means no
                // challenge is in progress for that name, and the handshake fails.
                return challenges.tls_alpn01_certificate(hello.server_name()?);
            }
        }
        let set = self.current();
        let name = hello.server_name().and_then(|name| {
            Some(ServerName::DnsName(
                DnsName::try_from(name).ok()?.to_owned(),
            ))
        });
        if let Some(name) = &name {
            if let Some(loaded) = set.by_sni.iter().find(|l| covers(&l.key, name)) {
                return Some(loaded.key.clone());
            }
            let sites = self.site_acme.read().expect("not poisoned");
            if let Some((_, key)) = sites.iter().find(|(_, key)| covers(key, name)) {
                return Some(key.clone());
            }
        }
        let acme = self.acme.read().expect("not poisoned").clone();
        Some(acme.unwrap_or_else(|| set.default.key.clone()))
    }
}

/// The leaf certificate's notAfter, in Unix seconds.
fn not_after(key: &CertifiedKey) -> Option<i64> {
    let der = key.end_entity_cert().ok()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// Whether the leaf certificate is valid for `name` (exact or wildcard SAN).
fn covers(key: &CertifiedKey, name: &ServerName<'_>) -> bool {
    key.end_entity_cert()
        .ok()
        .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
        .is_some_and(|cert| cert.verify_is_valid_for_subject_name(name).is_ok())
}

fn load_set(
    default: Option<&TlsFiles>,
    sni: &[TlsFiles],
    provider: &CryptoProvider,
    acme: bool,
) -> Result<CertificateSet, TlsError> {
    let default = match default {
        Some(files) => load_pair(files, provider)?,
        None => self_signed(provider, acme)?,
    };
    let by_sni = sni
        .iter()
        .map(|files| load_pair(files, provider))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CertificateSet { default, by_sni })
}

fn load_pair(files: &TlsFiles, provider: &CryptoProvider) -> Result<Loaded, TlsError> {
    let chain = load_chain(&files.certificate)?;
    webpki::EndEntityCert::try_from(&chain[0]).map_err(|e| TlsError::ParseCertificate {
        path: files.certificate.clone(),
        reason: e.to_string(),
    })?;
    let key = load_key(&files.key)?;
    let certified =
        CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Pair {
            path: files.certificate.clone(),
            source,
        })?;
    Ok(Loaded {
        key: Arc::new(certified),
    })
}

/// A certificate chain and key from PEM text (an ACME certificate), checked to form a pair.
pub(crate) fn certified_from_pem(
    chain_pem: &str,
    key_pem: &str,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let from_acme = || PathBuf::from("(ACME certificate)");
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::ReadCertificate {
            path: from_acme(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: from_acme() });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::ReadKey {
        path: from_acme(),
        reason: e.to_string(),
    })?;
    let certified =
        CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Pair {
            path: from_acme(),
            source,
        })?;
    Ok(Arc::new(certified))
}

/// Checks that PEM files load into a working certificate (used by `paddock check`).
pub fn check_files(files: &TlsFiles) -> Result<(), TlsError> {
    load_pair(files, &rustls::crypto::ring::default_provider()).map(drop)
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::ReadCertificate {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::ReadKey {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A fresh self-signed certificate for localhost, 127.0.0.1 and ::1, so that HTTPS works out of
/// the box. Browsers will warn about it; configure a real certificate for anything public.
fn self_signed(provider: &CryptoProvider, acme: bool) -> Result<Loaded, TlsError> {
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let generated = rcgen::generate_simple_self_signed(names)?;
    if acme {
        info!(
            "an HTTPS listener with acme has no certificate yet: a self-signed one for localhost \
             answers until the ACME certificate is there"
        );
    } else {
        warn!(
            "no certificate configured for an HTTPS listener: generated a self-signed certificate \
             for localhost, 127.0.0.1 and ::1 (clients will warn about it)"
        );
    }
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    let certified = CertifiedKey::from_der(vec![generated.cert.der().clone()], key, provider)?;
    Ok(Loaded {
        key: Arc::new(certified),
    })
}
