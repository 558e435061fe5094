//! Two hub nodes sharing one PostgreSQL registry and one NATS server (both real, as on every
//! development and CI machine): a service calling one node reaches a device held by the
//! other, and a device connecting to a second node closes its session on the first.

use std::time::Duration;

use adit_hub::HubConfig;
use adit_testkit::stream_device::{StreamDevice, echo, record, stream_id};
use adit_testkit::{TestDatabase, TestHub, cluster_node, gateway_connect, nats_url};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_websockets::Message;

fn node(db: &TestDatabase, name: &str) -> impl FnOnce(&mut HubConfig) + use<> {
    cluster_node(&db.url, name)
}

/// A device id no other test run uses (they share NATS subjects).
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn a_service_on_one_node_streams_10_mib_to_a_device_on_another() {
    let db = TestDatabase::create().await;
    let a = TestHub::start_with(node(&db, "a")).await;
    let b = TestHub::start_with(node(&db, "b")).await;
    let id = unique("d");
    let key = b.create_device(&id).await;
    let mut device = StreamDevice::connect(&a, &id, &key).await;

    // The service calls node B; the device is held by node A.
    let initiate = b.initiate(&id, "echo", None, Some(10.0));
    let answer = async {
        let req = device.next_request().await;
        device.answer(&req.rid, true).await;
        req
    };
    let (reply, req) = tokio::join!(initiate, answer);
    assert_eq!(reply.accepted.as_deref(), Some("True"), "{}", reply.body);
    let url = reply.url.expect("url");
    let a_port = format!(":{}/", a.addr.port());
    assert!(url.contains(&a_port), "the rendezvous is on node A: {url}");

    // The stream's tokens hold only on node A: the same path and token on node B are refused.
    let token = reply.token.expect("token");
    let on_b = url.replace(&a_port, &format!(":{}/", b.addr.port()));
    assert!(
        gateway_connect(&on_b, &token, &b.ca_path, None)
            .await
            .is_err(),
        "node B does not know node A's stream"
    );
    let d = gateway_connect(&req.url, &req.auth, &a.ca_path, None)
        .await
        .expect("device joins node A");
    let mut s = gateway_connect(&url, &token, &a.ca_path, None)
        .await
        .expect("service joins node A");
    let echoing = tokio::spawn(echo(d));
    const TOTAL: usize = 10 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let sent: Vec<u8> = (0..TOTAL).map(|i| (i * 31 % 251) as u8).collect();
    let (mut tx, mut rx) = s.split();
    let writer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            for chunk in sent.chunks(CHUNK) {
                tx.send(Message::binary(chunk.to_vec()))
                    .await
                    .expect("send");
            }
            tx
        })
    };
    let mut got = Vec::with_capacity(TOTAL);
    while got.len() < TOTAL {
        let msg = tokio::time::timeout(Duration::from_secs(30), rx.next())
            .await
            .expect("echo keeps coming")
            .expect("open")
            .expect("frame");
        got.extend_from_slice(msg.as_payload());
    }
    assert!(got == sent, "10 MiB came back byte-identical");
    let tx = writer.await.expect("writer");
    s = tx.reunite(rx).expect("same stream");
    let _ = s.close().await;
    let _ = echoing.await;

    // The record is the holding node's.
    let r = record(&a, &stream_id(&url)).await;
    assert_eq!(r.bytes_service_to_device, TOTAL as u64);
    assert!(b.streams().records().is_empty(), "node B ran no stream");
    db.drop_database().await;
}

