//! A blocking TLS client that trusts one root only, for tests that must prove *which*
//! certificate paddock presents (the ACME tests: a handshake that succeeds shows that the
//! certificate chains to the test CA and names the host), and one that reads whatever is
//! presented, without verifying it, through `openssl s_client`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::PATIENCE;

/// An open TLS connection.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection to `addr` for `name` that trusts `root` only; panics if the handshake
/// fails (the certificate does not chain to `root` or does not name `name`).
pub fn connect(addr: SocketAddr, root: &CertificateDer<'static>, name: &str) -> TlsStream {
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let connection = ClientConnection::new(Arc::new(config), server_name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut stream = StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .unwrap_or_else(|e| panic!("TLS handshake with paddock for {name}: {e}"));
    }
    stream
}

/// The certificate the server presented on `stream` (DER).
pub fn presented(stream: &TlsStream) -> Vec<u8> {
    stream.conn.peer_certificates().unwrap()[0].to_vec()
}

/// `GET path` with `Host: host` on an open connection, which stays open; asserts a 200 and
/// returns the body (read by Content-Length).
pub fn get(stream: &mut TlsStream, host: &str, path: &str) -> String {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    stream.flush().unwrap();
    // Nothing follows the one response in flight, so the buffer reads no further than it.
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

/// The certificate presented for `name` (DER), not verified (a self-signed fallback), read
/// with `openssl s_client`.
pub fn presented_unverified(addr: SocketAddr, name: &str) -> Vec<u8> {
    let output = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            name,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client (apt-get install openssl)");
    CertificateDer::from_pem_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no certificate from s_client: {e}"))
        .to_vec()
}
