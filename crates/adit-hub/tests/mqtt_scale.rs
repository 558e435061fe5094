//! Many devices at once on one hub (bounded: 1,000 connections on loopback).

use std::sync::Arc;

use adit_testkit::{RawMqtt, TestHub, device_token, https_client};
use rumqttc::mqttbytes::v4::ConnectReturnCode;
use tokio::sync::Semaphore;

const DEVICES: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_devices_connect_and_stay_connected() {
    let hub = Arc::new(TestHub::start().await);
    // Create the identities through the REST API, 16 at a time.
    let gate = Arc::new(Semaphore::new(16));
    let mut creations = Vec::new();
    for i in 0..DEVICES {
        let (hub, gate) = (hub.clone(), gate.clone());
        creations.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("open");
            hub.create_device(&format!("dev-{i:04}")).await
        }));
    }
    let mut keys = Vec::new();
    for c in creations {
        keys.push(c.await.expect("created"));
    }

    // Connect them all, at most 100 handshakes in flight.
    let gate = Arc::new(Semaphore::new(100));
    let mut connecting = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let (hub, gate) = (hub.clone(), gate.clone());
        connecting.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("open");
            let id = format!("dev-{i:04}");
            let mut c = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path).await;
            let code = c
                .connect(
                    &id,
                    &hub.username(&id),
                    &device_token(&hub.host_name(), &id, &key),
                    120,
                )
                .await;
            (c, code)
        }));
    }
    let mut clients = Vec::new();
    for c in connecting {
        let (client, code) = c.await.expect("task");
        assert_eq!(code, Some(ConnectReturnCode::Success));
        clients.push(client);
    }

    // All of them are connected at the same time, as the registry sees it...
    let devices: serde_json::Value = https_client(&hub.ca_path)
        .get(format!(
            "{}/devices?top=1000&api-version=2021-04-12",
            hub.base_url()
        ))
        .header("Authorization", hub.owner_token())
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let connected = devices
        .as_array()
        .expect("array")
        .iter()
        .filter(|d| d["connectionState"] == "Connected")
        .count();
    assert_eq!(connected, DEVICES);

    // ...and every session still answers.
    let mut pings = Vec::new();
    for mut c in clients {
        pings.push(tokio::spawn(async move { (c.ping().await, c) }));
    }
    let mut alive = 0;
    let mut keep = Vec::new();
    for p in pings {
        let (ok, c) = p.await.expect("task");
        alive += usize::from(ok);
        keep.push(c);
    }
    assert_eq!(alive, DEVICES);
}
