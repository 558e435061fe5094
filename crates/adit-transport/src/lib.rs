//! Async transports shared by the Adit hub and its SDKs, so both ends of every connection
//! frame bytes the same way.
//!
//! # Layout
//! - [`mqtt_framing`]: MQTT 3.1.1 packets over any byte stream (bounded, cancel-safe reads).
//! - [`ws_io`]: a WebSocket of binary messages as `AsyncRead + AsyncWrite`, with Adit's
//!   half-close convention (a zero-length frame is end-of-stream in one direction) and
//!   optional keep-alive pings ([`keepalive`]).
//! - [`crypto`]: the TLS crypto provider and cipher order every endpoint uses.
//! - [`gateway_client`]: joining the streaming gateway as a device or service half, and
//!   joining it again to resume an `adit.stream.v1` stream.
//! - [`mux_session`]: many connections over one `adit.stream.v1` stream, resumed across a
//!   dropped link.
//! - [`tls_options`]: which certificate authorities a client trusts.
//! - [`certificate_hint`]: what to do when the hub's certificate is refused.
//! - [`tcp`]: client TCP connections with `TCP_NODELAY` and TCP keepalive.
//! - [`proxy`]: the same connections through an HTTP CONNECT proxy (`--proxy`, `HTTPS_PROXY`).
//! - [`keepalive`]: WebSocket keep-alive settings.
#![warn(missing_docs)]

pub mod certificate_hint;
pub mod crypto;
pub mod gateway_client;
pub mod keepalive;
pub mod lingering_close;
pub mod mqtt_framing;
pub mod mux_session;
pub mod proxy;
pub mod tcp;
pub mod tls_options;
pub mod ws_io;

pub use certificate_hint::certificate_hint;
pub use gateway_client::{
    GatewayError, GatewayReattach, GatewayStream, ResumableJoin, ResumeGrant, connect_gateway,
    join_resumable,
};
pub use keepalive::{Keepalive, KeepaliveError};
pub use mqtt_framing::{ConnectionError, MqttConnection};
pub use proxy::{ProxyConfig, ProxyError};
pub use tls_options::{TlsError, TlsOptions};
/// WebSocket close codes, for [`WsIo::close_with`].
pub use tokio_websockets::CloseCode;
pub use ws_io::WsIo;
