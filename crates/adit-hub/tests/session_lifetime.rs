//! A device session lasts as long as the SAS token it connected with, as in Azure IoT Hub:
//! the boundary under paused time on a real session (real registry, real authenticator, the
//! real session loop over an in-memory pipe), then real sessions over MQTT/TLS and
//! MQTT/WebSocket with short-lived tokens, and the Connections record that says why. Also the
//! other end of a session's life: a CONNECT not complete by the deadline it was given.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use adit_hub::auth::{Authenticator, unix_now};
use adit_hub::diagnostics::{Diagnostics, DiagnosticsConfig, Filter};
use adit_hub::gateway::Gateway;
use adit_hub::metrics::Metrics;
use adit_hub::mqtt::{MqttConfig, MqttContext, session};
use adit_hub::presence::Presence;
use adit_hub::registry::{NewDevice, Registry};
use adit_hub::streams::{RecordLog, Streams};
use adit_hub::throttle::AuthThrottle;
use adit_proto::resource::identity_uri;
use adit_proto::{DeviceId, Key, SasToken};
use adit_testkit::{RawMqtt, TestHub};
use adit_transport::MqttConnection;
use rumqttc::mqttbytes::v4::{ConnAck, Connect, ConnectReturnCode, Login, Packet};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const EXPIRED: &str = "the session's SAS token expired";

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The hub's MQTT session context, from real parts, for a registry on `dir`.
async fn context(dir: &std::path::Path) -> (Arc<MqttContext>, Key) {
    let registry = Registry::open_in_dir(dir).await.expect("registry");
    registry.ensure_default_policies().await.expect("policies");
    let device = registry
        .create_device(&NewDevice::enabled_sas(
            DeviceId::new("dev").expect("valid"),
        ))
        .await
        .expect("device");
    let key = device.keys()[0].clone();
    let tracker = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let metrics = Metrics::default();
    let presence = Presence::default();
    let diagnostics = Diagnostics::start(
        DiagnosticsConfig {
            dir: dir.join("logs"),
            max_file_bytes: 1 << 20,
            keep_files: 1,
            stdout: false,
            resource_id: "/adit/hubs/test".into(),
            location: "test".into(),
        },
        &tracker,
        shutdown.clone(),
    )
    .expect("diagnostics");
    let gateway = Gateway::new(
        Default::default(),
        tracker.clone(),
        shutdown.clone(),
        metrics.clone(),
    );
    let streams = Streams::new(
        Default::default(),
        registry.clone(),
        presence.clone(),
        gateway,
        "wss://localhost:1".into(),
        tracker.clone(),
        RecordLog::new(16, metrics.clone(), None),
        "test-node",
    );
    let ctx = MqttContext {
        config: MqttConfig::default(),
        auth: Authenticator::new(registry.clone(), vec!["localhost".into()])
            .await
            .expect("authenticator"),
        registry,
        node_id: Arc::from("test-node"),
        presence,
        streams,
        metrics,
        diagnostics,
        throttle: AuthThrottle::new(Default::default()),
        slots: Arc::new(Semaphore::new(16)),
        tracker,
        cluster: None,
        shutdown,
    };
    (Arc::new(ctx), key)
}

/// Connections records of `device` in the log under `dir`, once `want` of them are there.
async fn connection_records(dir: &std::path::Path, device: &str, want: usize) -> Vec<Value> {
    let filter = Filter {
        category: Some("Connections".into()),
        device: Some(device.into()),
        limit: 100,
        ..Filter::default()
    };
    for _ in 0..100 {
        let records = adit_hub::diagnostics::query(&dir.join("logs"), &filter).unwrap_or_default();
        if records.len() >= want {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {want} Connections records for {device}");
}

#[tokio::test]
async fn paused_time_a_connect_not_complete_by_its_deadline_is_closed_at_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ctx, _key) = context(dir.path()).await;
    let (mut client_io, hub_io) = tokio::io::duplex(4096);
    let peer = "127.0.0.1:50001".parse().expect("addr");
    tokio::time::pause();
    // As over TLS after a handshake that took 8 of the 10 s: 2 s are left, not another 10.
    let connect_by = tokio::time::Instant::now() + Duration::from_secs(2);
    let session = tokio::spawn(session::run_until(
        hub_io,
        peer,
        "mqtts",
        ctx.clone(),
        connect_by,
    ));
    // A CONNECT announcing 200 bytes, of which 4 ever come.
    client_io
        .write_all(&[0x10, 0xc8, 0x01, 0x00, 0x04])
        .await
        .expect("write");
    tokio::time::advance(Duration::from_millis(1950)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!session.is_finished(), "open until the deadline");
    tokio::time::advance(Duration::from_millis(100)).await;
    tokio::time::resume();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), client_io.read(&mut buf))
        .await
        .expect("closed, not left waiting");
    assert_eq!(
        read.unwrap_or(0),
        0,
        "closed at the deadline without a CONNACK"
    );
    session.await.expect("session task");
}

