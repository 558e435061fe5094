//! The streams a node relays now, with what they have carried so far: the console's live list
//! (`docs/console.md`), gathered from every node over the cluster's questions.

use serde::{Deserialize, Serialize};

use crate::gateway::Traffic;
use crate::registry::InFlightStream;

/// One stream open now, as a node reports it (camelCase JSON, as the console's API answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenStream {
    /// Stream id.
    pub stream_id: String,
    /// Target device.
    pub device_id: String,
    /// Target module, if any.
    pub module_id: Option<String>,
    /// Stream name.
    pub stream_name: String,
    /// The shared access policy whose token opened it (the console's own terminal signs with
    /// the signed-in policy's key, so it shows as that policy).
    pub policy: Option<String>,
    /// The service caller's address.
    pub caller: Option<String>,
    /// The node relaying it.
    pub node: String,
    /// `adit.stream.v1`, or `None` for raw bytes.
    pub protocol: Option<String>,
    /// When the service asked, in milliseconds since the Unix epoch.
    pub requested_ms: i64,
    /// Payload bytes carried device to service so far.
    pub bytes_device_to_service: u64,
    /// Payload bytes carried service to device so far.
    pub bytes_service_to_device: u64,
    /// Bytes per second device to service, of late ([`crate::gateway::TrafficReading`]).
    pub rate_device_to_service: u64,
    /// Bytes per second service to device, of late.
    pub rate_service_to_device: u64,
}

/// What a node keeps of an accepted stream until its record is written.
#[derive(Debug, Clone)]
pub(super) struct Running {
    /// Its row in the registry's streams in flight.
    pub row: InFlightStream,
    /// The shared access policy whose token asked.
    pub policy: Option<String>,
    /// The protocol both sides agreed on, or `None` for raw bytes.
    pub protocol: Option<String>,
    /// What its relay has carried.
    pub traffic: Traffic,
}

impl Running {
    /// This stream as node `node` reports it now.
    pub fn report(&self, node: &str) -> OpenStream {
        let t = self.traffic.read();
        OpenStream {
            stream_id: self.row.stream_id.clone(),
            device_id: self.row.device_id.clone(),
            module_id: self.row.module_id.clone(),
            stream_name: self.row.name.clone(),
            policy: self.policy.clone(),
            caller: self.row.caller.clone(),
            node: node.to_string(),
            protocol: self.protocol.clone(),
            requested_ms: self.row.requested_ms,
            bytes_device_to_service: t.device_to_service,
            bytes_service_to_device: t.service_to_device,
            rate_device_to_service: t.rate_device_to_service,
            rate_service_to_device: t.rate_service_to_device,
        }
    }
}
