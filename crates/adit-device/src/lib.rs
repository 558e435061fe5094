//! Adit device SDK.
//!
//! Not built yet: the device endpoint it talks to (MQTT with Azure's topics) comes first. For
//! now the crate re-exports the wire types a device needs to parse its connection string and
//! sign its SAS token, so device code can already depend on it.
#![warn(missing_docs)]

pub use adit_proto::{ConnectionString, DeviceId, Key, SasToken};
