use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

mod acks;
mod gateway;
mod resume;
mod resume_answers;
mod survivor;
mod websocket;
mod window;
mod wire;

/// A service side and a device side joined by an in-memory link of `capacity` bytes.
fn pair(capacity: usize) -> (MuxSession, MuxSession) {
    let (a, b) = tokio::io::duplex(capacity);
    let settings = Settings::default();
    (
        MuxSession::start(a, Role::Service, settings),
        MuxSession::start(b, Role::Device, settings),
    )
}

#[tokio::test]
async fn connections_carry_bytes_both_ways_and_end_with_fin() {
    let (service, mut device) = pair(64 * 1024);
    let mut s = service
        .open(Bytes::from_static(b"ssh"))
        .await
        .expect("open");
    let echo = tokio::spawn(async move {
        let (mut d, target) = device.accept().await.expect("accepted");
        assert_eq!(&target[..], b"ssh");
        let mut got = Vec::new();
        d.read_to_end(&mut got).await.expect("read to FIN");
        d.write_all(&got).await.expect("echo");
        d.shutdown().await.expect("FIN");
        got.len()
    });
    let sent: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    s.write_all(&sent).await.expect("write");
    s.shutdown().await.expect("FIN");
    let mut back = Vec::new();
    s.read_to_end(&mut back).await.expect("read the echo");
    assert_eq!(echo.await.expect("echo task"), sent.len());
    assert!(back == sent, "3 MB echoed byte-identical");
}

#[tokio::test]
async fn a_reader_that_stops_reading_stalls_only_its_own_connection() {
    let (service, mut device) = pair(64 * 1024);
    let mut stalled = service.open(Bytes::new()).await.expect("open");
    let mut lively = service.open(Bytes::new()).await.expect("open");
    let (_never_read, _) = device.accept().await.expect("first");
    let (mut reader, _) = device.accept().await.expect("second");
    // Far more than the window and the write budget: the stalled writer blocks...
    let blocked = tokio::spawn(async move {
        let big = vec![7u8; 4 << 20];
        stalled.write_all(&big).await
    });
    // ...while the other connection goes on.
    let sent = vec![9u8; 2 << 20];
    let writer = tokio::spawn(async move {
        lively.write_all(&sent).await.expect("write");
        lively.shutdown().await.expect("FIN");
        lively
    });
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut got))
        .await
        .expect("the lively connection is not held up")
        .expect("read");
    assert_eq!(got.len(), 2 << 20);
    writer.await.expect("writer");
    assert!(
        !blocked.is_finished(),
        "the stalled writer waits for its reader"
    );
    blocked.abort();
}

#[tokio::test]
async fn a_dropped_stream_resets_the_peer_and_the_session_goes_on() {
    let (service, mut device) = pair(64 * 1024);
    let s = service.open(Bytes::new()).await.expect("open");
    let (mut d, _) = device.accept().await.expect("accepted");
    drop(s);
    let mut buf = [0u8; 8];
    let err = d.read(&mut buf).await.expect_err("reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    let mut again = service.open(Bytes::new()).await.expect("open again");
    let (mut d2, _) = device.accept().await.expect("accepted again");
    again.write_all(b"still here").await.expect("write");
    let mut got = [0u8; 10];
    d2.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"still here");
}

#[tokio::test]
async fn a_reset_reaches_the_peers_reader_with_its_code_and_reason() {
    let (service, mut device) = pair(64 * 1024);
    let mut s = service.open(Bytes::from_static(b"db")).await.expect("open");
    let (d, _) = device.accept().await.expect("accepted");
    d.reset(ResetCode::Refused, "nothing listens on 127.0.0.1:5432");
    let mut buf = [0u8; 8];
    let err = s.read(&mut buf).await.expect_err("reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        err.to_string(),
        "the peer reset the connection, refused (1): nothing listens on 127.0.0.1:5432"
    );
    let mut s = service.open(Bytes::new()).await.expect("open");
    let (d, _) = device.accept().await.expect("accepted");
    d.reset(ResetCode::Failed, "the target reset it");
    let err = s.read(&mut buf).await.expect_err("reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(
        err.to_string().contains("failed (2): the target reset it"),
        "{err}"
    );
}

#[tokio::test]
async fn garbage_on_the_link_ends_the_session_with_a_protocol_error() {
    let (mut raw, b) = tokio::io::duplex(1024);
    let mut device = MuxSession::start(b, Role::Device, Settings::default());
    raw.write_all(b"SSH-2.0-OpenSSH_9.6\r\n")
        .await
        .expect("write");
    let result = tokio::time::timeout(Duration::from_secs(5), device.ended())
        .await
        .expect("ends");
    assert!(
        matches!(result, Err(SessionError::Protocol(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn closing_the_session_resets_its_streams() {
    let (service, mut device) = pair(64 * 1024);
    let mut s = service.open(Bytes::new()).await.expect("open");
    let (_d, _) = device.accept().await.expect("accepted");
    service.close();
    let mut buf = [0u8; 4];
    let err = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("ends at once")
        .expect_err("reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(
        tokio::time::timeout(Duration::from_secs(5), device.ended())
            .await
            .expect("the peer's session ends too")
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn a_session_whose_link_nobody_reads_ends_at_the_finish_timeout() {
    // A pipe too small for the HELLO, its far end never read: the link's writer blocks for
    // good, as on a link whose peer's network is gone with the kernel's send buffer full.
    let (_unread, link) = tokio::io::duplex(16);
    let mut session = MuxSession::start(link, Role::Service, Settings::default());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let closed = tokio::time::Instant::now();
    session.close();
    let limit = link::FINISH_TIMEOUT;
    let ended = session.ended();
    tokio::pin!(ended);
    assert!(
        tokio::time::timeout(limit - Duration::from_millis(1), &mut ended)
            .await
            .is_err(),
        "what is queued may still go, up to the limit"
    );
    let result = tokio::time::timeout(Duration::from_secs(60), &mut ended)
        .await
        .expect("given up");
    assert_eq!(closed.elapsed(), limit, "given up at the limit");
    assert!(result.is_ok(), "this side ended it: {result:?}");
}
