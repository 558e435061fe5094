//! A device on raw MQTT that receives stream requests and answers them, checking every
//! request the way Azure's C and C# SDKs parse it; and the gateway-side helpers the stream
//! tests share.

use std::collections::HashMap;
use std::time::Duration;

use adit_proto::Key;
use futures_util::{SinkExt as _, StreamExt as _};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Packet, Publish, Subscribe, SubscribeFilter};

use tokio_websockets::Message;

use crate::{GatewayWs, RawMqtt, TestHub};

/// A stream request as Azure's C SDK parses it: split the topic on '/', accept 4 or 5 levels,
/// split each property on '=' into exactly two non-empty parts, URL-decode `$url` only.
#[derive(Debug, Clone)]
pub struct StreamRequest {
    /// Stream name.
    pub name: String,
    /// `$rid`.
    pub rid: String,
    /// The device half's gateway URL.
    pub url: String,
    /// The device half's bearer token.
    pub auth: String,
}

fn parse_like_c_sdk(topic: &str) -> StreamRequest {
    let levels: Vec<&str> = topic.split('/').collect();
    assert!(
        levels.len() == 4 || levels.len() == 5,
        "C SDK needs 4 or 5 levels: {topic}"
    );
    assert_eq!(levels.len(), 5, "C# needs exactly 5 levels: {topic}");
    assert!(
        topic
            .to_ascii_lowercase()
            .starts_with("$iothub/streams/post/")
    );
    let mut props = HashMap::new();
    for pair in levels[4].trim_start_matches('?').split('&') {
        let parts: Vec<&str> = pair.split('=').collect();
        assert_eq!(
            parts.len(),
            2,
            "property {pair:?} must split into exactly two parts"
        );
        assert!(
            !parts[0].is_empty() && !parts[1].is_empty(),
            "empty part in {pair:?}"
        );
        props.insert(parts[0].to_string(), parts[1].to_string());
    }
    let url = percent_encoding::percent_decode_str(&props["$url"])
        .decode_utf8()
        .expect("UTF-8 URL")
        .to_string();
    assert!(url.starts_with("wss://"), "device URL must be wss: {url}");
    let after_scheme = &url["wss://".len()..];
    let authority = after_scheme.split('/').next().expect("authority");
    assert!(
        authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok()),
        "explicit port: {url}"
    );
    assert!(!url.contains('?'), "no query in the device URL: {url}");
    let auth = props["$auth"].clone();
    assert!(
        auth.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "URL-safe $auth: {auth}"
    );
    StreamRequest {
        name: levels[3].to_string(),
        rid: props["$rid"].clone(),
        url,
        auth,
    }
}

/// A device on raw MQTT, subscribed to stream requests.
#[derive(Debug)]
pub struct StreamDevice {
    /// The device's MQTT connection.
    pub mqtt: RawMqtt,
}

impl StreamDevice {
    /// Connects `id` with `key` and subscribes to stream requests and answers.
    pub async fn connect(hub: &TestHub, id: &str, key: &Key) -> Self {
        let mut mqtt = hub.mqtt_device(id, key).await;
        let mut sub = Subscribe::new_many([
            SubscribeFilter::new("$iothub/streams/POST/#".into(), QoS::AtMostOnce),
            SubscribeFilter::new("$iothub/streams/res/#".into(), QoS::AtMostOnce),
        ]);
        sub.pkid = 1;
        mqtt.send(Packet::Subscribe(sub)).await;
        assert!(matches!(mqtt.recv().await, Some(Packet::SubAck(_))));
        Self { mqtt }
    }

    /// The next stream request (fails the test on anything else).
    pub async fn next_request(&mut self) -> StreamRequest {
        match self.mqtt.recv().await {
            Some(Packet::Publish(p)) => {
                assert_eq!(p.qos, QoS::AtMostOnce, "requests are delivered at QoS 0");
                assert!(p.payload.is_empty(), "requests carry no payload");
                parse_like_c_sdk(&p.topic)
            }
            other => panic!("expected a stream request, got {other:?}"),
        }
    }

    /// Answers request `rid`: 200 (accept) or 400 (reject).
    pub async fn answer(&mut self, rid: &str, accept: bool) {
        let status = if accept { 200 } else { 400 };
        let topic = format!("$iothub/streams/res/{status}/?$rid={rid}");
        self.mqtt
            .send(Packet::Publish(Publish::new(
                topic,
                QoS::AtMostOnce,
                Vec::new(),
            )))
            .await;
    }
}

