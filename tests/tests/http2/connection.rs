//! HTTP/2 connection lifetime with the h2 crate as a client: the keep-alive idle timeout and
//! `max_requests_per_connection` end a connection with GOAWAY, and a connection that opens but
//! never sends a request is closed after the request-head deadline.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use harness::{Paddock, PATIENCE};

use crate::H2C_LISTENERS;

fn start(extra: &str) -> (tempfile::TempDir, Paddock, SocketAddr) {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("hello.txt"), "hello\n").unwrap();
    let config = format!(
        r#"{H2C_LISTENERS}
[sites.files]
root = "{}"
{extra}
"#,
        root.path().display()
    );
    let paddock = Paddock::start_with(&config, true);
    let address = paddock.address("h2c");
    (root, paddock, address)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

type Client = h2::client::SendRequest<bytes::Bytes>;

async fn connect(address: SocketAddr) -> (Client, tokio::task::JoinHandle<Result<(), h2::Error>>) {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    (client, tokio::spawn(connection))
}

async fn get(client: &mut Client, address: SocketAddr) -> Result<u16, h2::Error> {
    let request = http::Request::get(format!("http://{address}/hello.txt"))
        .body(())
        .unwrap();
    let mut ready = client.clone().ready().await?;
    let (response, _) = ready.send_request(request, true)?;
    let response = response.await?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    *client = ready;
    Ok(status)
}

#[test]
fn idle_connection_gets_goaway_after_the_keepalive_timeout() {
    let (_root, paddock, address) =
        start("[timeouts]\nkeepalive = \"1s\"\nrequest_header = \"10s\"\n");
    runtime().block_on(async {
        let (mut client, driver) = connect(address).await;
        assert_eq!(get(&mut client, address).await.unwrap(), 200);
        let started = Instant::now();
        // The server ends the connection; the client's driver returns.
        let ended = tokio::time::timeout(PATIENCE, driver).await;
        assert!(ended.is_ok(), "connection still open after {PATIENCE:?}");
        assert!(started.elapsed() >= Duration::from_millis(800));
    });
    // The line is written just before the GOAWAY; the harness collects the log through a pipe,
    // so give it a moment rather than racing it.
    paddock.wait_for_log("keep-alive idle timeout");
}

#[test]
fn connection_ends_after_max_requests_with_goaway() {
    let (_root, _paddock, address) = start("[limits]\nmax_requests_per_connection = 3\n");
    runtime().block_on(async {
        let (mut client, driver) = connect(address).await;
        for _ in 0..3 {
            assert_eq!(get(&mut client, address).await.unwrap(), 200);
        }
        // After the third stream the server says GOAWAY (gracefully: a stream already on its
        // way is still served) and closes the connection without being asked.
        let ended = tokio::time::timeout(PATIENCE, driver).await;
        assert!(ended.is_ok());
    });
}

#[test]
fn connection_without_a_request_is_closed_after_the_head_deadline() {
    let (_root, _paddock, address) =
        start("[timeouts]\nrequest_header = \"1s\"\nkeepalive = \"30s\"\n");
    runtime().block_on(async {
        // Preface and SETTINGS, then nothing.
        let (_client, driver) = connect(address).await;
        let ended = tokio::time::timeout(PATIENCE, driver).await;
        assert!(ended.is_ok(), "connection still open after {PATIENCE:?}");
    });
}

#[test]
fn refused_body_resets_only_its_stream() {
    harness::require_php_cgi();
    let config = format!(
        "{H2C_LISTENERS}\
         [limits]\nmax_body = \"1KiB\"\nbody_memory = \"1KiB\"\n{}",
        harness::php_site(&harness::test_site(), 1, "")
    );
    let paddock = Paddock::start_with(&config, true);
    let address = paddock.address("h2c");
    runtime().block_on(async {
        let (client, _driver) = connect(address).await;
        let request = http::Request::post(format!("http://{address}/echo.php"))
            .header("content-length", "100000")
            .body(())
            .unwrap();
        let mut ready = client.clone().ready().await.unwrap();
        let (response, _body_stream) = ready.send_request(request, false).unwrap();
        assert_eq!(response.await.unwrap().status(), 413);
        // The connection carries on (HTTP/2 frames each request on its own stream).
        let request = http::Request::get(format!("http://{address}/sleep.php?ms=0"))
            .body(())
            .unwrap();
        let mut ready = ready.ready().await.unwrap();
        let (response, _) = ready.send_request(request, true).unwrap();
        assert_eq!(response.await.unwrap().status(), 200);
    });
}

/// Opens and at once resets 1000 streams; how the connection ended, if it did within `wait`.
fn reset_flood(http2_settings: &str, wait: Duration) -> Option<Option<h2::Reason>> {
    // Room for every stream otherwise, so that only the setting under test can end it.
    let (_root, _paddock, address) = start(&format!(
        "[limits]\nmax_requests_per_connection = 5000\n\
         [http2]\nmax_local_error_reset_streams = 5000\nmax_concurrent_streams = 2000\n\
         {http2_settings}\n"
    ));
    // Bound to a local so that the client runtime (and its connection) is gone before paddock
    // is stopped at the end of this function.
    let ended = runtime().block_on(async {
        let (client, driver) = connect(address).await;
        let mut ready = client.ready().await.unwrap();
        for _ in 0..1000 {
            let request = http::Request::get(format!("http://{address}/hello.txt"))
                .body(())
                .unwrap();
            let Ok((_, mut stream)) = ready.send_request(request, false) else {
                break;
            };
            stream.send_reset(h2::Reason::CANCEL);
            match ready.ready().await {
                Ok(next) => ready = next,
                Err(_) => break,
            }
        }
        let ended = tokio::time::timeout(wait, driver).await.ok()?;
        Some(ended.unwrap().err().and_then(|e| e.reason()))
    });
    ended
}

#[test]
fn rapid_reset_flood_gets_goaway_at_the_configured_limit() {
    // CVE-2023-44487: streams opened and reset before the server accepted them.
    assert_eq!(
        reset_flood("max_pending_accept_reset_streams = 5", PATIENCE),
        Some(Some(h2::Reason::ENHANCE_YOUR_CALM)),
        "a low limit ends the connection"
    );
    // The setting is really applied: with room for all of them the connection survives (for
    // 2 s: a window for something that must not happen, which load cannot make happen).
    assert_eq!(
        reset_flood(
            "max_pending_accept_reset_streams = 5000",
            Duration::from_secs(2)
        ),
        None,
        "a high limit tolerates the same flood"
    );
}
