//! Hub memory per idle connected device, on a hub of its own (a hub that has relayed bulk
//! data has freed buffers that new sessions would reuse, hiding what they cost).

use std::sync::Arc;

use adit_proto::{ConnectionString, Key, SasToken};
use adit_testkit::{RawMqtt, device_token, https_client};
use tokio::sync::Semaphore;

use adit_bench::rss::rss_kib;

/// How the simulated devices connect.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    /// MQTT over TLS (port 8883 on Azure).
    Tls,
    /// MQTT over WebSocket on the HTTPS port (the Adit SDK's default).
    WebSocket,
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Self::Tls => "MQTT/TLS",
            Self::WebSocket => "MQTT/WS",
        }
    }
}

/// Starts a fresh hub, creates `n` devices, connects them all and leaves them idle; returns
/// the hub's RSS growth per device in KiB.
pub async fn hub_kib_per_device(
    bin: &std::path::Path,
    n: usize,
    transport: Transport,
) -> anyhow::Result<f64> {
    let hub = &crate::paths::start_hub(bin);
    let owner: ConnectionString = hub.owner_connection_string().parse()?;
    let owner_key = owner
        .key
        .clone()
        .ok_or_else(|| anyhow::anyhow!("owner key"))?;
    let host = owner.host_name();
    let http = https_client(&hub.ca_path());
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let token = SasToken::sign(
            &host,
            &owner_key,
            Some("iothubowner"),
            adit_hub::auth::unix_now() + 3600,
        );
        let device: serde_json::Value = http
            .put(format!(
                "https://localhost:{}/devices/idle-{i}?api-version=1",
                hub.addr.port()
            ))
            .header("Authorization", token)
            .body(format!("{{\"deviceId\":\"idle-{i}\"}}"))
            .send()
            .await?
            .json()
            .await?;
        let key = device["authentication"]["symmetricKey"]["primaryKey"]
            .as_str()
            .unwrap_or_default();
        keys.push(Key::from_base64(key)?);
    }
    let pid = hub.pid();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = rss_kib(pid)?;
    let gate = Arc::new(Semaphore::new(100));
    let mut tasks = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let (gate, host, ca) = (gate.clone(), host.clone(), hub.ca_path());
        let (mqtt, https) = (hub.mqtt_addr, hub.addr);
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.ok()?;
            let id = format!("idle-{i}");
            let mut c = match transport {
                Transport::Tls => RawMqtt::tls(mqtt, &ca).await,
                Transport::WebSocket => RawMqtt::websocket(https, &ca, Some("mqtt")).await.ok()?,
            };
            let username = format!("{host}/{id}/?api-version=1");
            c.connect(&id, &username, &device_token(&host, &id, &key), 600)
                .await?;
            Some(c)
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        if let Some(c) = t.await? {
            clients.push(c);
        }
    }
    anyhow::ensure!(
        clients.len() == n,
        "only {} of {n} devices connected",
        clients.len()
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let after = rss_kib(pid)?;
    drop(clients);
    Ok((after - before) / n as f64)
}
