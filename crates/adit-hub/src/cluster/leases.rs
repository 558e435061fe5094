//! This node's lease in the shared registry, and the sweep that clears dead nodes' devices.
//!
//! Every [`RENEW_EVERY`] a node extends its lease to now + [`LEASE`] and looks for nodes whose
//! lease ran out: a node killed with SIGKILL, cut off by a partition or powered off. Their
//! devices are marked disconnected and the streams it was relaying get `node_lost` records
//! (any node may do it; the delete of the lease makes it happen once), so the registry shows
//! the truth within [`LEASE`] + [`RENEW_EVERY`] while the devices reconnect through the load
//! balancer to the nodes still alive.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::presence::Presence;
use crate::registry::Registry;
use crate::streams::Streams;

/// How long a lease may go unrenewed, on the observer's own clock, before its node counts as
/// dead.
pub const LEASE: Duration = Duration::from_secs(6);

/// How often a node renews its lease and looks at the others'.
pub const RENEW_EVERY: Duration = Duration::from_secs(2);

/// Renews `node`'s lease and clears dead nodes until `shutdown`. A node found its lease gone
/// (it was paused or cut off long enough to be taken for dead) marks the devices it still
/// holds as connected again. (A node that stops cleanly records its own devices'
/// disconnections; its lease then just stops changing.)
pub async fn run(
    registry: Registry,
    presence: Presence,
    streams: Streams,
    node: String,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(RENEW_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Each other node's lease value and when this node first saw it.
    let mut seen: HashMap<String, (i64, Instant)> = HashMap::new();
    let mut first = true;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        match tokio::time::timeout(
            RENEW_EVERY,
            registry.renew_lease(&node, crate::registry::now_ms()),
        )
        .await
        {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) if first => {}
            Ok(Ok(false)) => reclaim(&registry, &presence, &streams, &node).await,
            // While this node cannot reach the registry, the others' renewals cannot reach it
            // either: its view of them is stale, and judging them by it when the registry is
            // back would take live nodes for dead. It starts their clocks again.
            Ok(Err(e)) => {
                tracing::warn!(error = %crate::report::Report(&e), "cannot renew this node's lease");
                seen.clear();
                continue;
            }
            Err(_) => {
                tracing::warn!("renewing this node's lease took over {RENEW_EVERY:?}");
                seen.clear();
                continue;
            }
        }
        first = false;
        let leases = match registry.leases().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %crate::report::Report(&e), "cannot read the nodes' leases");
                seen.clear();
                continue;
            }
        };
        let now = Instant::now();
        let mut alive = HashMap::new();
        for (other, value) in leases.into_iter().filter(|(n, _)| *n != node) {
            let since = match seen.get(&other) {
                Some((v, since)) if *v == value => *since,
                _ => now,
            };
            if now.duration_since(since) > LEASE {
                match registry.release_dead_node(&other, value).await {
                    Ok(released) => {
                        tracing::warn!(node = %other, devices = released.devices, streams = released.streams.len(), "node stopped renewing its lease; marked the devices it held as disconnected and recorded its streams as lost");
                        streams.record_lost(&other, &released.streams);
                    }
                    Err(e) => {
                        tracing::warn!(node = %other, error = %crate::report::Report(&e), "cannot release a dead node's devices");
                        alive.insert(other, (value, since));
                    }
                }
            } else {
                alive.insert(other, (value, since));
            }
        }
        seen = alive;
    }
}

/// Refuses to start a node whose id another running node uses: what this node would do at
/// start (mark the devices and streams recorded under its id as gone) would wreck that
/// node's. A lease of this id renewed within [`LEASE`] on this clock may be a previous run
/// that just died or another process: this waits [`LEASE`] + [`RENEW_EVERY`] and refuses if
/// the lease moved meanwhile. An older lease starts at once.
///
/// # Errors
/// [`crate::HubError::Config`] when another process renews the lease; registry errors.
pub async fn refuse_duplicate_node(registry: &Registry, node: &str) -> Result<(), crate::HubError> {
    let lease =
        |leases: Vec<(String, i64)>| leases.into_iter().find(|(n, _)| n == node).map(|(_, v)| v);
    let Some(seen) = lease(registry.leases().await?) else {
        return Ok(());
    };
    let age_ms = crate::registry::now_ms().saturating_sub(seen);
    if age_ms > i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX) {
        return Ok(());
    }
    tracing::info!(
        node,
        age_ms,
        "this node id's lease was renewed moments ago: waiting to see whether another process still renews it"
    );
    tokio::time::sleep(LEASE + RENEW_EVERY).await;
    if lease(registry.leases().await?) != Some(seen) {
        return Err(crate::HubError::Config(format!(
            "another running hub renews the lease of node id {node}: give each node its own --node-id"
        )));
    }
    Ok(())
}

/// Warns when a node without `--nats-url` starts on a registry that live cluster nodes share:
/// it cannot reach their devices, nor they its own, and it would not hear their changes.
pub async fn warn_if_cluster_without_nats(registry: &Registry, node: &str) {
    let Ok(leases) = registry.leases().await else {
        return;
    };
    let now = crate::registry::now_ms();
    let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    let live = leases
        .iter()
        .filter(|(n, v)| n != node && now.saturating_sub(*v) <= lease_ms)
        .count();
    if live > 0 {
        tracing::warn!(
            nodes = live,
            "other hub nodes share this registry over NATS, and this node has no --nats-url: it cannot reach their devices nor they its own; give it the cluster's --nats-url"
        );
    }
}

/// This node's lease had been taken for dead, its devices marked disconnected and its streams
/// recorded as lost: mark the devices it still holds as connected again and keep its live
/// streams in the registry again (they will get their real record too: a `node_lost` record
/// of a node that came back was a presumption).
async fn reclaim(registry: &Registry, presence: &Presence, streams: &Streams, node: &str) {
    for s in streams.in_flight() {
        if let Err(e) = registry.stream_opened(node, s).await {
            tracing::warn!(error = %crate::report::Report(&e), "cannot keep a stream in the registry again");
        }
    }
    let devices: Vec<String> = presence
        .client_ids()
        .into_iter()
        .filter(|c| !c.contains('/'))
        .collect();
    tracing::warn!(
        devices = devices.len(),
        "this node's lease had run out (paused or cut off); marking its devices connected again"
    );
    // All queued at once: the group commit writes them in a few transactions, not one each,
    // so thousands are back before this node's next renewal.
    let writes = devices.iter().map(|d| async move {
        if let Err(e) = registry.record_reclaimed(d, node).await {
            tracing::warn!(device = %d, error = %crate::report::Report(&e), "cannot record connection state");
        }
    });
    futures_util::future::join_all(writes).await;
}