#[tokio::test]
async fn paused_time_session_lives_until_se_and_ends_at_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ctx, key) = context(dir.path()).await;
    let (client_io, hub_io) = tokio::io::duplex(64 * 1024);
    let peer = "127.0.0.1:50000".parse().expect("addr");
    let session = tokio::spawn(session::run(hub_io, peer, "mqtts", ctx.clone()));

    let se = unix_now() + 100;
    let token = SasToken::sign(&identity_uri("localhost", "dev", None), &key, None, se);
    let mut client = MqttConnection::new(client_io, 1 << 20);
    let mut connect = Connect::new("dev");
    // No keep-alive from the client: the hub uses its longest (1177 s), far past `se`, so only
    // the token can end this session.
    connect.keep_alive = 0;
    connect.login = Some(Login::new("localhost/dev/?api-version=2021-04-12", token));
    client
        .write_packet(&Packet::Connect(connect))
        .await
        .expect("CONNECT");
    assert!(matches!(
        client.read_packet().await,
        Ok(Some(Packet::ConnAck(ConnAck {
            code: ConnectReturnCode::Success,
            ..
        })))
    ));
    // Let the connect record reach its file before the clock stops.
    connection_records(dir.path(), "dev", 1).await;

    tokio::time::pause();
    let left = Duration::from_millis(se * 1000 - unix_ms());
    tokio::time::advance(left - Duration::from_millis(50)).await;
    client.write_packet(&Packet::PingReq).await.expect("ping");
    assert!(
        matches!(client.read_packet().await, Ok(Some(Packet::PingResp))),
        "50 ms before se the session still answers"
    );
    assert!(ctx.presence.session("dev").is_some());
    tokio::time::advance(Duration::from_millis(100)).await;
    tokio::time::resume();
    assert!(
        matches!(client.read_packet().await, Ok(None)),
        "at se the hub closes the connection"
    );
    session.await.expect("session task");
    assert!(ctx.presence.session("dev").is_none());
    let records = connection_records(dir.path(), "dev", 2).await;
    assert_eq!(records[1]["operationName"], "deviceDisconnect");
    assert_eq!(records[1]["resultDescription"], EXPIRED);
    let device = ctx
        .registry
        .device("dev")
        .await
        .expect("query")
        .expect("dev");
    assert_eq!(device.connection_state.as_str(), "Disconnected");
    ctx.shutdown.cancel();
}

async fn connect_with_expiry(
    hub: &TestHub,
    mut c: RawMqtt,
    id: &str,
    key: &Key,
    se: u64,
) -> RawMqtt {
    let token = SasToken::sign(&identity_uri(&hub.host_name(), id, None), key, None, se);
    assert_eq!(
        c.connect(id, &hub.username(id), &token, 60).await,
        Some(ConnectReturnCode::Success),
        "{id} connects"
    );
    c
}

/// Waits for the hub to close `c`; returns the wall-clock time it noticed, in Unix ms.
async fn closed_at(mut c: RawMqtt, within: Duration) -> u64 {
    assert!(c.ping().await, "alive at first");
    assert!(c.closed_within(within).await, "closed within {within:?}");
    unix_ms()
}

async fn logs(hub: &TestHub, device: &str) -> Vec<Value> {
    hub.connection_records(device, |rs| rs.len() >= 2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_sessions_over_tls_and_websocket_end_when_their_token_expires() {
    let hub = TestHub::start().await;
    let tls_key = hub.create_device("over-tls").await;
    let ws_key = hub.create_device("over-ws").await;
    let se = unix_now() + 3;
    let tls = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path).await;
    let tls = connect_with_expiry(&hub, tls, "over-tls", &tls_key, se).await;
    let ws = RawMqtt::websocket(hub.addr, &hub.ca_path, Some("mqtt"))
        .await
        .expect("upgrade");
    let ws = connect_with_expiry(&hub, ws, "over-ws", &ws_key, se).await;
    assert_eq!(hub.connection_state("over-tls").await, "Connected");

    let within = Duration::from_secs(8);
    let (tls_closed, ws_closed) = tokio::join!(closed_at(tls, within), closed_at(ws, within));
    for (what, at) in [("TLS", tls_closed), ("WebSocket", ws_closed)] {
        // Not before se (a little slack for the two clocks being read at different moments),
        // and promptly after it.
        assert!(
            at + 20 >= se * 1000,
            "{what} closed {} ms before se",
            se * 1000 - at
        );
        assert!(
            at <= se * 1000 + 2_000,
            "{what} closed {} ms after se",
            at - se * 1000
        );
    }
    for (device, protocol) in [("over-tls", "mqtts"), ("over-ws", "mqtt-ws")] {
        let records = logs(&hub, device).await;
        let last = &records[records.len() - 1];
        assert_eq!(last["operationName"], "deviceDisconnect", "{device}");
        assert_eq!(last["resultDescription"], EXPIRED, "{device}");
        let properties: Value =
            serde_json::from_str(last["properties"].as_str().expect("text")).expect("JSON");
        assert_eq!(properties["protocol"], protocol);
    }
    for _ in 0..50 {
        if hub.connection_state("over-tls").await == "Disconnected" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hub.connection_state("over-tls").await, "Disconnected");
}

#[tokio::test]
async fn a_token_already_past_se_is_refused_at_connect() {
    let hub = TestHub::start().await;
    let key = hub.create_device("late").await;
    // Within the verifier's 5-minute skew, but a session would end at once: refused.
    let token = SasToken::sign(
        &identity_uri(&hub.host_name(), "late", None),
        &key,
        None,
        unix_now() - 10,
    );
    let mut c = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path).await;
    assert_eq!(
        c.connect("late", &hub.username("late"), &token, 60).await,
        Some(ConnectReturnCode::NotAuthorized)
    );
    // A fresh token for the same device is fine.
    let mut ok = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path).await;
    let ok = {
        let token = adit_testkit::device_token(&hub.host_name(), "late", &key);
        ok.connect("late", &hub.username("late"), &token, 60).await
    };
    assert_eq!(ok, Some(ConnectReturnCode::Success));
}
