//! Picks up device changes this node was not told about: with several nodes, a change
//! announced while NATS was unreachable never arrives; anything else writing the registry
//! announces nothing. Every interval the node reads the devices it holds and applies their
//! stored state in one pass over its sessions ([`crate::presence::Presence::resync_devices`]):
//! a disabled or deleted device is disconnected, a session signed with a replaced key is
//! closed. It bounds how late such a
//! change holds; the announcement (or the serving node) applies it at once. It runs on the
//! policy refresh's ticks ([`crate::policy_refresh::run`]).

use std::collections::{HashMap, HashSet};

use crate::presence::Presence;
use crate::registry::{DeviceRecord, Registry};
use crate::streams::Streams;

/// What the re-check needs.
#[derive(Debug, Clone)]
pub struct Resync {
    /// The registry.
    pub registry: Registry,
    /// This node's sessions.
    pub presence: Presence,
    /// This node's streams.
    pub streams: Streams,
    /// This node's id.
    pub node: String,
}

impl Resync {
    /// Applies the stored state of every device this node holds a session of (a module's
    /// session goes with its device), in one pass over the sessions.
    pub async fn once(&self) {
        // Sessions registered from here on authenticated against state at least as new as
        // what the query below reads: they are not judged by it.
        let before = self.presence.next_session_id();
        let held: HashSet<String> = self
            .presence
            .client_ids()
            .into_iter()
            .map(|c| c.split('/').next().unwrap_or_default().to_string())
            .collect();
        if held.is_empty() {
            return;
        }
        let rows = match self.registry.devices_held_by(&self.node).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %crate::report::Report(&e), "cannot re-check the devices this node holds; will retry");
                return;
            }
        };
        let mut stored: HashMap<String, Option<DeviceRecord>> = rows
            .into_iter()
            .filter(|r| held.contains(r.device_id.as_str()))
            .map(|r| (r.device_id.to_string(), Some(r)))
            .collect();
        // Not recorded as held here: deleted, or the row names another node (a lease race, a
        // module-only session). Looked up one by one; rare.
        let missing: Vec<&String> = held
            .iter()
            .filter(|id| !stored.contains_key(id.as_str()))
            .collect();
        for id in missing {
            match self.registry.device(id).await {
                Ok(record) => {
                    stored.insert(id.clone(), record);
                }
                Err(e) => {
                    tracing::warn!(device = %id, error = %crate::report::Report(&e), "cannot re-check a device");
                }
            }
        }
        for device in self.presence.resync_devices(&stored, before) {
            let ended = self.streams.revoke_device(&device);
            tracing::info!(device = %device, streams = ended, "device disabled or deleted while this node was not told; closed its sessions and streams");
        }
    }
}
