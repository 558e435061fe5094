//! Devices' connection state under a connection storm, on a real SQLite file: thousands of
//! concurrent connects and disconnects are committed in groups (each commit waits for the
//! disk, so one commit per device made a restarted hub's fleet queue for tens of seconds and
//! starved the API's reads), in order, each caller answered after its own write committed.

use adit_hub::registry::{ConnectionState, NewDevice, Registry};
use adit_proto::DeviceId;

const DEVICES: usize = 1000;

fn id(i: usize) -> String {
    format!("storm-{i}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connection_writes_share_commits_and_keep_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = Registry::open_in_dir(dir.path()).await.expect("open");
    for i in 0..DEVICES {
        let spec = NewDevice::enabled_sas(DeviceId::new(id(i)).expect("id"));
        registry.create_device(&spec).await.expect("create");
    }

    let before = registry.connection_commits();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..DEVICES {
        let registry = registry.clone();
        tasks.spawn(async move {
            registry
                .record_connected(&id(i), "node-a")
                .await
                .expect("connected");
            // Every odd device disconnects at once: its two writes, in order.
            if i % 2 == 1 {
                assert!(
                    registry
                        .record_disconnected(&id(i), "node-a")
                        .await
                        .expect("disconnected"),
                    "the row node-a holds changes"
                );
            }
            // Another node's disconnect never clears this node's connection.
            assert!(
                !registry
                    .record_disconnected(&id(i), "node-b")
                    .await
                    .expect("other node"),
                "node-b holds nothing"
            );
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task");
    }
    let commits = registry.connection_commits() - before;
    // 2,500 writes; one commit each before grouping.
    assert!(
        commits <= 250,
        "{commits} commits for {} concurrent writes",
        DEVICES * 5 / 2
    );

    for i in 0..DEVICES {
        let d = registry
            .device(&id(i))
            .await
            .expect("read")
            .expect("exists");
        let want = if i % 2 == 1 {
            ConnectionState::Disconnected
        } else {
            ConnectionState::Connected
        };
        assert_eq!(d.connection_state, want, "device {i}");
        assert_eq!(
            d.connection_node.is_some(),
            want == ConnectionState::Connected,
            "device {i}"
        );
    }
    registry.close().await;
}
