//! The hub's configuration: plain data, defaults that run with no setup.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::gateway::GatewayConfig;
use crate::mqtt::MqttConfig;
use crate::server::HttpsLimits;
use crate::streams::StreamConfig;
use crate::throttle::ThrottleConfig;
use crate::tls::TlsSource;

/// Everything `Hub::bind` needs.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Registry, dev TLS material and the owner connection string live here.
    pub data_dir: PathBuf,
    /// `postgres://...` to keep the registry in PostgreSQL; `None` for SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// The name clients use to reach the hub: goes into connection strings and the dev
    /// certificate, and is what SAS token audiences must name.
    pub hostname: String,
    /// Address the listeners bind.
    pub listen_addr: IpAddr,
    /// HTTPS port (service API, and later MQTT over WebSocket and the streaming gateway).
    pub https_port: u16,
    /// Where the TLS certificate comes from.
    pub tls: TlsSource,
    /// HTTPS listener limits.
    pub https_limits: HttpsLimits,
    /// Failed-authentication throttling (service requests and device CONNECTs alike).
    pub auth_throttle: ThrottleConfig,
    /// The device endpoint.
    pub mqtt: MqttConfig,
    /// Stream handshake timeouts and limits.
    pub streams: StreamConfig,
    /// The streaming gateway.
    pub gateway: GatewayConfig,
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
        }
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        Self::new("adit-data")
    }
}
