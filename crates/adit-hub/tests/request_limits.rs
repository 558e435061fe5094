//! The HTTPS listener's bound on request heads, on a real hub over TLS: a head past 16 KiB
//! gets 431 at once, whether it ends or not. Before the bound, hyper buffered up to about
//! 408 KiB of an unfinished head for the 30-s header timeout, so a few thousand
//! unauthenticated connections could pin a gigabyte (found by `bench/abuse`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use adit_testkit::{TestHub, client_tls_config};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Sends `head` and returns the status code of the answer and how long it took.
async fn status_for(hub: &TestHub, head: &[u8]) -> (String, Duration) {
    let tcp = TcpStream::connect(hub.addr).await.expect("TCP connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("valid name");
    let mut tls = TlsConnector::from(Arc::new(client_tls_config(&hub.ca_path)))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let started = Instant::now();
    let _ = tls.write_all(head).await;
    let _ = tls.flush().await;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while !got.windows(2).any(|w| w == b"\r\n") {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the hub answered within 20 s");
    let text = String::from_utf8_lossy(&got).to_string();
    let code = text.split_whitespace().nth(1).unwrap_or("none").to_string();
    (code, started.elapsed())
}

#[tokio::test]
async fn a_request_head_past_16_kib_gets_431_at_once_finished_or_not() {
    let hub = TestHub::start().await;
    let big = "h".repeat(20 * 1024);
    let finished = format!("GET /devices HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n");
    assert_eq!(status_for(&hub, finished.as_bytes()).await.0, "431");
    // No end of headers at all: answered as soon as 16 KiB are in, not at the 30-s timeout.
    let endless = format!("GET /devices HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}");
    let (code, took) = status_for(&hub, endless.as_bytes()).await;
    assert_eq!(code, "431");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    // A head under the bound still reaches the API (401: no credentials).
    let small = format!(
        "GET /devices?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(8 * 1024)
    );
    assert_eq!(status_for(&hub, small.as_bytes()).await.0, "401");
}
