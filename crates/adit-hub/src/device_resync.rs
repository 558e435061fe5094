//! Picks up device changes this node was not told about: with several nodes, a change
//! announced while NATS was unreachable never arrives; anything else writing the registry
//! announces nothing. Every interval the node reads the devices it holds and applies their
//! stored state ([`crate::revocation::device_changed`]): a disabled or deleted device is
//! disconnected, a session signed with a replaced key is closed. It bounds how late such a
//! change holds; the announcement (or the serving node) applies it at once.

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::presence::Presence;
use crate::registry::Registry;
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

/// Re-checks the held devices every `interval` (the first time one interval after the
/// start) until `shutdown`. A registry error is logged and retried at the next tick.
pub async fn run(resync: Resync, interval: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        resync.once().await;
    }
}

impl Resync {
    /// Applies the stored state of every device this node holds a session of (a module's
    /// session goes with its device).
    pub async fn once(&self) {
        let held: HashSet<String> = self
            .presence
            .client_ids()
            .into_iter()
            .map(|c| c.split('/').next().unwrap_or_default().to_string())
            .collect();
        if held.is_empty() {
            return;
        }
        let stored = match self.registry.devices_held_by(&self.node).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %crate::report::Report(&e), "cannot re-check the devices this node holds; will retry");
                return;
            }
        };
        let mut seen = HashSet::new();
        for record in &stored {
            let id = record.device_id.as_str();
            if held.contains(id) {
                crate::revocation::device_changed(&self.presence, &self.streams, id, Some(record));
                seen.insert(id.to_string());
            }
        }
        // Not recorded as held here: deleted, or the row names another node (a lease race, a
        // module-only session). Looked up one by one; rare.
        for id in held.difference(&seen) {
            match self.registry.device(id).await {
                Ok(record) => crate::revocation::device_changed(
                    &self.presence,
                    &self.streams,
                    id,
                    record.as_ref(),
                ),
                Err(e) => {
                    tracing::warn!(device = %id, error = %crate::report::Report(&e), "cannot re-check a device");
                }
            }
        }
    }
}
