//! Idle devices held by a cluster: `n` devices connect (raw MQTT over TLS, as the single-node
//! benchmark's idle row does) to the cluster's entry (HAProxy for three nodes), and stay
//! idle. Reports how long they took to connect, how many each node holds and each node's RSS
//! growth per device it holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adit_bench::rss::rss_kib;
use adit_proto::ConnectionString;
use adit_testkit::{RawMqtt, admin_metric, device_token};
use rumqttc::mqttbytes::v4::ConnectReturnCode;
use tokio::sync::Semaphore;

use crate::cluster::Cluster;
use crate::identities;

/// One node's share of the idle fleet.
pub struct NodeShare {
    pub devices: f64,
    pub kib_per_device: f64,
}

/// What the idle fleet cost.
pub struct Outcome {
    pub devices: usize,
    /// From the first TCP connect to the last CONNACK.
    pub connect_secs: f64,
    pub nodes: Vec<NodeShare>,
    /// HAProxy's RSS growth per device (two sockets each), when there is one.
    pub haproxy_kib_per_device: Option<f64>,
}

/// Creates `n` devices, connects them all (`concurrency` handshakes in flight) and measures.
pub async fn run(
    cluster: &Cluster,
    tag: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Outcome> {
    let owner = cluster.owner_via(cluster.entry_https());
    let registry = identities::registry(&owner, &cluster.ca)?;
    let ids: Vec<String> = (0..n).map(|i| format!("{tag}-idle-{i}")).collect();
    let strings = identities::create(&registry, ids.clone(), 32).await?;
    let mut creds = Vec::with_capacity(n);
    for (id, cs) in ids.into_iter().zip(strings) {
        let cs: ConnectionString = cs.parse()?;
        let key = cs.key.clone().ok_or_else(|| anyhow::anyhow!("no key"))?;
        creds.push((id, cs.host_name(), key));
    }
    let pids: Vec<u32> = cluster.nodes.iter().map(|n| n.pid()).collect();
    let haproxy_pid = cluster.haproxy.as_ref().map(|h| h.pid());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_all(&pids)?;
    let haproxy_before = haproxy_pid.map(rss_kib).transpose()?;

    let (entry, ca) = (cluster.entry_mqtt(), cluster.ca.clone());
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (id, host, key) in creds {
        let (gate, ca) = (gate.clone(), ca.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let mut c = RawMqtt::tls(entry, &ca).await;
            let username = format!("{host}/{id}/?api-version=1");
            let code = c
                .connect(&id, &username, &device_token(&host, &id, &key), 600)
                .await;
            anyhow::ensure!(
                code == Some(ConnectReturnCode::Success),
                "{id}: CONNACK {code:?}"
            );
            anyhow::Ok(c)
        }));
    }
    let mut clients = Vec::with_capacity(n);
    for t in tasks {
        clients.push(t.await??);
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_all(&pids)?;
    let haproxy_after = haproxy_pid.map(rss_kib).transpose()?;
    let mut nodes = Vec::with_capacity(pids.len());
    for (i, node) in cluster.nodes.iter().enumerate() {
        let devices = admin_metric(node.admin_addr, "adit_connected_devices")
            .ok_or_else(|| anyhow::anyhow!("node {i}: no adit_connected_devices"))?;
        nodes.push(NodeShare {
            devices,
            kib_per_device: (after[i] - before[i]) / devices.max(1.0),
        });
    }
    let held: f64 = nodes.iter().map(|s| s.devices).sum();
    anyhow::ensure!(
        held as usize == n,
        "the nodes hold {held} devices, {n} connected"
    );
    drop(clients);
    Ok(Outcome {
        devices: n,
        connect_secs,
        nodes,
        haproxy_kib_per_device: haproxy_before
            .zip(haproxy_after)
            .map(|(b, a)| (a - b) / n as f64),
    })
}

fn rss_all(pids: &[u32]) -> anyhow::Result<Vec<f64>> {
    pids.iter().map(|p| rss_kib(*p)).collect()
}
