//! Adit service SDK: what a cloud-side service uses to talk to an Adit (or Azure IoT) hub.
//!
//! Today that is the identity registry, [`RegistryClient`]; opening device streams follows.
//!
//! ```no_run
//! # async fn run() -> Result<(), adit_service::Error> {
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
mod error;
mod registry;
mod tls;

pub use adit_proto::identity::{AccessPolicy, Device};
pub use credentials::ServiceCredentials;
pub use error::Error;
pub use registry::{API_VERSION, RegistryClient};
pub use tls::TlsOptions;
