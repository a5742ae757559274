//! TLS configuration: PEM files from the config, or a self-signed certificate for localhost.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use protocol::control::TlsFiles;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

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
    #[error("the certificate and key do not form a usable pair: {0}")]
    BuildConfig(#[from] rustls::Error),
    #[error("cannot generate a self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
}

/// The rustls configuration for an HTTPS listener: TLS 1.2 and 1.3 only, ALPN h2 and http/1.1.
pub fn server_config(files: Option<&TlsFiles>) -> Result<Arc<ServerConfig>, TlsError> {
    let (chain, key) = match files {
        Some(files) => (load_chain(&files.certificate)?, load_key(&files.key)?),
        None => self_signed()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Checks that PEM files load into a working configuration (used by `paddock check`).
pub fn check_files(files: &TlsFiles) -> Result<(), TlsError> {
    server_config(Some(files)).map(drop)
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
fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let generated = rcgen::generate_simple_self_signed(names)?;
    tracing::warn!(
        "no certificate configured for an HTTPS listener: generated a self-signed certificate for \
         localhost, 127.0.0.1 and ::1 (clients will warn about it)"
    );
    let key = PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der());
    Ok((
        vec![generated.cert.der().clone()],
        PrivateKeyDer::Pkcs8(key),
    ))
}
