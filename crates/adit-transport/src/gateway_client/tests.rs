use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_websockets::ServerBuilder;

use super::*;

fn uri() -> http::Uri {
    "wss://hub.example:8443/bridges/abc".parse().expect("uri")
}

/// A WebSocket server on the other end of `server`, answering the upgrade with `headers`;
/// returns the request it read.
fn serve(
    server: tokio::io::DuplexStream,
    headers: &[(&'static str, &'static str)],
) -> tokio::task::JoinHandle<http::Request<()>> {
    let mut builder = ServerBuilder::new();
    for (name, value) in headers {
        builder = builder
            .add_header(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            )
            .expect("header");
    }
    tokio::spawn(async move {
        let (request, _ws) = builder.accept(server).await.expect("upgrade");
        request
    })
}

#[tokio::test]
async fn a_multiplexed_join_offers_the_subprotocol_and_reads_the_grant() {
    let (client, server) = tokio::io::duplex(4096);
    let server = serve(
        server,
        &[
            ("sec-websocket-protocol", "adit.stream.v1"),
            ("adit-resume-token", "next-token"),
            ("adit-resume-grace", "90"),
        ],
    );
    let (_ws, response) = upgrade(client, uri(), "first-token", Offer::Multiplexed)
        .await
        .expect("upgraded");
    let request = server.await.expect("server");
    let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header("sec-websocket-protocol"), Some("adit.stream.v1"));
    assert_eq!(header("authorization"), Some("Bearer first-token"));
    assert!(chose_subprotocol(&response).expect("valid"));
    let grant = ResumeGrant::from_response(&response).expect("a grant");
    assert_eq!(grant.token(), "next-token");
    assert_eq!(grant.grace(), Duration::from_secs(90));
}

#[tokio::test]
async fn a_raw_join_offers_no_subprotocol() {
    let (client, server) = tokio::io::duplex(4096);
    let server = serve(server, &[]);
    let (_ws, response) = upgrade(client, uri(), "t", Offer::Raw)
        .await
        .expect("upgraded");
    let request = server.await.expect("server");
    assert!(request.headers().get("sec-websocket-protocol").is_none());
    assert!(!chose_subprotocol(&response).expect("valid"));
    assert!(ResumeGrant::from_response(&response).is_none());
}

#[test]
fn a_subprotocol_not_offered_is_an_error() {
    let response = http::Response::builder()
        .header("sec-websocket-protocol", "mqtt")
        .body(())
        .expect("response");
    assert!(matches!(
        chose_subprotocol(&response),
        Err(GatewayError::Subprotocol(p)) if p == "mqtt"
    ));
}

#[tokio::test]
async fn a_refused_upgrade_names_the_status_and_never_the_token() {
    let (client, mut server) = tokio::io::duplex(4096);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let _ = server.read(&mut buf).await;
        let _ = server
            .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
            .await;
    });
    let err = upgrade(client, uri(), "secret-token-123", Offer::Multiplexed)
        .await
        .expect_err("refused");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("secret-token-123"), "{shown}");
    assert!(matches!(
        &err,
        GatewayError::Upgrade(tokio_websockets::Error::Upgrade(
            tokio_websockets::upgrade::Error::DidNotSwitchProtocols(401)
        ))
    ));
}

#[tokio::test]
async fn a_token_that_is_no_header_value_is_refused_without_showing_it() {
    let (client, _server) = tokio::io::duplex(64);
    let err = upgrade(client, uri(), "bad\ntoken", Offer::Raw)
        .await
        .expect_err("refused");
    assert!(matches!(err, GatewayError::BadToken));
    assert!(!format!("{err} {err:?}").contains("token\n"));
}
