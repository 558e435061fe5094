//! Presence and credential lifetime with the real binaries: a hub killed with SIGKILL and
//! restarted reports its devices Disconnected.

use adit_testkit::{HubProcess, RawMqtt, device_token};
use serde_json::Value;

const ADIT: &str = env!("CARGO_BIN_EXE_adit");

fn connection_state(hub: &HubProcess, id: &str) -> String {
    let out = hub.cli(&["device", "show", id], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let device: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    device["connectionState"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn device_key(hub: &HubProcess, id: &str) -> adit_proto::Key {
    let cs: adit_proto::ConnectionString =
        String::from_utf8_lossy(&hub.cli(&["device", "connection-string", id], &[]).stdout)
            .trim()
            .parse()
            .expect("valid connection string");
    cs.key.expect("key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_and_restart_the_device_is_disconnected() {
    let hub = HubProcess::start(ADIT);
    assert!(hub.cli(&["device", "create", "dev1"], &[]).status.success());
    assert!(
        hub.cli(&["device", "create", "never"], &[])
            .status
            .success()
    );
    let key = device_key(&hub, "dev1");
    let host_name = format!("localhost:{}", hub.addr.port());
    let mut device = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path()).await;
    device
        .connect(
            "dev1",
            &format!("{host_name}/dev1/?api-version=2021-04-12"),
            &device_token(&host_name, "dev1", &key),
            60,
        )
        .await;
    assert!(device.ping().await);
    assert_eq!(connection_state(&hub, "dev1"), "Connected");

    let before = device_json(&hub, "dev1");
    // The hub crashes; the device is gone for good.
    let hub = hub.crash_and_restart();
    drop(device);
    let after = device_json(&hub, "dev1");
    assert_eq!(after["connectionState"], "Disconnected");
    assert!(
        after["connectionStateUpdatedTime"].as_str()
            > before["connectionStateUpdatedTime"].as_str(),
        "the change is dated at the restart: {} then {}",
        before["connectionStateUpdatedTime"],
        after["connectionStateUpdatedTime"]
    );
    assert_eq!(connection_state(&hub, "never"), "Disconnected");
    assert!(
        hub.log()
            .contains("marked devices left connected by the previous run as disconnected"),
        "{}",
        hub.log()
    );
}

fn device_json(hub: &HubProcess, id: &str) -> Value {
    let out = hub.cli(&["device", "show", id], &[]);
    serde_json::from_slice(&out.stdout).expect("JSON")
}