/// Answers the next stream request in the background; yields the device and the request.
pub fn answer_next(
    mut device: StreamDevice,
    accept: bool,
) -> tokio::task::JoinHandle<(StreamDevice, StreamRequest)> {
    tokio::spawn(async move {
        let req = device.next_request().await;
        device.answer(&req.rid, accept).await;
        (device, req)
    })
}

/// Echoes every data frame until the peer closes.
pub async fn echo(mut ws: GatewayWs) {
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            break;
        }
        if (msg.is_binary() || msg.is_text()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

/// The record of a stream (by id), or of a device's stream that got no id; waits up to 10 s.
pub async fn record(hub: &TestHub, stream_or_device: &str) -> adit_hub::streams::StreamRecord {
    for _ in 0..200 {
        if let Some(r) = hub.streams().records().into_iter().find(|r| {
            r.stream_id == stream_or_device
                || (r.stream_id.is_empty() && r.device_id == stream_or_device)
        }) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no record for {stream_or_device}: {:?}",
        hub.streams().records()
    );
}

/// The stream id in a gateway URL.
pub fn stream_id(url: &str) -> String {
    url.split('/')
        .nth_back(1)
        .expect("stream id in URL")
        .to_string()
}

/// Initiates a stream to `d1` named `x` and joins both halves; the device half first when
/// `device_first` (as the C sample does: WebSocket, then the answer).
pub async fn accepted_pair(
    hub: &TestHub,
    device: &mut StreamDevice,
    device_first: bool,
) -> (GatewayWs, GatewayWs) {
    let ca = hub.ca_path.clone();
    let initiate = hub.initiate("d1", "x", None, Some(10.0));
    let device_part = async {
        let req = device.next_request().await;
        if device_first {
            // As the C sample: open the WebSocket first, then answer.
            let ws = crate::gateway_connect(&req.url, &req.auth, &ca, None)
                .await
                .expect("device joins");
            device.answer(&req.rid, true).await;
            (Some(ws), req)
        } else {
            device.answer(&req.rid, true).await;
            (None, req)
        }
    };
    let (reply, (device_ws, req)) = tokio::join!(initiate, device_part);
    assert_eq!(reply.accepted.as_deref(), Some("True"));
    let (url, token) = (reply.url.expect("url"), reply.token.expect("token"));
    match device_ws {
        Some(d) => {
            let s = crate::gateway_connect(&url, &token, &ca, Some("amqp"))
                .await
                .expect("service joins");
            (d, s)
        }
        None => {
            let s = crate::gateway_connect(&url, &token, &ca, None)
                .await
                .expect("service joins first");
            tokio::time::sleep(Duration::from_millis(100)).await;
            let d = crate::gateway_connect(&req.url, &req.auth, &ca, None)
                .await
                .expect("device joins second");
            (d, s)
        }
    }
}

/// Sends `payload` on `a` and checks it arrives on `b` within 10 s.
pub async fn exchange(a: &mut GatewayWs, b: &mut GatewayWs, payload: &'static [u8]) {
    a.send(Message::binary(payload)).await.expect("send");
    let got = tokio::time::timeout(Duration::from_secs(10), next_data(b))
        .await
        .expect("relayed")
        .expect("open")
        .expect("frame");
    assert_eq!(&got.as_payload()[..], payload);
}

/// The next message that is not a ping or pong (the hub pings idle legs).
pub async fn next_data(ws: &mut GatewayWs) -> Option<Result<Message, tokio_websockets::Error>> {
    loop {
        match ws.next().await {
            Some(Ok(m)) if m.is_ping() || m.is_pong() => {}
            other => return other,
        }
    }
}

/// Waits for `ws` to be closed; the close code, if a Close came (1005 for one without a body).
pub async fn closed_within(ws: &mut GatewayWs, within: Duration) -> Option<u16> {
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, ws.next()).await {
            Err(_) => panic!("not closed within {within:?}"),
            Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(m))) if m.is_close() => return m.as_close().map(|(c, _)| u16::from(c)),
            Ok(Some(Ok(_))) => {}
        }
    }
}