#[tokio::test]
async fn requests_wait_for_a_device_held_nowhere_and_fail_fast_for_unknown_ones() {
    let db = TestDatabase::create().await;
    let a = TestHub::start_with(node(&db, "a")).await;
    let b = TestHub::start_with(node(&db, "b")).await;
    let id = unique("late");
    let key = b.create_device(&id).await;

    // Held nowhere, no connect timeout: DeviceNotOnline at once.
    let reply = b.initiate(&id, "x", None, Some(5.0)).await;
    assert_eq!(
        (reply.status, reply.error_code.as_deref()),
        (404, Some("DeviceNotOnline")),
        "{}",
        reply.body
    );

    // Unknown: DeviceNotFound at once, even with a connect timeout.
    let started = tokio::time::Instant::now();
    let reply = b
        .initiate(&unique("ghost"), "x", Some(10.0), Some(5.0))
        .await;
    assert_eq!(
        (reply.status, reply.error_code.as_deref()),
        (404, Some("DeviceNotFound")),
        "{}",
        reply.body
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // A device that connects to node A a second after the request to node B.
    let initiate = b.initiate(&id, "x", Some(10.0), Some(10.0));
    let device = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut device = StreamDevice::connect(&a, &id, &key).await;
        let req = device.next_request().await;
        device.answer(&req.rid, false).await;
        device
    };
    let (reply, _device) = tokio::join!(initiate, device);
    assert_eq!(reply.accepted.as_deref(), Some("False"), "{}", reply.body);
    db.drop_database().await;
}

#[tokio::test]
async fn a_device_connecting_to_another_node_closes_its_old_session_within_a_second() {
    let db = TestDatabase::create().await;
    let a = TestHub::start_with(node(&db, "a")).await;
    let b = TestHub::start_with(node(&db, "b")).await;
    let id = unique("mover");
    let key = a.create_device(&id).await;
    let mut first = a.mqtt_device(&id, &key).await;
    let _second = b.mqtt_device(&id, &key).await;
    assert!(
        first.closed_within(Duration::from_secs(1)).await,
        "node A closed the old session"
    );
    // And stream requests now reach node B's session.
    let mut device = StreamDevice::connect(&b, &id, &key).await;
    let initiate = a.initiate(&id, "x", None, Some(5.0));
    let answer = async {
        let req = device.next_request().await;
        device.answer(&req.rid, false).await;
    };
    let (reply, ()) = tokio::join!(initiate, answer);
    assert_eq!(reply.accepted.as_deref(), Some("False"), "{}", reply.body);
    db.drop_database().await;
}

#[tokio::test]
async fn nats_without_a_shared_registry_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = HubConfig::new(dir.path().join("data"));
    config.listen_addr = [127, 0, 0, 1].into();
    config.https_port = 0;
    config.mqtt.port = 0;
    config.admin_addr = ([127, 0, 0, 1], 0).into();
    config.nats_url = Some(nats_url());
    let Err(err) = adit_hub::Hub::bind(config).await else {
        panic!("SQLite cannot be shared by nodes");
    };
    assert!(err.to_string().contains("--database-url"), "{err}");
    assert!(
        !dir.path().join("data").exists(),
        "refused before anything was written"
    );
}

/// Replaces device `id`'s keys through node `hub`'s REST API; returns the new primary key.
async fn regenerate_keys(hub: &TestHub, id: &str) -> adit_proto::Key {
    let fresh = || {
        let bytes = [
            *uuid::Uuid::new_v4().as_bytes(),
            *uuid::Uuid::new_v4().as_bytes(),
        ]
        .concat();
        adit_proto::Key::from_bytes(&bytes).expect("32 bytes")
    };
    let (primary, secondary) = (fresh(), fresh());
    let body = serde_json::json!({
        "deviceId": id,
        "authentication": {
            "type": "sas",
            "symmetricKey": {
                "primaryKey": primary.to_base64(),
                "secondaryKey": secondary.to_base64(),
            }
        }
    });
    let response = adit_testkit::https_client(&hub.ca_path)
        .put(format!(
            "{}/devices/{id}?api-version=2021-04-12",
            hub.base_url()
        ))
        .header("Authorization", hub.owner_token())
        .header("If-Match", "*")
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    assert!(response.status().is_success(), "{}", response.status());
    primary
}

