//! The device endpoint: a narrow MQTT 3.1.1 server with Azure IoT Hub's connect rules and
//! device-stream topics. Not a broker: the hub decides what each device may subscribe to and
//! sends each device only its own messages.
//!
//! One session implementation ([`session`]) runs over any byte stream; it is reached by MQTT
//! over TLS ([`listener`], port 8883) and by MQTT over WebSocket ([`websocket`],
//! `/$iothub/websocket` on the HTTPS port).

pub mod connect;
pub mod expiry;
pub mod listener;
pub mod session;
pub mod websocket;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::presence::Presence;
use crate::registry::Registry;
use crate::streams::Streams;
use crate::throttle::AuthThrottle;

/// Device endpoint settings.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// MQTT over TLS port (Azure's is 8883; 0 picks a free one).
    pub port: u16,
    /// Device connections at once, over both transports.
    pub max_connections: usize,
    /// Time from TCP accept to a complete CONNECT (TLS handshake included).
    pub connect_timeout: Duration,
    /// Largest MQTT packet accepted or sent.
    pub max_packet_size: usize,
    /// Keep-alive used when a client asks for none or for more (Azure caps it at 1177 s).
    pub max_keep_alive: Duration,
    /// A write to a device that takes longer than this closes the connection.
    pub write_timeout: Duration,
    /// Commands queued for one device before senders wait.
    pub command_queue: usize,
    /// WebSocket pings to devices on MQTT over WebSocket (the same setting as the stream
    /// legs' by default).
    pub ws_keepalive: adit_transport::Keepalive,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            port: 8883,
            max_connections: 20_000,
            connect_timeout: Duration::from_secs(10),
            max_packet_size: 256 * 1024,
            max_keep_alive: Duration::from_secs(1177),
            write_timeout: Duration::from_secs(30),
            command_queue: 16,
            ws_keepalive: adit_transport::Keepalive::default(),
        }
    }
}

/// What every session needs.
#[derive(Debug, Clone)]
pub struct MqttContext {
    /// Settings.
    pub config: MqttConfig,
    /// Device authentication.
    pub auth: Authenticator,
    /// Connection state in the registry.
    pub registry: Registry,
    /// This hub node's id, recorded with each connection it holds (see [`crate::node`]).
    pub node_id: Arc<str>,
    /// Connected sessions.
    pub presence: Presence,
    /// Where devices' stream answers go.
    pub streams: Streams,
    /// Counters for /metrics.
    pub metrics: crate::metrics::Metrics,
    /// The diagnostics log.
    pub diagnostics: crate::diagnostics::Diagnostics,
    /// Failed-CONNECT throttling (the MQTT endpoint's own; REST keeps another).
    pub throttle: AuthThrottle,
    /// One permit per device connection, over both transports.
    pub slots: Arc<Semaphore>,
    /// Tracks sessions for shutdown.
    pub tracker: TaskTracker,
    /// Cancelled when the hub stops.
    /// The link to the other nodes, when the hub runs with NATS.
    pub cluster: Option<crate::cluster::Cluster>,
    pub shutdown: CancellationToken,
}
