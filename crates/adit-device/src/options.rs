//! Device client settings.

use std::time::Duration;

use adit_transport::{Keepalive, ProxyConfig, TlsOptions};

/// How the device reaches the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// MQTT over WebSocket at `/$iothub/websocket` on the port in `HostName` (or in
    /// `GatewayHostName` when given; 443 if none): one outbound HTTPS port is enough.
    WebSocket,
    /// MQTT over TLS on [`DeviceOptions::mqtt_port`] (at `GatewayHostName` when given).
    Tls,
}

/// Settings for [`crate::DeviceClient`]. Construct with `default()` and change fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeviceOptions {
    /// Transport. Default: [`Transport::WebSocket`].
    pub transport: Transport,
    /// Port for [`Transport::Tls`]. Default: 8883.
    pub mqtt_port: u16,
    /// Which CAs to trust. Default: the system's roots.
    pub tls: TlsOptions,
    /// MQTT keep-alive. Default: 60 s.
    pub keep_alive: Duration,
    /// WebSocket pings on every WebSocket the client opens: MQTT over WebSocket and the
    /// gateway leg of each accepted stream. `None` turns them off. Default: a ping after 20 s
    /// without receiving anything, and failure 20 s after an unanswered ping.
    pub ws_keepalive: Option<Keepalive>,
    /// Lifetime of the SAS tokens the client signs. The hub ends a session when its token
    /// expires, so the client reconnects with a fresh token at 85 % of this (a brief
    /// reconnect; open streams are not affected). Default: 1 h. Whole seconds are signed,
    /// rounded up; values under 1 s are treated as 1 s.
    pub token_ttl: Duration,
    /// Shortest reconnect delay. The first delay is random in [min, 2 min], and the range
    /// doubles with each failed attempt, up to `max_backoff`. Default: 500 ms.
    pub min_backoff: Duration,
    /// Longest reconnect delay. Default: 30 s.
    pub max_backoff: Duration,
    /// The HTTP CONNECT proxy every connection to the hub goes through (MQTT over WebSocket
    /// or over TLS, and each accepted stream's gateway leg). TLS stays end to end: the proxy
    /// sees `CONNECT host:port` only, and resolves the host itself. Default:
    /// [`ProxyConfig::direct`]; [`ProxyConfig::from_env`] follows `HTTPS_PROXY`, `ALL_PROXY`
    /// and `NO_PROXY` as curl does; [`ProxyConfig::new`] takes
    /// `http://[user:password@]host:port`.
    pub proxy: ProxyConfig,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        Self {
            transport: Transport::WebSocket,
            mqtt_port: 8883,
            tls: TlsOptions::default(),
            keep_alive: Duration::from_secs(60),
            ws_keepalive: Some(Keepalive::default()),
            token_ttl: Duration::from_secs(3600),
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            proxy: ProxyConfig::direct(),
        }
    }
}
