//! The hub's configuration: plain data, defaults that run with no setup.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::gateway::GatewayConfig;
use crate::mqtt::MqttConfig;
use crate::server::HttpsLimits;
use crate::streams::StreamConfig;
use crate::throttle::ThrottleConfig;
use crate::tls::TlsSource;

/// Everything `Hub::bind` needs. Its `Debug` hides the database URL (it may hold a password).
#[derive(Clone)]
pub struct HubConfig {
    /// Registry, dev TLS material and the owner connection string live here.
    pub data_dir: PathBuf,
    /// `postgres://...` to keep the registry in PostgreSQL; `None` for SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// The name clients use to reach the hub: goes into connection strings and the dev
    /// certificate, and is what SAS token audiences must name. A DNS name, an IPv4 address or
    /// an IPv6 address (`::1` or `[::1]`; connection strings write it `[::1]:PORT`).
    pub hostname: String,
    /// Address the listeners bind (`::` for every IPv6 and, where the system allows it,
    /// IPv4 address).
    pub listen_addr: IpAddr,
    /// HTTPS port: service API, MQTT over WebSocket and the streaming gateway.
    pub https_port: u16,
    /// Where the TLS certificate comes from.
    pub tls: TlsSource,
    /// HTTPS listener limits.
    pub https_limits: HttpsLimits,
    /// Failed-authentication throttling: the limits of the REST throttle and of the MQTT
    /// throttle (each counts its own failures; see [`crate::throttle`]).
    pub auth_throttle: ThrottleConfig,
    /// The device endpoint.
    pub mqtt: MqttConfig,
    /// Stream handshake timeouts and limits.
    pub streams: StreamConfig,
    /// The streaming gateway.
    pub gateway: GatewayConfig,
    /// Loopback admin listener (plain HTTP: /metrics, /healthz).
    pub admin_addr: SocketAddr,
    /// The URL clients use to reach the hub's HTTPS port from outside (behind a load balancer
    /// or NAT), e.g. `https://hub.example.com` or `https://[2001:db8::1]:8443`; streaming URLs
    /// and discovery use it, and the dev certificate covers its host.
    /// Default: `https://{hostname}:{https port}`.
    pub public_url: Option<String>,
    /// Diagnostics log rotation and echo.
    pub log: LogSettings,
    /// This node's id: recorded with every device connection it holds, and used at start to
    /// mark the devices a crashed run left `Connected` as disconnected. Must be stable across
    /// restarts and unique among nodes sharing a registry. Default:
    /// [`crate::node::default_node_id`] (the host name).
    pub node_id: String,
    /// How often policy keys, and with a `database_url` the devices this node holds
    /// ([`crate::device_resync`]), are re-read from the registry, so that a change made by
    /// another node (or any other writer) holds here too even when its announcement was
    /// missed; the node that serves a change applies it at once. Default:
    /// [`crate::policy_refresh::DEFAULT_INTERVAL`] (30 s).
    pub policy_refresh: std::time::Duration,
    /// NATS server linking this node to the others that share its registry (see
    /// [`crate::cluster`]), e.g. `nats://10.0.0.5:4222`. `None`: a single node.
    pub nats_url: Option<String>,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "MASKED"),
            )
            .field("hostname", &self.hostname)
            .field("listen_addr", &self.listen_addr)
            .field("https_port", &self.https_port)
            .field("tls", &self.tls)
            .field("https_limits", &self.https_limits)
            .field("auth_throttle", &self.auth_throttle)
            .field("mqtt", &self.mqtt)
            .field("streams", &self.streams)
            .field("gateway", &self.gateway)
            .field("admin_addr", &self.admin_addr)
            .field("public_url", &self.public_url)
            .field("log", &self.log)
            .field("node_id", &self.node_id)
            .field("policy_refresh", &self.policy_refresh)
            .field("nats_url", &self.nats_url.as_ref().map(|_| "MASKED"))
            .finish_non_exhaustive()
    }
}

/// Diagnostics log settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Rotate the log file past this size.
    pub max_file_bytes: u64,
    /// Rotated files kept.
    pub keep_files: usize,
    /// Also print records to stdout.
    pub stdout: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            max_file_bytes: 64 * 1024 * 1024,
            keep_files: 5,
            stdout: false,
        }
    }
}

impl HubConfig {
    /// Defaults: `./adit-data`, SQLite, `localhost`, all interfaces, HTTPS on 8443, MQTT on
    /// 8883, dev TLS.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            hostname: "localhost".to_string(),
            listen_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            https_port: 8443,
            tls: TlsSource::Generated,
            https_limits: HttpsLimits::default(),
            auth_throttle: ThrottleConfig::default(),
            mqtt: MqttConfig::default(),
            streams: StreamConfig::default(),
            gateway: GatewayConfig::default(),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            public_url: None,
            log: LogSettings::default(),
            node_id: crate::node::default_node_id(),
            policy_refresh: crate::policy_refresh::DEFAULT_INTERVAL,
            nats_url: None,
        }
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        Self::new("adit-data")
    }
}
