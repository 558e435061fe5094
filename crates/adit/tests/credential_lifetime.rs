//! Presence and credential lifetime with the real binaries: a hub killed with SIGKILL and
//! restarted reports its devices Disconnected, and `adit device-proxy` with a token lifetime
//! of a few seconds stays connected, and serves streams, across many token renewals.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adit_service::{ServiceClient, StreamOptions, TlsOptions};
use adit_testkit::echo_server;
use adit_testkit::{HubProcess, RawMqtt, Running, device_token, https_client};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

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
    // Compared as instants: the hub writes fractions without trailing zeros ("09.4Z" is before
    // "09.471Z", though it sorts after it as text).
    let at = |device: &serde_json::Value| {
        let text = device["connectionStateUpdatedTime"]
            .as_str()
            .expect("a time");
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339")
    };
    assert!(
        at(&after) > at(&before),
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

async fn connection_records(hub: &HubProcess, device: &str) -> Vec<Value> {
    let owner: adit_proto::ConnectionString =
        hub.owner_connection_string().parse().expect("owner string");
    let token = adit_proto::SasToken::sign(
        &owner.host_name(),
        owner.key.as_ref().expect("key"),
        Some("iothubowner"),
        adit_hub::auth::unix_now() + 600,
    );
    https_client(&hub.ca_path())
        .get(format!(
            "https://localhost:{}/adit/logs?api-version=2021-04-12&category=Connections&device={device}",
            hub.addr.port()
        ))
        .header("Authorization", token)
        .send()
        .await
        .expect("logs")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_proxy_renews_a_short_token_and_keeps_serving_streams() {
    let hub = HubProcess::start(ADIT);
    assert!(
        hub.cli(&["device", "create", "renewer"], &[])
            .status
            .success()
    );
    let cs = String::from_utf8_lossy(
        &hub.cli(&["device", "connection-string", "renewer"], &[])
            .stdout,
    )
    .trim()
    .to_string();
    let echo = echo_server();
    let _proxy = Running(
        Command::new(ADIT)
            .args([
                "device-proxy",
                "--token-ttl",
                "3",
                "--map",
                &format!("echo=127.0.0.1:{echo}"),
            ])
            .env("ADIT_DEVICE_CONNECTION_STRING", &cs)
            .env("ADIT_CA_FILE", hub.ca_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("device-proxy"),
    );
    let service = ServiceClient::from_connection_string(
        &hub.owner_connection_string(),
        &TlsOptions::with_ca_file(hub.ca_path()),
    )
    .expect("client");
    let mut options = StreamOptions::default();
    // Covers the moment of a reconnect: the hub waits briefly for the device to be back.
    options.connect_timeout = Duration::from_secs(5);

    // About 12 s: four token lifetimes of 3 s. A stream every second, each one echoed.
    let start = Instant::now();
    let mut streams = 0;
    while start.elapsed() < Duration::from_secs(12) {
        let mut stream = service
            .open_stream("renewer", "echo", &options)
            .await
            .unwrap_or_else(|e| panic!("stream {streams} at {:?}: {e}", start.elapsed()));
        let message = format!("ping {streams}");
        stream.write_all(message.as_bytes()).await.expect("write");
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back).await.expect("echo");
        assert_eq!(back, message.as_bytes());
        let _ = stream.close().await;
        streams += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(streams >= 8, "{streams} streams");

    // The proxy renewed (reconnected with a fresh token) several times, each time before the
    // hub would have closed the session for expiry.
    let records = connection_records(&hub, "renewer").await;
    let connects = records
        .iter()
        .filter(|r| r["operationName"] == "deviceConnect")
        .count();
    assert!(
        connects >= 4,
        "{connects} connections in 12 s with a 3-s token: {records:#?}"
    );
    let reasons: Vec<&str> = records
        .iter()
        .filter(|r| r["operationName"] == "deviceDisconnect")
        .filter_map(|r| r["resultDescription"].as_str())
        .collect();
    assert!(
        reasons.iter().all(|r| *r == "client sent DISCONNECT"),
        "every session ended by the proxy's renewal, none by expiry: {reasons:?}"
    );
    let state = {
        let out = hub.cli(&["device", "show", "renewer"], &[]);
        let d: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        d["connectionState"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(state, "Connected");
}
