use std::future::poll_fn;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

/// One read attempt: `Some(bytes)` (empty = end of file), `None` when it would block.
/// The client socket as the front end stacks it: the activity-noting wrapper under ParkingIo.
type Io = ParkingIo<WatchedIo<DuplexStream>>;

async fn try_read(io: &mut Io) -> Option<Vec<u8>> {
    let mut storage = [0u8; 256];
    poll_fn(|cx| {
        let mut buf = ReadBuf::new(&mut storage);
        match Pin::new(&mut *io).poll_read(cx, &mut buf) {
            Poll::Ready(result) => {
                result.unwrap();
                Poll::Ready(Some(buf.filled().to_vec()))
            }
            Poll::Pending => Poll::Ready(None),
        }
    })
    .await
}

fn pair(activity: &Arc<Activity>, unread: &'static [u8]) -> (Io, DuplexStream) {
    let (server, client) = tokio::io::duplex(64);
    let server = WatchedIo::new(server, activity.clone());
    let requests = activity.requests();
    let io = ParkingIo::new(
        server,
        activity.clone(),
        Bytes::from_static(unread),
        requests,
    );
    (io, client)
}

/// The client sends `head`, the service answers it (a request begins and ends).
async fn one_request(io: &mut Io, client: &mut DuplexStream, head: &[u8]) {
    client.write_all(head).await.unwrap();
    assert_eq!(try_read(io).await.unwrap(), head);
    let (_, in_flight) = io.activity.begin_request();
    drop(in_flight);
}

#[tokio::test]
async fn parks_after_a_complete_request_when_nothing_more_arrives() {
    let activity = Activity::new();
    let (mut io, mut client) = pair(&activity, b"");
    assert_eq!(
        try_read(&mut io).await,
        None,
        "nothing served yet: wait in hyper"
    );
    one_request(&mut io, &mut client, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(
        try_read(&mut io).await.unwrap(),
        b"",
        "parked: end of file for hyper"
    );
    assert!(io.parked());
    // The socket itself was not read: the next request is still there for the next connection.
    client.write_all(b"GET /next").await.unwrap();
    let mut inner = io.into_inner();
    let mut next = [0u8; 9];
    inner.read_exact(&mut next).await.unwrap();
    assert_eq!(&next, b"GET /next");
}

#[tokio::test]
async fn never_parks_with_part_of_a_request_read() {
    let activity = Activity::new();
    let (mut io, mut client) = pair(&activity, b"");
    one_request(&mut io, &mut client, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    // Half of the next head, split inside its terminator.
    client
        .write_all(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r")
        .await
        .unwrap();
    assert!(!try_read(&mut io).await.unwrap().is_empty());
    assert_eq!(try_read(&mut io).await, None);
    assert!(!io.parked());
}

#[tokio::test]
async fn never_parks_while_a_request_is_in_flight() {
    let activity = Activity::new();
    let (mut io, mut client) = pair(&activity, b"");
    let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    client.write_all(head).await.unwrap();
    try_read(&mut io).await.unwrap();
    let (_, in_flight) = activity.begin_request();
    assert_eq!(try_read(&mut io).await, None);
    drop(in_flight);
    assert_eq!(try_read(&mut io).await.unwrap(), b"");
}

#[tokio::test]
async fn never_parks_with_a_response_still_unsent() {
    let activity = Activity::new();
    let (mut io, mut client) = pair(&activity, b"");
    one_request(&mut io, &mut client, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    // The client reads nothing: the 64-byte pipe fills and a write blocks.
    let blocked = poll_fn(|cx| {
        let mut blocked = false;
        for _ in 0..10 {
            if Pin::new(&mut io).poll_write(cx, &[b'x'; 32]).is_pending() {
                blocked = true;
                break;
            }
        }
        Poll::Ready(blocked)
    })
    .await;
    assert!(blocked);
    assert_eq!(try_read(&mut io).await, None);
    let mut sink = [0u8; 64];
    client.read_exact(&mut sink).await.unwrap();
    poll_fn(|cx| Pin::new(&mut io).poll_write(cx, b"y"))
        .await
        .unwrap();
    assert_eq!(try_read(&mut io).await.unwrap(), b"");
}

#[tokio::test]
async fn bytes_read_before_come_first() {
    let activity = Activity::new();
    let (mut io, _client) = pair(&activity, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(try_read(&mut io).await.unwrap(), b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(
        try_read(&mut io).await,
        None,
        "no request answered on it yet"
    );
}