#[tokio::test]
async fn registry_changes_on_one_node_close_sessions_on_another_within_a_second() {
    let db = TestDatabase::create().await;
    let a = TestHub::start_with(node(&db, "a")).await;
    let b = TestHub::start_with(node(&db, "b")).await;

    // New device keys, written through node B: the session on node A signed with the old
    // key closes; the new key connects.
    let id = unique("rekeyed");
    let key = a.create_device(&id).await;
    let mut session = a.mqtt_device(&id, &key).await;
    let new_key = regenerate_keys(&b, &id).await;
    assert!(
        session.closed_within(Duration::from_secs(1)).await,
        "node A closed the session signed with the replaced key"
    );
    let mut again = a.mqtt_device(&id, &new_key).await;
    assert!(again.ping().await, "the new key works on node A");

    // Disabled through node B: node A closes the device's session.
    b.set_device_status(&id, "disabled").await;
    assert!(again.closed_within(Duration::from_secs(1)).await);
    db.drop_database().await;
}

#[tokio::test]
async fn a_node_whose_lease_ran_out_has_its_devices_cleared_and_its_streams_recorded_as_lost() {
    let db = TestDatabase::create().await;
    let a = TestHub::start_with(node(&db, "a")).await;
    let (held, orphan) = (unique("held"), unique("orphan"));
    let key = a.create_device(&held).await;
    a.create_device(&orphan).await;
    let _session = a.mqtt_device(&held, &key).await;

    // A node that died (kill -9) with `orphan` connected: it renewed its lease once, then
    // never again.
    let registry = adit_hub::registry::Registry::open(&db.url)
        .await
        .expect("registry");
    let ghost = unique("ghost-node");
    registry
        .record_connected(&orphan, &ghost)
        .await
        .expect("write");
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms");
    let lost = adit_hub::registry::InFlightStream {
        stream_id: uuid::Uuid::new_v4().simple().to_string(),
        device_id: orphan.clone(),
        module_id: None,
        name: "ssh".into(),
        requested_ms: now_ms - 60_000,
        caller: Some("192.0.2.7".into()),
        api_version: Some("2021-04-12".into()),
    };
    registry
        .stream_opened(&ghost, lost.clone())
        .await
        .expect("stream in flight");
    registry.renew_lease(&ghost, now_ms).await.expect("lease");
    assert_eq!(a.connection_state(&orphan).await, "Connected");

    // Node A clears it once the lease has not changed for 6 s on A's own clock (looked at
    // every 2 s); node A's own device stays connected.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while a.connection_state(&orphan).await != "Disconnected" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead node's device was not cleared within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(a.connection_state(&held).await, "Connected");
    // The stream the dead node was relaying has its record, written by node A, once.
    let records: Vec<_> = a
        .streams()
        .records()
        .into_iter()
        .filter(|r| r.stream_id == lost.stream_id)
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r.outcome.as_str(), "node_lost");
    assert_eq!(
        (r.device_id.as_str(), r.name.as_str()),
        (orphan.as_str(), "ssh")
    );
    assert_eq!(r.caller, Some("192.0.2.7".parse().expect("ip")));
    assert!(r.duration >= Duration::from_secs(60), "{:?}", r.duration);
    assert!(
        registry
            .take_node_streams(&ghost)
            .await
            .expect("query")
            .is_empty(),
        "taken once"
    );
    let leases = registry.leases().await.expect("query");
    assert!(
        leases.iter().all(|(n, _)| *n != ghost),
        "the dead node's lease is gone"
    );
    assert!(
        leases.iter().any(|(n, _)| n.starts_with("a-")),
        "node A's own lease is there: {leases:?}"
    );
    registry.close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_change_whose_announcement_was_missed_holds_at_the_next_resync() {
    let db = TestDatabase::create().await;
    let resync = Duration::from_secs(2);
    let with_interval = |name: &'static str, every: Duration| {
        let db = &db;
        move |c: &mut HubConfig| {
            node(db, name)(c);
            c.policy_refresh = every;
        }
    };
    let a = TestHub::start_with(with_interval("a", resync)).await;
    // A node whose next re-check is an hour away: the control.
    let slow = TestHub::start_with(with_interval("slow", Duration::from_secs(3600))).await;
    // A writer that announces nothing: a node sharing the registry without NATS (or a node
    // whose announcement NATS lost).
    let quiet = TestHub::start_with(|c: &mut HubConfig| {
        c.database_url = Some(db.url.clone());
        c.node_id = unique("quiet");
    })
    .await;
    let (x, y) = (unique("resynced"), unique("control"));
    let x_key = a.create_device(&x).await;
    let y_key = a.create_device(&y).await;
    let mut on_a = a.mqtt_device(&x, &x_key).await;
    let mut on_slow = slow.mqtt_device(&y, &y_key).await;
    quiet.set_device_status(&x, "disabled").await;
    quiet.set_device_status(&y, "disabled").await;
    assert!(
        on_a.closed_within(resync + Duration::from_secs(1)).await,
        "node A re-read the devices it holds within one interval"
    );
    assert!(
        !on_slow.closed_within(Duration::from_millis(200)).await && on_slow.ping().await,
        "nothing told the other node, whose re-check is an hour away"
    );

    // Re-keyed the same way: the session signed with the old key closes at the next resync.
    quiet.set_device_status(&x, "enabled").await;
    let mut session = a.mqtt_device(&x, &x_key).await;
    regenerate_keys(&quiet, &x).await;
    assert!(
        session.closed_within(resync + Duration::from_secs(1)).await,
        "node A closed the session signed with the replaced key"
    );
    db.drop_database().await;
}

