//! The processes on both sides of the emulated link, as a user runs them: the hub and `adit
//! service-proxy` on the hub side (this namespace), the target server and `adit
//! device-proxy` in the device namespace, every hub connection of the device crossing the link.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use adit_testkit::{EmulatedLink, HubProcess, LinkProfile, admin_metric, free_port};

use crate::spawned::Spawned;

/// Where the target listens inside the device namespace (which holds nothing else).
const TARGET_PORT: u16 = 7000;

/// How the device reaches the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceTransport {
    /// MQTT over WebSocket on the HTTPS port.
    WebSocket,
    /// MQTT over TLS on the MQTT port.
    Mqtt,
}

impl DeviceTransport {
    /// As the device proxy's `--transport` spells it.
    pub fn flag(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::Mqtt => "mqtt",
        }
    }

    /// As the docs name it.
    pub fn label(self) -> &'static str {
        match self {
            Self::WebSocket => "MQTT/WS",
            Self::Mqtt => "MQTT/TLS",
        }
    }
}

/// Everything running on both sides of one link. Fields drop in order: processes first,
/// the link (and its namespace) last.
#[derive(Debug)]
pub struct WanEnv {
    device: Option<Spawned>,
    service: Spawned,
    target: Spawned,
    /// The hub, listening on the link's hub-side address.
    pub hub: HubProcess,
    bin: PathBuf,
    device_cs: String,
    keepalive_secs: String,
    service_port: u16,
    /// The emulated link and the device namespace.
    pub link: EmulatedLink,
}

/// Waits until something listens on `addr` (through the link, so it may take round trips).
fn wait_listening(addr: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

impl WanEnv {
    /// Link (with `profile`), hub, target and service proxy; the device proxy comes with
    /// [`WanEnv::start_device`]. Hub and proxies ping idle WebSockets after `keepalive_secs`
    /// and give a peer up `keepalive_secs` after an unanswered ping.
    pub fn start(bin: &Path, profile: LinkProfile, keepalive_secs: u64) -> anyhow::Result<Self> {
        let link = EmulatedLink::start(profile)?;
        let hub_ip = link.hub_addr().to_string();
        let ka = keepalive_secs.to_string();
        let hub = HubProcess::start_on_free_ports(
            bin,
            &[
                "--listen-addr",
                &hub_ip,
                "--hostname",
                &hub_ip,
                "--ping-interval",
                &ka,
                "--pong-timeout",
                &ka,
            ],
        );
        let out = hub.cli(&["device", "create", "bench"], &[]);
        anyhow::ensure!(
            out.status.success(),
            "device create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let device_cs = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut target = link.netns().command(std::env::current_exe()?);
        target.args(["target", "--listen", &format!("0.0.0.0:{TARGET_PORT}")]);
        let target = Spawned::start(target)?;
        wait_listening(
            SocketAddr::from((link.device_addr(), TARGET_PORT)),
            Duration::from_secs(30),
        )?;
        let service_port = free_port();
        let mut service = Command::new(bin);
        service
            .args([
                "service-proxy",
                "--device",
                "bench",
                "--stream-name",
                "echo",
                "--listen",
                &format!("127.0.0.1:{service_port}"),
                "--connect-timeout",
                "30",
                "--ping-interval",
                &ka,
                "--pong-timeout",
                &ka,
            ])
            .env("ADIT_CONNECTION_STRING", hub.owner_connection_string())
            .env("ADIT_CA_FILE", hub.ca_path())
            .env("ADIT_LOG", "warn");
        let service = Spawned::start(service)?;
        wait_listening(
            SocketAddr::from((Ipv4Addr::LOCALHOST, service_port)),
            Duration::from_secs(30),
        )?;
        Ok(Self {
            device: None,
            service,
            target,
            hub,
            bin: bin.to_path_buf(),
            device_cs,
            keepalive_secs: ka,
            service_port,
            link,
        })
    }

    /// Starts `adit device-proxy` in the device namespace (replacing one already running).
    pub fn start_device(&mut self, transport: DeviceTransport) -> anyhow::Result<&Spawned> {
        self.device = None;
        let mut cmd = self.link.netns().command(&self.bin);
        cmd.args([
            "device-proxy",
            "--map",
            &format!("echo=127.0.0.1:{TARGET_PORT}"),
            "--transport",
            transport.flag(),
            "--mqtt-port",
            &self.hub.mqtt_addr.port().to_string(),
            "--ping-interval",
            &self.keepalive_secs,
            "--pong-timeout",
            &self.keepalive_secs,
        ])
        .env("ADIT_DEVICE_CONNECTION_STRING", &self.device_cs)
        .env("ADIT_CA_FILE", self.hub.ca_path())
        .env("ADIT_LOG", "info");
        Ok(self.device.insert(Spawned::start(cmd)?))
    }

    /// Stops the device proxy.
    pub fn stop_device(&mut self) {
        self.device = None;
    }

    /// The running device proxy.
    pub fn device(&self) -> Option<&Spawned> {
        self.device.as_ref()
    }

    /// Devices the hub holds a session for now (`adit_connected_devices`).
    pub fn connected_devices(&self) -> Option<f64> {
        admin_metric(self.hub.admin_addr, "adit_connected_devices")
    }

    /// Polls until the hub holds `n` device sessions: when, or `None` past `within`.
    pub async fn wait_devices(&self, n: f64, within: Duration) -> Option<Instant> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.connected_devices() == Some(n) {
                return Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        None
    }

    /// The direct path: straight to the target across the link.
    pub fn direct_addr(&self) -> SocketAddr {
        SocketAddr::from((self.link.device_addr(), TARGET_PORT))
    }

    /// The Adit path: the service proxy, whose every connection is a stream to the target.
    pub fn adit_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.service_port))
    }

    /// Pids of the target and proxies (for a failure message).
    pub fn describe(&self) -> String {
        format!(
            "target pid {}, service-proxy pid {}, hub pid {}",
            self.target.pid(),
            self.service.pid(),
            self.hub.pid()
        )
    }
}
