//! The answers to the challenges in progress, shared by the ACME tasks that set them up and the
//! connections that answer them: HTTP-01 key authorizations by token (served on every listener
//! at `/.well-known/acme-challenge/TOKEN`), and TLS-ALPN-01 certificates by name
//! (presented to a handshake that offers only the `acme-tls/1` protocol, RFC 8737).
//!
//! An answer lives only while its order waits for validation: the task removes it once the
//! order is decided, so the maps stay as small as the orders in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The ALPN protocol of TLS-ALPN-01 validation handshakes (RFC 8737 section 6.2).
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The URL path prefix of HTTP-01 validation requests (RFC 8555 section 8.3).
pub(crate) const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

#[derive(Debug, Default)]
pub(crate) struct Challenges {
    http01: Mutex<HashMap<String, String>>,
    tls_alpn01: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    /// The key authorization to answer for an HTTP-01 request path, if one is expected.
    pub(crate) fn http01_answer(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(HTTP01_PREFIX)?;
        self.http01
            .lock()
            .expect("not poisoned")
            .get(token)
            .cloned()
    }

    pub(crate) fn set_http01(&self, token: &str, key_authorization: &str) {
        self.http01
            .lock()
            .expect("not poisoned")
            .insert(token.to_owned(), key_authorization.to_owned());
    }

    pub(crate) fn clear_http01(&self, token: &str) {
        self.http01.lock().expect("not poisoned").remove(token);
    }

    /// The validation certificate for `name`, if a TLS-ALPN-01 challenge for it is in progress.
    pub(crate) fn tls_alpn01_certificate(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.to_ascii_lowercase();
        self.tls_alpn01
            .lock()
            .expect("not poisoned")
            .get(&name)
            .cloned()
    }

    /// Makes the self-signed certificate that TLS-ALPN-01 asks for: the name as its only SAN and
    /// the critical `acmeIdentifier` extension holding SHA-256 of the key authorization.
    pub(crate) fn set_tls_alpn01(
        &self,
        name: &str,
        key_authorization_digest: &[u8],
        provider: &CryptoProvider,
    ) -> Result<(), String> {
        let mut params =
            rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(|e| e.to_string())?;
        params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(
            key_authorization_digest,
        )];
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        // Not `CertifiedKey::from_der`: its key check parses the certificate with webpki, which
        // refuses the critical acmeIdentifier extension that the CA requires.
        let signing_key = provider
            .key_provider
            .load_private_key(der)
            .map_err(|e| e.to_string())?;
        let certified = CertifiedKey::new(vec![cert.der().clone()], signing_key);
        self.tls_alpn01
            .lock()
            .expect("not poisoned")
            .insert(name.to_ascii_lowercase(), Arc::new(certified));
        Ok(())
    }

    pub(crate) fn clear_tls_alpn01(&self, name: &str) {
        self.tls_alpn01
            .lock()
            .expect("not poisoned")
            .remove(&name.to_ascii_lowercase());
    }
}
