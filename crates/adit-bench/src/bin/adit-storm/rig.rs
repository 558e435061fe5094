//! The one real `adit hub` process under test, on fixed loopback ports (probed free at start)
//! so that a restart after kill -9 comes back where the devices look for it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use adit_testkit::{HubProcess, free_port};

/// The hub and what the bench needs to reach it.
#[derive(Debug)]
pub struct Rig {
    hub: Option<HubProcess>,
    /// HTTPS (service API, MQTT over WebSocket).
    pub https: SocketAddr,
    /// MQTT over TLS.
    pub mqtt: SocketAddr,
    /// The dev CA that signed the hub's certificate.
    pub ca: PathBuf,
    /// The owner's (iothubowner) connection string.
    pub owner: String,
}

impl Rig {
    /// Starts `bin hub` with `extra` flags on three free ports.
    pub fn start(bin: &std::path::Path, extra: &[String]) -> anyhow::Result<Self> {
        let (https, mqtt, admin) = (free_port(), free_port(), free_port());
        let mut args = vec![
            "--https-port".to_string(),
            https.to_string(),
            "--mqtt-port".to_string(),
            mqtt.to_string(),
            "--admin-addr".to_string(),
            format!("127.0.0.1:{admin}"),
        ];
        args.extend(extra.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // The hub's own log stays quiet: 10,000 devices' connects at info would cost it CPU.
        let hub = HubProcess::start_with_env(bin, &args, &[("ADIT_LOG", "warn")]);
        anyhow::ensure!(
            hub.addr.port() == https && hub.mqtt_addr.port() == mqtt,
            "the hub did not bind the ports it was given"
        );
        Ok(Self {
            https: hub.addr,
            mqtt: hub.mqtt_addr,
            ca: hub.ca_path(),
            owner: hub.owner_connection_string(),
            hub: Some(hub),
        })
    }

    /// What the hub logged (warnings and errors), for the report.
    pub fn log(&self) -> String {
        self.hub.as_ref().map(HubProcess::log).unwrap_or_default()
    }

    /// kill -9, then the same binary on the same ports and data directory. Returns when the
    /// kill was sent and when the new process reported its listeners.
    pub async fn crash_and_start_again(&mut self) -> anyhow::Result<(Instant, Instant)> {
        let mut hub = self
            .hub
            .take()
            .ok_or_else(|| anyhow::anyhow!("no hub running"))?;
        let killed = Instant::now();
        let hub = tokio::task::spawn_blocking(move || {
            hub.crash();
            hub.start_again()
        })
        .await?;
        let ready = Instant::now();
        anyhow::ensure!(
            hub.addr == self.https && hub.mqtt_addr == self.mqtt,
            "the restarted hub is not on the same ports"
        );
        self.hub = Some(hub);
        Ok((killed, ready))
    }

    /// Stops the hub (SIGTERM).
    pub async fn stop(&mut self) {
        if let Some(mut hub) = self.hub.take() {
            let _ = tokio::task::spawn_blocking(move || hub.stop()).await;
        }
    }
}

impl Rig {
    /// The hub's `adit_connected_devices` gauge, from its loopback admin listener.
    pub async fn connected_devices(&self) -> anyhow::Result<u64> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let admin = self
            .hub
            .as_ref()
            .map(|h| h.admin_addr)
            .ok_or_else(|| anyhow::anyhow!("no hub running"))?;
        let mut tcp = tokio::net::TcpStream::connect(admin).await?;
        tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut body = String::new();
        tcp.read_to_string(&mut body).await?;
        body.lines()
            .find_map(|l| l.strip_prefix("adit_connected_devices "))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no adit_connected_devices gauge in /metrics"))
    }
}