/// A TCP relay to NATS that can be cut: every connection through it closes and new ones are
/// refused, as when a node loses its network path to NATS.
struct NatsPath {
    url: String,
    cut: tokio_util::sync::CancellationToken,
}

impl NatsPath {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let upstream = nats_url().trim_start_matches("nats://").to_string();
        let cut = tokio_util::sync::CancellationToken::new();
        let stop = cut.clone();
        tokio::spawn(async move {
            loop {
                let (mut down, _) = tokio::select! {
                    c = listener.accept() => c.expect("accept"),
                    () = stop.cancelled() => return,
                };
                let (upstream, stop) = (upstream.clone(), stop.clone());
                tokio::spawn(async move {
                    let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                        () = stop.cancelled() => {}
                    }
                });
            }
        });
        Self {
            url: format!("nats://127.0.0.1:{port}"),
            cut,
        }
    }
}

#[tokio::test]
async fn a_node_cut_off_from_nats_fails_requests_for_other_nodes_devices_at_once_with_a_record() {
    let db = TestDatabase::create().await;
    let path = NatsPath::start().await;
    let nats = path.url.clone();
    let a = TestHub::start_with(|c: &mut HubConfig| {
        node(&db, "a")(c);
        c.nats_url = Some(nats);
    })
    .await;
    let b = TestHub::start_with(node(&db, "b")).await;
    let id = unique("elsewhere");
    let key = b.create_device(&id).await;
    let mut device = StreamDevice::connect(&b, &id, &key).await;

    // Through the relay, node A reaches the device on node B.
    let (reply, req) = tokio::join!(a.initiate(&id, "echo", None, Some(10.0)), async {
        let req = device.next_request().await;
        device.answer(&req.rid, false).await;
        req
    });
    assert_eq!(reply.accepted.as_deref(), Some("False"), "{}", reply.body);
    drop(req);

    path.cut.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = tokio::time::Instant::now();
    let reply = a.initiate(&id, "echo", Some(30.0), Some(10.0)).await;
    let took = asked.elapsed();
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert!(reply.body.contains("NATS is unreachable"), "{}", reply.body);
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    let records: Vec<_> = a
        .streams()
        .records()
        .into_iter()
        .filter(|r| r.device_id == id)
        .collect();
    assert_eq!(
        records.len(),
        1,
        "node A recorded the failed request: {records:?}"
    );
    assert_eq!(records[0].outcome.as_str(), "server_error");
    db.drop_database().await;
}

