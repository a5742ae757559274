//! An HTTP/2 client that keeps reading frames but grants no flow-control window never lets paddock
//! write (no socket write ever blocks), so the send timeout must also watch response bodies that
//! hyper stopped taking. Checked with the h2 crate as a client that never releases capacity.

use std::time::Duration;

use harness::{Paddock, PATIENCE};

use crate::H2C_LISTENERS;

#[test]
fn client_granting_no_window_is_cut_off_by_the_send_timeout() {
    let root = tempfile::tempdir().unwrap();
    let big = std::fs::File::create(root.path().join("big.bin")).unwrap();
    big.set_len(16 << 20).unwrap();
    let config = format!(
        r#"{H2C_LISTENERS}
[timeouts]
send = "1s"

[sites.files]
root = "{}"
"#,
        root.path().display()
    );
    let paddock = Paddock::start_with(&config, true);
    let address = paddock.address("h2c");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let received = runtime.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
        // Keeps reading the socket (and answering pings) for the whole test.
        let driver = tokio::spawn(connection);
        let request = http::Request::get(format!("http://{address}/big.bin"))
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut received = 0usize;
        loop {
            // Data is taken but its capacity never released: the window stays shut.
            match tokio::time::timeout(PATIENCE, body.data()).await {
                Ok(Some(Ok(chunk))) => received += chunk.len(),
                Ok(Some(Err(_))) => break,
                Ok(None) => panic!("the whole body arrived without window updates"),
                Err(_) => panic!("paddock did not cut the stalled client off in {PATIENCE:?}"),
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), driver).await;
        received
    });
    assert!(received <= 2 * 65_535, "received {received} bytes");
    paddock.wait_for_log("client stopped reading");
}
