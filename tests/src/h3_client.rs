//! An HTTP/3 client made of the crates paddock serves HTTP/3 with (quinn, h3), blocking, for
//! tests. It does not verify the server's certificate (paddock's test listeners present a
//! certificate they generate at start); what it checks is the protocol.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::PATIENCE;

/// A response: status, headers and the whole body.
#[derive(Debug)]
pub struct H3Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl H3Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request, as a client would send it.
#[derive(Debug, Clone, Copy)]
pub struct H3Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

impl<'a> H3Request<'a> {
    pub fn get(path: &'a str) -> Self {
        Self {
            method: "GET",
            path,
            headers: &[],
            body: b"",
        }
    }
}

/// What to do with a request's stream before its body is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Send the whole body and end the stream.
    Complete,
    /// Send this many body bytes, then reset the stream (a client giving up midway).
    ResetAfter(usize),
}

/// Sends `requests` one after the other on one QUIC connection to `addr` and returns their
/// responses (`None` for a request the client reset).
pub fn exchange(
    addr: SocketAddr,
    requests: &[(H3Request<'_>, Ending)],
) -> Result<Vec<Option<H3Response>>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        tokio::time::timeout(PATIENCE, run(addr, requests))
            .await
            .map_err(|_| format!("no answer within {PATIENCE:?}"))?
    })
}

/// One request on a new connection.
pub fn request(addr: SocketAddr, request: H3Request<'_>) -> Result<H3Response, String> {
    let mut answers = exchange(addr, &[(request, Ending::Complete)])?;
    answers
        .pop()
        .flatten()
        .ok_or_else(|| "no response".to_string())
}

async fn run(
    addr: SocketAddr,
    requests: &[(H3Request<'_>, Ending)],
) -> Result<Vec<Option<H3Response>>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut endpoint =
        quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).map_err(|e| err(&e))?;
    endpoint.set_default_client_config(client_config()?);
    let connection = endpoint
        .connect(addr, "localhost")
        .map_err(|e| err(&e))?
        .await
        .map_err(|e| err(&e))?;
    let (mut driver, mut sender) = h3::client::new(h3_quinn::Connection::new(connection))
        .await
        .map_err(|e| err(&e))?;
    let drive = tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
    let mut answers = Vec::new();
    for (request, ending) in requests {
        let mut builder = http::Request::builder().method(request.method).uri(format!(
            "https://localhost:{}{}",
            addr.port(),
            request.path
        ));
        for (name, value) in request.headers {
            builder = builder.header(*name, *value);
        }
        let head = builder.body(()).map_err(|e| err(&e))?;
        let mut stream = sender.send_request(head).await.map_err(|e| err(&e))?;
        match *ending {
            Ending::Complete => {
                if !request.body.is_empty() {
                    // In pieces, as a real upload arrives.
                    for chunk in request.body.chunks(16 * 1024) {
                        stream
                            .send_data(Bytes::copy_from_slice(chunk))
                            .await
                            .map_err(|e| err(&e))?;
                    }
                }
                stream.finish().await.map_err(|e| err(&e))?;
                let response = stream.recv_response().await.map_err(|e| err(&e))?;
                let mut body = Vec::new();
                while let Some(mut data) = stream.recv_data().await.map_err(|e| err(&e))? {
                    body.extend_from_slice(&data.copy_to_bytes(data.remaining()));
                }
                answers.push(Some(H3Response {
                    status: response.status().as_u16(),
                    headers: response.headers().clone(),
                    body,
                }));
            }
            Ending::ResetAfter(n) => {
                let part = &request.body[..n.min(request.body.len())];
                stream
                    .send_data(Bytes::copy_from_slice(part))
                    .await
                    .map_err(|e| err(&e))?;
                stream.stop_stream(h3::error::Code::H3_REQUEST_CANCELLED);
                stream.stop_sending(h3::error::Code::H3_REQUEST_CANCELLED);
                answers.push(None);
            }
        }
    }
    drop(sender);
    drive.abort();
    // Closed as a client that is done, so that the server does not wait for an idle timeout.
    endpoint.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    Ok(answers)
}

fn client_config() -> Result<quinn::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| e.to_string())?;
    Ok(quinn::ClientConfig::new(Arc::new(quic)))
}

/// Accepts any certificate, but checks the handshake signatures with it (so the server must
/// hold the key of the certificate it presents).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