#[tokio::test]
async fn a_policy_key_renewed_on_one_node_closes_sessions_signed_with_it_on_another_within_a_second()
 {
    let db = TestDatabase::create().await;
    let a = TestHub::start_with(node(&db, "a")).await;
    let b = TestHub::start_with(node(&db, "b")).await;
    let id = unique("via-policy");
    a.create_device(&id).await;
    // Signed with the `device` policy's primary key, as a provisioning service would.
    let policy_key = a.policy_key("device").await;
    let token = adit_proto::SasToken::sign(
        &adit_proto::resource::identity_uri(&a.host_name(), &id, None),
        &policy_key,
        Some("device"),
        adit_hub::auth::unix_now() + 3600,
    );
    let mut session = adit_testkit::RawMqtt::tls(a.mqtt_addr, &a.ca_path).await;
    assert_eq!(
        session.connect(&id, &a.username(&id), &token, 60).await,
        Some(rumqttc::mqttbytes::v4::ConnectReturnCode::Success)
    );

    // Renewed through node B. Node A re-reads policies only every 30 s by itself: closing
    // within a second is the announcement's doing.
    let response = adit_testkit::https_client(&b.ca_path)
        .post(format!(
            "{}/adit/policies/device/renew-key?api-version=2021-04-12",
            b.base_url()
        ))
        .header("Authorization", b.owner_token())
        .json(&serde_json::json!({ "renewKey": "primary" }))
        .send()
        .await
        .expect("request");
    assert!(response.status().is_success(), "{}", response.status());
    assert!(
        session.closed_within(Duration::from_secs(1)).await,
        "node A closed the session signed with the replaced policy key"
    );
    let mut again = adit_testkit::RawMqtt::tls(a.mqtt_addr, &a.ca_path).await;
    assert_eq!(
        again.connect(&id, &a.username(&id), &token, 60).await,
        Some(rumqttc::mqttbytes::v4::ConnectReturnCode::NotAuthorized),
        "node A refuses the old key"
    );
    db.drop_database().await;
}

#[tokio::test]
async fn a_second_node_with_a_running_nodes_id_is_refused() {
    let db = TestDatabase::create().await;
    let id = unique("twin");
    let config = |id: &str| {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = HubConfig::new(dir.path().join("data"));
        c.listen_addr = [127, 0, 0, 1].into();
        c.https_port = 0;
        c.mqtt.port = 0;
        c.admin_addr = ([127, 0, 0, 1], 0).into();
        c.database_url = Some(db.url.clone());
        c.nats_url = Some(nats_url());
        c.node_id = id.to_string();
        (c, dir)
    };
    let first_id = id.clone();
    let shared = &db;
    let _a = TestHub::start_with(move |c: &mut HubConfig| {
        node(shared, "a")(c);
        c.node_id = first_id;
    })
    .await;
    let (twin, _dir) = config(&id);
    let started = tokio::time::Instant::now();
    let Err(err) = adit_hub::Hub::bind(twin).await else {
        panic!("a second process with a running node's id must not start");
    };
    assert!(err.to_string().contains("--node-id"), "{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "it watched the lease for a lease period and a renewal first"
    );
    db.drop_database().await;
}

#[tokio::test]
async fn clusters_sharing_one_nats_server_never_reach_each_others_devices() {
    let (db1, db2) = (TestDatabase::create().await, TestDatabase::create().await);
    let a = TestHub::start_with(node(&db1, "a")).await;
    let x = TestHub::start_with(node(&db2, "x")).await;
    // The same device id in both clusters' registries.
    let id = unique("twin-device");
    let key_a = a.create_device(&id).await;
    let key_x = x.create_device(&id).await;
    let mut on_a = StreamDevice::connect(&a, &id, &key_a).await;

    // A service of cluster X asking for its own device, which is not connected, is told so:
    // the request does not reach cluster A's device.
    let reply = x.initiate(&id, "echo", Some(0.0), Some(5.0)).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), on_a.mqtt.recv())
            .await
            .is_err(),
        "cluster A's device got nothing from cluster X"
    );

    // Cluster X's device connecting does not take cluster A's session over.
    let _on_x = x.mqtt_device(&id, &key_x).await;
    let (reply, req) = tokio::join!(a.initiate(&id, "echo", None, Some(5.0)), async {
        let req = on_a.next_request().await;
        on_a.answer(&req.rid, false).await;
        req
    });
    assert_eq!(reply.accepted.as_deref(), Some("False"), "{}", reply.body);
    drop(req);
    db1.drop_database().await;
    db2.drop_database().await;
}

