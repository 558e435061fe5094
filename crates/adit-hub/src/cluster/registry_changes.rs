//! Registry changes pushed to every node. The node that stores a change applies it at once
//! and announces it on the cluster's `registry.changes` subject; every other node re-reads what changed from the shared
//! registry and applies it too (sessions signed with a replaced key, or of a disabled or
//! deleted device, close; their streams end), well within a second. Policy keys are also
//! re-read every 30 s ([`crate::policy_refresh`]), which bounds a lost announcement.

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::Cluster;
use crate::auth::Authenticator;
use crate::presence::Presence;
use crate::registry::Registry;
use crate::streams::Streams;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "changed", content = "id", rename_all = "snake_case")]
pub enum RegistryChange {
    /// A device's identity (written, disabled, re-keyed or deleted).
    Device(String),
    /// A shared access policy's keys.
    Policies,
}

#[derive(Debug, Serialize, Deserialize)]
struct Announcement {
    node: String,
    change: RegistryChange,
}

/// What a node needs to apply a change.
#[derive(Debug, Clone)]
pub struct Appliers {
    /// The shared registry.
    pub registry: Registry,
    /// The policy cache.
    pub auth: Authenticator,
    /// This node's sessions.
    pub presence: Presence,
    /// This node's streams.
    pub streams: Streams,
}

impl Cluster {
    /// Tells the other nodes that `change` is stored. A failure is logged: the others then
    /// see a device change at its next CONNECT, a policy change at the next refresh.
    pub async fn announce(&self, change: &RegistryChange) {
        let msg = Announcement {
            node: self.node.to_string(),
            change: change.clone(),
        };
        let payload = serde_json::to_vec(&msg).unwrap_or_default();
        if !super::publish_bounded(&self.client, self.subjects.registry_changes(), payload).await {
            tracing::warn!(
                ?change,
                "cannot announce a registry change to the other nodes"
            );
        }
    }

    /// Applies the other nodes' announced changes until `shutdown`.
    pub async fn follow_registry_changes(&self, appliers: Appliers, shutdown: CancellationToken) {
        let Some(mut sub) = self
            .subscribe_bounded(self.subjects.registry_changes())
            .await
        else {
            tracing::error!(
                "cannot follow registry changes over NATS; other nodes' changes hold here only at the next re-check or CONNECT"
            );
            return;
        };
        while let Some(msg) = super::next_message(&mut sub, &shutdown).await {
            let Ok(a) = serde_json::from_slice::<Announcement>(&msg.payload) else {
                tracing::warn!("malformed registry change announcement ignored");
                continue;
            };
            if a.node == *self.node {
                continue;
            }
            apply(&appliers, &a.change).await;
        }
    }
}

async fn apply(to: &Appliers, change: &RegistryChange) {
    match change {
        RegistryChange::Device(id) => match to.registry.device(id).await {
            Ok(record) => {
                crate::revocation::device_changed(&to.presence, &to.streams, id, record.as_ref());
            }
            Err(e) => {
                tracing::warn!(device = %id, error = %crate::report::Report(&e), "cannot read a device another node changed");
            }
        },
        RegistryChange::Policies => crate::policy_refresh::apply(&to.auth, &to.presence).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_have_a_stable_shape() {
        let a = Announcement {
            node: "a".into(),
            change: RegistryChange::Device("d.1".into()),
        };
        let text = serde_json::to_string(&a).expect("encode");
        assert_eq!(
            text,
            r#"{"node":"a","change":{"changed":"device","id":"d.1"}}"#
        );
        let p: Announcement =
            serde_json::from_str(r#"{"node":"b","change":{"changed":"policies"}}"#)
                .expect("decode");
        assert_eq!(p.change, RegistryChange::Policies);
    }
}
