//! Which node holds each device connection, against real SQLite and PostgreSQL registries:
//! a node starting after a crash clears exactly the devices it held, and a node never
//! overwrites a connection another node holds.

use adit_hub::registry::{ConnectionState, NewDevice, Registry};
use adit_proto::DeviceId;
use adit_testkit::{RawMqtt, TestDatabase, TestHub, device_token};
use rumqttc::mqttbytes::v4::ConnectReturnCode;

fn spec(id: &str) -> NewDevice {
    NewDevice::enabled_sas(DeviceId::new(id).expect("valid id"))
}

async fn state(registry: &Registry, id: &str) -> (ConnectionState, Option<String>, Option<i64>) {
    let d = registry.device(id).await.expect("query").expect("exists");
    (
        d.connection_state,
        d.connection_node,
        d.connection_state_updated_ms,
    )
}

/// The same checks for either backend; `url` is what the registry was opened with.
async fn a_node_clears_only_its_own_devices(registry: &Registry, url: &str) {
    for id in ["held-by-a", "held-by-b", "pre-node", "idle"] {
        registry.create_device(&spec(id)).await.expect("create");
    }
    registry
        .record_connected("held-by-a", "node-a")
        .await
        .expect("write");
    registry
        .record_connected("held-by-b", "node-b")
        .await
        .expect("write");
    // A row left Connected by a hub from before node ids: no node recorded.
    let pool = sqlx::AnyPool::connect(url).await.expect("raw pool");
    sqlx::query("UPDATE devices SET connection_state = 'Connected' WHERE device_id = 'pre-node'")
        .execute(&pool)
        .await
        .expect("raw update");
    pool.close().await;

    let (s, node, before) = state(registry, "held-by-a").await;
    assert_eq!(
        (s, node.as_deref()),
        (ConnectionState::Connected, Some("node-a"))
    );

    // node-a restarts after a crash.
    let cleared = registry
        .clear_node_connections("node-a")
        .await
        .expect("clear");
    assert_eq!(cleared, 2, "its own device and the node-less one");
    let (s, node, at) = state(registry, "held-by-a").await;
    assert_eq!((s, node), (ConnectionState::Disconnected, None));
    assert!(
        at >= before,
        "the change is timestamped: {at:?} >= {before:?}"
    );
    assert_eq!(
        state(registry, "pre-node").await.0,
        ConnectionState::Disconnected
    );
    assert_eq!(
        state(registry, "held-by-b").await.0,
        ConnectionState::Connected,
        "node-b's device is not node-a's to clear"
    );
    assert_eq!(
        state(registry, "idle").await.0,
        ConnectionState::Disconnected
    );
    assert_eq!(
        registry
            .clear_node_connections("node-a")
            .await
            .expect("clear"),
        0,
        "idempotent"
    );

    // A late disconnect from a node that no longer holds the device changes nothing.
    assert!(
        !registry
            .record_disconnected("held-by-b", "node-a")
            .await
            .expect("write")
    );
    assert_eq!(
        state(registry, "held-by-b").await.0,
        ConnectionState::Connected
    );
    assert!(
        registry
            .record_disconnected("held-by-b", "node-b")
            .await
            .expect("write")
    );
    let (s, node, _) = state(registry, "held-by-b").await;
    assert_eq!((s, node), (ConnectionState::Disconnected, None));
}

#[tokio::test]
async fn sqlite_node_clears_only_its_own_devices() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("registry.db").display()
    );
    let registry = Registry::open(&url).await.expect("open");
    a_node_clears_only_its_own_devices(&registry, &url).await;
    registry.close().await;
}

#[tokio::test]
async fn postgres_node_clears_only_its_own_devices() {
    let db = TestDatabase::create().await;
    let registry = Registry::open(&db.url).await.expect("open");
    a_node_clears_only_its_own_devices(&registry, &db.url).await;
    registry.close().await;
    db.drop_database().await;
}

/// Two real hubs sharing one PostgreSQL registry: the second node starting (as it would
/// after a crash) does not mark the first node's connected device Disconnected, while the
/// first node restarting does clear it.
#[tokio::test]
async fn postgres_a_starting_node_leaves_other_nodes_devices_connected() {
    let db = TestDatabase::create().await;
    let url = db.url.clone();
    let hub_a = TestHub::start_with(|c| {
        c.database_url = Some(url.clone());
        c.node_id = "node-a".into();
    })
    .await;
    let key = hub_a.create_device("dev").await;
    let mut device = hub_a.mqtt_device("dev", &key).await;
    assert!(device.ping().await);
    assert_eq!(hub_a.connection_state("dev").await, "Connected");

    let mut hub_b = TestHub::start_with(|c| {
        c.database_url = Some(url.clone());
        c.node_id = "node-b".into();
    })
    .await;
    assert_eq!(
        hub_b.connection_state("dev").await,
        "Connected",
        "node-b must not clear node-a's device"
    );
    assert!(device.ping().await, "and the session is untouched");

    // node-a "crashes": its registry row stays behind. A restart of node-a clears it. (The
    // in-process hub stops cleanly, so the row is put back as a crash would leave it.)
    let mut hub_a = hub_a;
    hub_a.stop().await;
    drop(device);
    let registry = Registry::open(&url).await.expect("open");
    registry
        .record_connected("dev", "node-a")
        .await
        .expect("write");
    assert_eq!(hub_b.connection_state("dev").await, "Connected");
    let mut hub_a = hub_a.restart().await;
    assert_eq!(hub_a.connection_state("dev").await, "Disconnected");
    registry.close().await;

    // The device comes back through node-b, which is recorded as holding it.
    let mut again = RawMqtt::tls(hub_b.mqtt_addr, &hub_b.ca_path).await;
    let token = device_token(&hub_b.host_name(), "dev", &key);
    assert_eq!(
        again
            .connect("dev", &hub_b.username("dev"), &token, 60)
            .await,
        Some(ConnectReturnCode::Success)
    );
    let registry = Registry::open(&url).await.expect("open");
    let d = registry
        .device("dev")
        .await
        .expect("query")
        .expect("exists");
    assert_eq!(d.connection_node.as_deref(), Some("node-b"));
    registry.close().await;
    drop(again);
    hub_a.stop().await;
    hub_b.stop().await;
    db.drop_database().await;
}