#[tokio::test]
async fn a_request_to_a_node_that_does_not_take_it_fails_within_the_ack_deadline() {
    let db = TestDatabase::create().await;
    let b = TestHub::start_with(node(&db, "b")).await;
    let id = unique("held-by-a-paused-node");
    b.create_device(&id).await;
    // A node that holds the device's subscription but answers nothing: paused (SIGSTOP) or
    // cut off, while NATS still routes to it.
    let registry = adit_hub::registry::Registry::open(&db.url)
        .await
        .expect("registry");
    let subjects =
        adit_hub::cluster::subject::Subjects::new(&registry.cluster_id().await.expect("id"));
    let paused = async_nats::connect(nats_url()).await.expect("NATS");
    let mut held = paused
        .subscribe(subjects.all(&id))
        .await
        .expect("subscribe");
    paused.flush().await.expect("flush");

    let asked = tokio::time::Instant::now();
    let reply = b.initiate(&id, "echo", Some(30.0), Some(30.0)).await;
    let took = asked.elapsed();
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert!(
        reply.body.contains("did not take the request"),
        "{}",
        reply.body
    );
    assert!(
        took >= adit_hub::cluster::HOLDER_ACK
            && took < adit_hub::cluster::HOLDER_ACK + Duration::from_secs(2),
        "failed after {took:?}, not after the whole wait"
    );
    assert!(
        held.next().await.is_some(),
        "the request did reach the paused node"
    );
    registry.close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn the_console_on_one_node_lists_a_stream_another_node_relays() {
    let db = TestDatabase::create().await;
    let a = TestHub::start_with(node(&db, "a")).await;
    let b = TestHub::start_with(node(&db, "b")).await;
    let id = unique("d");
    let key = b.create_device(&id).await;
    let mut device = StreamDevice::connect(&a, &id, &key).await;
    let initiate = b.initiate(&id, "echo", None, Some(10.0));
    let answer = async {
        let req = device.next_request().await;
        device.answer(&req.rid, true).await;
        req
    };
    let (reply, req) = tokio::join!(initiate, answer);
    assert_eq!(reply.accepted.as_deref(), Some("True"), "{}", reply.body);
    let d = gateway_connect(&req.url, &req.auth, &a.ca_path, None)
        .await
        .expect("device joins node A");
    let mut s = gateway_connect(
        &reply.url.expect("url"),
        &reply.token.expect("token"),
        &a.ca_path,
        None,
    )
    .await
    .expect("service joins node A");
    let _echoing = tokio::spawn(echo(d));
    s.send(Message::binary(&b"0123456789"[..]))
        .await
        .expect("send");
    let echoed = tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("echo in time")
        .expect("open")
        .expect("frame");
    assert_eq!(echoed.as_payload().len(), 10);

    // Signed in on node B, which relays nothing: node A's stream is listed, with its bytes.
    let http = adit_testkit::https_client(&b.ca_path);
    let signed_in = http
        .post(format!("{}/console/api/sign-in", b.base_url()))
        .header("X-Adit-Console", "1")
        .json(&serde_json::json!({ "connectionString": b.owner.to_string() }))
        .send()
        .await
        .expect("answer");
    assert_eq!(signed_in.status(), reqwest::StatusCode::NO_CONTENT);
    let cookie = signed_in
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("a cookie")
        .to_string();
    let live: serde_json::Value = http
        .get(format!("{}/console/api/streams", b.base_url()))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(live["partial"], false, "{live}");
    let listed = live["streams"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|x| x["deviceId"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} missing: {live}"))
        .clone();
    // Node names are the test's plus a suffix unique to the run.
    assert!(
        listed["node"].as_str().is_some_and(|n| n.starts_with("a-")),
        "relayed by node A: {listed}"
    );
    assert_eq!(listed["policy"], "iothubowner", "{listed}");
    assert_eq!(listed["bytesServiceToDevice"], 10, "{listed}");
    assert_eq!(listed["bytesDeviceToService"], 10, "{listed}");
}
