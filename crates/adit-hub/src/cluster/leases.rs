//! This node's lease in the shared registry, and the sweep that clears dead nodes' devices.
//!
//! Every [`RENEW_EVERY`] a node extends its lease to now + [`LEASE`] and looks for nodes whose
//! lease ran out: a node killed with SIGKILL, cut off by a partition or powered off. Their
//! devices are marked disconnected (any node may do it; the delete of the lease makes it
//! happen once), so the registry shows the truth within [`LEASE`] + [`RENEW_EVERY`] while the
//! devices reconnect through the load balancer to the nodes still alive.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::registry::Registry;

/// How long a lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(6);

/// How often a node renews its lease and sweeps for dead nodes.
pub const RENEW_EVERY: Duration = Duration::from_secs(2);

/// Renews `node`'s lease and clears dead nodes until `shutdown`. (A node that stops cleanly
/// records its own devices' disconnections; its lease then just runs out.)
pub async fn run(registry: Registry, node: String, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(RENEW_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let now = crate::registry::now_ms();
        let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        if let Err(e) = registry.renew_lease(&node, now + lease_ms).await {
            tracing::warn!(error = %crate::report::Report(&e), "cannot renew this node's lease");
            continue;
        }
        let dead = match registry.expired_nodes(now).await {
            Ok(dead) => dead,
            Err(e) => {
                tracing::warn!(error = %crate::report::Report(&e), "cannot look for dead nodes");
                continue;
            }
        };
        for other in dead.into_iter().filter(|n| *n != node) {
            match registry.release_dead_node(&other, now).await {
                Ok(cleared) => {
                    tracing::warn!(node = %other, devices = cleared, "node's lease ran out; marked the devices it held as disconnected");
                }
                Err(e) => {
                    tracing::warn!(node = %other, error = %crate::report::Report(&e), "cannot release a dead node's devices");
                }
            }
        }
    }
}
