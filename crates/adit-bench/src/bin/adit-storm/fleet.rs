//! The simulated fleet: one real `adit_device::DeviceClient` per device (the SDK's own
//! connect, reconnect and jittered backoff), each watched for the moments it becomes
//! connected.

use std::time::{Duration, Instant};

use adit_device::{ConnectionState, DeviceClient, DeviceOptions, TlsOptions, Transport};
use tokio::sync::mpsc;

/// Connected devices over time.
#[derive(Debug)]
pub struct Fleet {
    clients: Vec<DeviceClient>,
    /// When each client was created.
    pub started: Vec<Instant>,
    /// (device, when it became connected), for every connection, first and later.
    connected: mpsc::UnboundedReceiver<(usize, Instant)>,
}

/// SDK settings for the fleet: the SDK's defaults (backoff included) on `transport`.
pub fn options(transport: Transport, mqtt_port: u16, ca: &std::path::Path) -> DeviceOptions {
    let mut o = DeviceOptions::default();
    o.transport = transport;
    o.mqtt_port = mqtt_port;
    o.tls = TlsOptions::with_ca_file(ca);
    o
}

impl Fleet {
    /// Starts a client for each connection string, spread evenly over `spread` (all at once
    /// when zero).
    pub async fn start(
        strings: &[String],
        options: &DeviceOptions,
        spread: Duration,
    ) -> anyhow::Result<Self> {
        let (tx, connected) = mpsc::unbounded_channel();
        let n = strings.len().max(1);
        let begin = Instant::now();
        let mut clients = Vec::with_capacity(strings.len());
        let mut started = Vec::with_capacity(strings.len());
        for (i, cs) in strings.iter().enumerate() {
            if !spread.is_zero() {
                let at = begin + spread.mul_f64(i as f64 / n as f64);
                tokio::time::sleep_until(at.into()).await;
            }
            started.push(Instant::now());
            let client = DeviceClient::new(cs, options.clone())
                .map_err(|e| anyhow::anyhow!("device client {i}: {e}"))?;
            let mut state = client.watch_state();
            let tx = tx.clone();
            tokio::spawn(async move {
                if *state.borrow_and_update() == ConnectionState::Connected {
                    let _ = tx.send((i, Instant::now()));
                }
                while state.changed().await.is_ok() {
                    if *state.borrow_and_update() == ConnectionState::Connected
                        && tx.send((i, Instant::now())).is_err()
                    {
                        return;
                    }
                }
            });
            clients.push(client);
        }
        Ok(Self {
            clients,
            started,
            connected,
        })
    }

    /// How many devices.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// For each device, its first connection at or after `since`, waiting until every device
    /// has one or `give_up` has passed since `since`.
    pub async fn connections_since(
        &mut self,
        since: Instant,
        give_up: Duration,
    ) -> Vec<Option<Instant>> {
        let mut first = vec![None; self.clients.len()];
        let mut missing = first.len();
        let deadline = tokio::time::Instant::from(since + give_up);
        while missing > 0 {
            let event = tokio::select! {
                e = self.connected.recv() => e,
                () = tokio::time::sleep_until(deadline) => None,
            };
            let Some((i, at)) = event else { break };
            if at >= since
                && let Some(slot @ None) = first.get_mut(i)
            {
                *slot = Some(at);
                missing -= 1;
            }
        }
        first
    }

    /// Disconnects every device cleanly (MQTT DISCONNECT) and waits for them to finish.
    pub async fn shutdown(self) {
        let mut tasks = tokio::task::JoinSet::new();
        for c in self.clients {
            tasks.spawn(c.shutdown());
        }
        while tasks.join_next().await.is_some() {}
    }
}
