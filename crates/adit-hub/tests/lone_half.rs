//! The first half of a stream to reach the gateway, while it waits for its peer, against a real
//! hub over real sockets: it is answered (pings), heard (a half that leaves ends the stream at
//! once, not at the 60 s handshake deadline) and what it sends early reaches the peer first.

use std::time::Duration;

use adit_hub::gateway::{ClosedBy, EndReason};
use adit_hub::streams::Outcome;
use adit_testkit::stream_device::{
    StreamDevice, StreamRequest, closed_within, exchange, next_data, record, stream_id,
};
use adit_testkit::{GatewayWs, TestHub, gateway_connect, gateway_status};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_websockets::{CloseCode, Message};

/// An accepted stream to `d1` nobody has joined yet: the device's request and the service's
/// URL and token.
async fn accepted(hub: &TestHub, device: &mut StreamDevice) -> (StreamRequest, String, String) {
    let initiate = hub.initiate("d1", "x", None, Some(10.0));
    let answer = async {
        let req = device.next_request().await;
        device.answer(&req.rid, true).await;
        req
    };
    let (reply, req) = tokio::join!(initiate, answer);
    assert_eq!(reply.accepted.as_deref(), Some("True"), "{}", reply.body);
    (req, reply.url.expect("url"), reply.token.expect("token"))
}

async fn join(url: &str, token: &str, hub: &TestHub) -> GatewayWs {
    gateway_connect(url, token, &hub.ca_path, None)
        .await
        .expect("joins")
}

#[tokio::test]
async fn a_half_that_leaves_before_its_peer_ends_the_stream_at_once() {
    // Default handshake deadline (60 s): every wait below is far inside it.
    let hub = TestHub::start().await;
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;

    // The service comes first and closes with a code of its own.
    let (req, url, token) = accepted(&hub, &mut device).await;
    let mut s = join(&url, &token, &hub).await;
    s.send(Message::close(
        Some(CloseCode::try_from(4000).expect("code")),
        "gave up",
    ))
    .await
    .expect("close");
    let r = record(&hub, &stream_id(&url)).await;
    assert_eq!(r.outcome, Outcome::Closed);
    assert_eq!(r.closed_by, Some(ClosedBy::Service));
    assert_eq!(r.end_reason, Some(EndReason::CloseFrame));
    assert_eq!(r.close_code, Some(4000));
    assert_eq!(r.handshake, None, "it never paired");
    assert!(r.duration < Duration::from_secs(10), "{:?}", r.duration);
    assert_eq!(hub.streams().active(), 0, "its place is released");
    // The device that comes late finds nothing to join.
    let (status, _) = gateway_status(&req.url, Some(&req.auth), &hub.ca_path).await;
    assert_eq!(status, 401);

    // The device comes first and its connection just drops (its process was killed).
    let (req, url, _) = accepted(&hub, &mut device).await;
    let d = join(&req.url, &req.auth, &hub).await;
    drop(d);
    let r = record(&hub, &stream_id(&url)).await;
    assert_eq!(r.outcome, Outcome::Closed);
    assert_eq!(r.closed_by, Some(ClosedBy::Device));
    assert_eq!(r.end_reason, Some(EndReason::Disconnected));
    assert_eq!(r.close_code, None);
    assert_eq!(hub.streams().active(), 0);

    // Nothing else was disturbed: the next stream relays.
    let (req, url, token) = accepted(&hub, &mut device).await;
    let mut d = join(&req.url, &req.auth, &hub).await;
    let mut s = join(&url, &token, &hub).await;
    exchange(&mut s, &mut d, b"still relaying").await;
}

#[tokio::test]
async fn a_waiting_half_answers_pings_and_what_it_sent_early_reaches_its_peer_first() {
    let hub = TestHub::start().await;
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;
    let (req, url, token) = accepted(&hub, &mut device).await;

    // The device half waits alone, as a device-proxy whose target speaks first (SSH's
    // banner) does; clients judge the gateway by its pongs.
    let mut d = join(&req.url, &req.auth, &hub).await;
    d.send(Message::binary(&b"SSH-2.0-banner\r\n"[..]))
        .await
        .expect("banner");
    d.send(Message::ping("alive?")).await.expect("ping");
    let pong = tokio::time::timeout(Duration::from_secs(5), d.next())
        .await
        .expect("answered while waiting")
        .expect("open")
        .expect("frame");
    assert!(pong.is_pong(), "{pong:?}");
    assert_eq!(&pong.as_payload()[..], b"alive?");
    d.send(Message::binary(&b"second"[..])).await.expect("data");

    let mut s = join(&url, &token, &hub).await;
    for expected in [&b"SSH-2.0-banner\r\n"[..], b"second"] {
        let got = tokio::time::timeout(Duration::from_secs(5), next_data(&mut s))
            .await
            .expect("relayed")
            .expect("open")
            .expect("frame");
        assert_eq!(
            &got.as_payload()[..],
            expected,
            "in order, held bytes first"
        );
    }
    exchange(&mut s, &mut d, b"reply").await;
    exchange(&mut d, &mut s, b"more").await;
    s.send(Message::close(Some(CloseCode::NORMAL_CLOSURE), "done"))
        .await
        .expect("close");
    assert_eq!(
        closed_within(&mut d, Duration::from_secs(5)).await,
        Some(1000)
    );
    let r = record(&hub, &stream_id(&url)).await;
    assert_eq!(r.outcome, Outcome::Closed);
    assert_eq!(
        r.bytes_device_to_service,
        16 + 6 + 4,
        "held bytes are counted"
    );
    assert_eq!(r.bytes_service_to_device, 5);
}

#[tokio::test]
async fn a_waiting_half_that_floods_is_held_back_not_buffered() {
    let hub = TestHub::start().await;
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;
    let (req, url, token) = accepted(&hub, &mut device).await;
    let mut d = join(&req.url, &req.auth, &hub).await;
    // 32 MiB before the peer comes: far past what the hub holds (64 KiB) and what loopback's
    // socket buffers take, so TCP must push back; the sender is not failed for it, and every
    // byte arrives once the peer reads.
    let chunk = vec![7u8; 16 * 1024];
    let total = 2048 * chunk.len();
    let sender = tokio::spawn(async move {
        for _ in 0..2048 {
            d.send(Message::binary(chunk.clone())).await.expect("send");
        }
        d
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !sender.is_finished(),
        "32 MiB cannot all be taken before a peer reads"
    );
    let mut s = join(&url, &token, &hub).await;
    let mut got = 0;
    while got < total {
        let m = tokio::time::timeout(Duration::from_secs(10), next_data(&mut s))
            .await
            .expect("relayed")
            .expect("open")
            .expect("frame");
        assert!(m.as_payload().iter().all(|b| *b == 7));
        got += m.as_payload().len();
    }
    assert_eq!(got, total);
    let _d = sender.await.expect("sender");
}

#[tokio::test]
async fn a_waiting_half_that_sends_too_big_a_message_is_closed_with_1009_at_once() {
    let hub = TestHub::start().await;
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;
    let (_, url, token) = accepted(&hub, &mut device).await;
    let mut s = join(&url, &token, &hub).await;
    // The gateway relays messages up to 1 MiB (GatewayConfig::max_frame).
    let _ = s.send(Message::binary(vec![0u8; 2 * 1024 * 1024])).await;
    assert_eq!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        Some(1009)
    );
    let r = record(&hub, &stream_id(&url)).await;
    assert_eq!(r.closed_by, Some(ClosedBy::Service));
    assert_eq!(r.end_reason, Some(EndReason::InvalidMessage));
    assert_eq!(hub.streams().active(), 0);
}
