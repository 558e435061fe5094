//! Adit device SDK: what runs on a device behind a firewall. It keeps one outbound connection
//! to the hub (MQTT over WebSocket on the HTTPS port by default, or MQTT over TLS), reconnects
//! by itself, and hands each incoming stream request to the application, which accepts it as
//! an `AsyncRead + AsyncWrite` byte stream or rejects it.
//!
//! It speaks Azure IoT Hub's device-streams protocol, so it also works against Azure.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use adit_device::{DeviceClient, DeviceOptions, TlsOptions};
//! use tokio::io::AsyncWriteExt as _;
//!
//! let mut options = DeviceOptions::default();
//! options.tls = TlsOptions::with_ca_file("adit-data/tls/ca.pem");
//! let mut client = DeviceClient::new("HostName=localhost:8443;DeviceId=dev1;SharedAccessKey=...", options)?;
//! while let Some(request) = client.next_request().await {
//!     if request.name() == "hello" {
//!         let mut stream = request.accept().await?;
//!         stream.write_all(b"hello from the device\n").await?;
//!         stream.shutdown().await?;
//!     } else {
//!         request.reject().await?;
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - [`DeviceClient`]: the handle; `session` runs the connection in a background task.
//! - [`IncomingStream`]: one request; [`DeviceStream`]: an accepted stream.
//! - `endpoint`: `HostName` (the identity in tokens and usernames) and `GatewayHostName` (what
//!   is dialled and verified in TLS, when given).
//! - [`DeviceOptions`]: transport, trust, keep-alive (MQTT, and WebSocket pings:
//!   [`Keepalive`]), token lifetime, reconnect backoff, HTTP CONNECT proxy ([`ProxyConfig`]).
//!
//! # Behind an HTTP proxy
//! Set [`DeviceOptions::proxy`] (for example `ProxyConfig::from_env()?`, or
//! `ProxyConfig::new("http://user:password@proxy:3128")?`) and every connection to the hub,
//! MQTT and stream legs alike, is tunnelled through it with `CONNECT`; TLS to the hub stays end
//! to end. A proxy's refusal shows in the session's log and in [`Error::Gateway`] as a
//! [`ProxyError`] naming the proxy (never its password) and the status.
//!
//! # Credential lifetime
//! The hub closes a session when the SAS token it was opened with expires, as Azure IoT Hub
//! does. The client signs tokens that last [`DeviceOptions::token_ttl`] and reconnects with a
//! fresh one at 85 % of that, so it stays connected indefinitely; streams already open are
//! not affected (they run over their own gateway connections).
#![warn(missing_docs)]

mod backoff;
mod client;
mod endpoint;
mod error;
mod incoming;
mod options;
mod renewal;
mod session;

pub use adit_transport::mux_session::{MuxSession, MuxStream, SessionError};
pub use adit_transport::{Keepalive, KeepaliveError, ProxyConfig, ProxyError, TlsOptions};
pub use client::{ConnectionState, DeviceClient};
pub use error::Error;
pub use incoming::{DeviceStream, IncomingStream};
pub use options::{DeviceOptions, Transport};
