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
#![warn(missing_docs)]

mod credentials;
mod diagnostics;
mod error;
mod http;
mod registry;
mod streams;

pub use adit_proto::identity::{AccessPolicy, Device};
pub use adit_transport::{Keepalive, KeepaliveError, TlsOptions};
pub use credentials::ServiceCredentials;
pub use diagnostics::LogQuery;
pub use error::Error;
pub use registry::{API_VERSION, RegistryClient};
pub use streams::{ServiceClient, ServiceStream, StreamOptions};
