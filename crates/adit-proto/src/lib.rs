//! The wire contract Adit shares with Azure IoT Hub: identifiers, SAS tokens, connection
//! strings, shared-access-policy permissions, the identity JSON model and Azure's error codes.
//!
//! This crate contains no networking code and no async runtime: every function takes bytes or
//! strings (and, where time matters, the current time) and returns values, so it can be unit
//! tested byte for byte and fuzzed. The hub, the SDKs and the CLI all go through it, which is
//! how a token signed by one is always verified the same way by the other.
//!
//! # Layout
//! - [`id`]: device and module identifiers: Azure's current rule, one policy for every entry.
//! - [`connection_string`]: `HostName=...;DeviceId=...;SharedAccessKey=...` in both forms.
//! - [`host`]: `host[:port]` with IPv6 literals (`[::1]:8443`): stored bare, written bracketed.
//! - [`sas`]: building and verifying `SharedAccessSignature` tokens.
//! - [`key`]: symmetric keys (base64 on the wire, bytes in memory, never printed).
//! - [`permission`]: shared access policies and their rights.
//! - [`resource`]: resource URIs (`{host}/devices/{id}`) and audience matching.
//! - [`error_code`]: Azure's numeric error codes and the JSON error body.
//! - [`identity`]: the registry's device JSON model (Azure REST shape).
//! - [`topic`]: MQTT topics for device streams, client ids and usernames.
//! - [`stream_name`]: the rule for stream names.
//! - [`remote_text`]: strings from the network, escaped and bounded for logs and errors.
#![warn(missing_docs)]

pub mod connection_string;
pub mod error_code;
pub mod host;
pub mod id;
pub mod identity;
pub mod key;
pub mod permission;
pub mod remote_text;
pub mod report;
pub mod resource;
pub mod sas;
pub mod stream_name;
pub mod topic;

pub use connection_string::{ConnectionString, ConnectionStringError};
pub use error_code::{ErrorBody, ErrorCode};
pub use host::{HostError, HostPort};
pub use id::{DeviceId, IdError, ModuleId};
pub use key::{Key, KeyError};
pub use permission::{Permissions, PolicyName};
pub use remote_text::remote_text;
pub use sas::{SasError, SasToken};
pub use stream_name::StreamNameError;
