//! MQTT packets a device sends Azure IoT Hub, encoded with rumqttc's v4 codec as Adit's device
//! SDK does, with the field values of Azure's SDKs (reference/azure-wire.md).

use adit_proto::resource::identity_uri;
use adit_proto::topic::{
    ClientId, STREAMS_POST_FILTER, STREAMS_RES_FILTER, StreamRequest, StreamResponse,
    format_username,
};
use adit_proto::{Key, SasToken};
use bytes::BytesMut;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    Connect, Login, Packet, PubAck, Publish, Subscribe, SubscribeFilter, Unsubscribe,
};

/// The hub host name in every seed.
pub const HOST: &str = "hub.example:8443";
/// The device key of every seed (32 fixed bytes; not a secret of any deployment).
pub fn device_key() -> Key {
    Key::from_bytes(&[7u8; 32]).expect("32 bytes make a key")
}
/// An expiry in 2100: tokens in seeds stay valid.
pub const FAR_EXPIRY: u64 = 4_102_444_800;

fn encode(p: &Packet) -> Vec<u8> {
    let mut b = BytesMut::new();
    match p.write(&mut b, 1 << 20) {
        Ok(_) => b.to_vec(),
        Err(_) => Vec::new(),
    }
}

fn connect(
    client_id: &str,
    username: String,
    password: String,
    clean: bool,
    keep_alive: u16,
) -> Packet {
    let mut c = Connect::new(client_id);
    c.keep_alive = keep_alive;
    c.clean_session = clean;
    c.login = Some(Login::new(username, password));
    Packet::Connect(c)
}

/// Single packets, one per seed: CONNECTs as Adit's, C's and Python's SDKs form them,
/// SUBSCRIBE/UNSUBSCRIBE of the stream filters, stream responses and requests, pings.
pub fn packets() -> Vec<Packet> {
    let key = device_key();
    let mut out = Vec::new();
    for (client, module) in [("fuzz-device", None), ("dev1/sink", Some("sink"))] {
        let Ok(id) = ClientId::parse(client) else {
            continue;
        };
        let device = id.device.as_str().to_string();
        let uri = identity_uri(HOST, &device, module);
        let token = SasToken::sign(&uri, &key, None, FAR_EXPIRY);
        // Adit's device SDK.
        out.push(connect(
            client,
            format_username(HOST, &id, "api-version=2020-09-30&DeviceClientType=adit"),
            token.clone(),
            true,
            60,
        ));
        // Azure's C SDK (sdk-c#820): lowercase hex in DeviceClientType, CleanSession 0, 240 s.
        out.push(connect(client, format!("{HOST}/{client}/?api-version=2017-11-08-preview&DeviceClientType=iothubclient%2f1.2.12%20(Darwin%3b%20x86_64)"), token.clone(), false, 240));
        // The plain form the docs allow.
        out.push(connect(client, format!("{HOST}/{client}"), token, true, 0));
    }
    out.push(Packet::Subscribe(Subscribe::new_many([
        SubscribeFilter::new(STREAMS_POST_FILTER.to_string(), QoS::AtMostOnce),
        SubscribeFilter::new(STREAMS_RES_FILTER.to_string(), QoS::AtMostOnce),
    ])));
    out.push(Packet::Subscribe(Subscribe::new(
        "devices/fuzz-device/messages/devicebound/#",
        QoS::AtLeastOnce,
    )));
    out.push(Packet::Unsubscribe(Unsubscribe::new(STREAMS_POST_FILTER)));
    for accepted in [true, false] {
        let topic = StreamResponse {
            accepted,
            rid: "1".into(),
            // Adit's own property: the seeds carry it, so its parsing is fuzzed too.
            protocol: Some("adit.stream.v1".into()),
        }
        .to_topic();
        out.push(Packet::Publish(Publish::new(
            topic.clone(),
            QoS::AtMostOnce,
            Vec::new(),
        )));
        let mut qos1 = Publish::new(topic, QoS::AtLeastOnce, Vec::new());
        qos1.pkid = 7;
        out.push(Packet::Publish(qos1));
    }
    for topic in request_topics() {
        out.push(Packet::Publish(Publish::new(
            topic,
            QoS::AtMostOnce,
            Vec::new(),
        )));
    }
    out.push(Packet::PubAck(PubAck::new(7)));
    out.push(Packet::PingReq);
    out.push(Packet::Disconnect);
    out
}

/// Stream request topics: Adit's encoder and the C SDK's unit-test fixture.
pub fn request_topics() -> Vec<String> {
    let mut topics = vec![
        "$iothub/streams/POST/TestStream/?$rid=1&$url=wss%3A%2F%2Fservername.streaming.private.azure-devices-int.net%3A443%2Fbridges%2F3acd50143144f6b82e0f7299afe911bd&$auth=ucHqFGN0o9Vh-ojlhELmXyTUol05iuAhigMckeI-vlb&$ip=111.222.333.444".to_string(),
        "$iothub/streams/POST/ssh/?$rid=2&$url=wss%3A%2F%2Fhub.example%3A8443%2Fbridges%2Fabc%2Fdevice&$auth=eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJleHAiOjE1NDgxMzM0MzJ9.sig".to_string(),
    ];
    let request = StreamRequest {
        name: "ssh".into(),
        rid: "42".into(),
        url: "wss://hub.example:8443/bridges/0123456789abcdef/device".into(),
        auth: "AAAAbbbbCCCCdddd-_".into(),
        ip: Some("127.0.0.1".into()),
        protocol: Some("adit.stream.v1".into()),
    };
    if let Ok(t) = request.to_topic() {
        topics.push(t);
    }
    topics
}

/// Each packet alone, and whole sessions (CONNECT, SUBSCRIBE, answers, ping, DISCONNECT).
pub fn wire_seeds() -> Vec<Vec<u8>> {
    let packets = packets();
    let mut seeds: Vec<Vec<u8>> = packets.iter().map(encode).collect();
    let connects: Vec<&Packet> = packets
        .iter()
        .filter(|p| matches!(p, Packet::Connect(_)))
        .collect();
    let rest: Vec<u8> = packets
        .iter()
        .filter(|p| !matches!(p, Packet::Connect(_)))
        .flat_map(encode)
        .collect();
    for c in connects {
        let mut session = encode(c);
        session.extend_from_slice(&rest);
        seeds.push(session);
    }
    seeds
}
