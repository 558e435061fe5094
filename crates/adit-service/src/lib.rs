//! Adit service SDK: what a cloud-side service uses to talk to an Adit (or Azure IoT) hub:
//! open a stream to a device by ID ([`ServiceClient`]) and manage identities
//! ([`RegistryClient`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use adit_service::{ServiceClient, StreamOptions, TlsOptions};
//! use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
//!
//! let service = ServiceClient::from_connection_string(
//!     "HostName=localhost:8443;SharedAccessKeyName=service;SharedAccessKey=...",
//!     &TlsOptions::with_ca_file("adit-data/tls/ca.pem"),
//! )?;
//! let mut stream = service.open_stream("thermostat-1", "ssh", &StreamOptions::default()).await?;
//! stream.write_all(b"hello").await?;
//! let mut reply = Vec::new();
//! stream.read_to_end(&mut reply).await?;
//! # Ok(())
//! # }
//! ```
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use adit_service::{RegistryClient, TlsOptions};
//!
//! let registry = RegistryClient::from_connection_string(
//!     "HostName=localhost:8443;SharedAccessKeyName=iothubowner;SharedAccessKey=...",
//!     &TlsOptions::with_ca_file("adit-data/tls/ca.pem"),
//! )?;
//! let device = registry.create_device("thermostat-1").await?;
//! println!("{}", registry.device_connection_string(&device)?);
//! # Ok(())
//! # }
//! ```
//!
//! # Behind an HTTP proxy
//! `ServiceClient::with_proxy` and `RegistryClient::with_proxy` take a [`ProxyConfig`]
//! (`ProxyConfig::from_env()?` follows `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` as curl
//! does): the REST calls and the streams' gateway legs then go through it with `CONNECT`, TLS
//! end to end. The plain constructors connect directly and ignore those variables. A proxy's
//! refusal of a REST call is [`Error::Proxy`].
#![warn(missing_docs)]

mod credentials;
mod diagnostics;
mod error;
mod http;
mod registry;
mod streams;

pub use adit_proto::identity::{AccessPolicy, Device};
pub use adit_transport::mux_session::{MuxSession, MuxStream, SessionError};
pub use adit_transport::{Keepalive, KeepaliveError, ProxyConfig, ProxyError, TlsOptions};
pub use credentials::ServiceCredentials;
pub use diagnostics::LogQuery;
pub use error::Error;
pub use registry::{API_VERSION, RegistryClient};
pub use streams::{ServiceClient, ServiceStream, Session, StreamOptions};
