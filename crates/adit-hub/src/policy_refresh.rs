//! Picks up policy key changes made elsewhere: by another hub node sharing the PostgreSQL
//! registry, or by anything else that writes the registry. (The node that serves
//! `renew-key` applies its own change at once; this bounds how late the others are.)
//!
//! Every interval the authenticator re-reads the policies; a token signed with a key that is
//! gone is refused from then on, and the device sessions signed with one are closed.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::presence::Presence;

/// How often policies are re-read by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// Re-reads the policies, and with `resync` the devices this node holds, every `interval`
/// (the first time one interval after the start) until `shutdown`. A registry error is
/// logged and retried at the next tick.
pub async fn run(
    auth: Authenticator,
    presence: Presence,
    resync: Option<crate::device_resync::Resync>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    // After a stall (a suspended host), one refresh is enough, not a burst.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        apply(&auth, &presence).await;
        if let Some(resync) = &resync {
            resync.once().await;
        }
    }
}

/// Re-reads the policies once and closes the device sessions signed with a key that is gone
/// (also run at once when another node announces a policy change, see
/// [`crate::cluster::registry_changes`]). A registry error is logged.
pub async fn apply(auth: &Authenticator, presence: &Presence) {
    match auth.reload_policies().await {
        Ok(changed) => {
            for (policy, keys) in changed {
                let valid: Vec<_> = keys.iter().collect();
                let closed = presence.revoke_stale_policy_keys(&policy, &valid);
                tracing::info!(%policy, sessions_closed = closed, "policy keys changed in the registry; applied");
            }
        }
        Err(e) => {
            tracing::warn!(error = %crate::report::Report(&e), "cannot re-read the shared access policies; will retry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::{SessionCredential, SessionHandle};
    use crate::registry::{KeyRenewal, Registry};
    use adit_proto::SasToken;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn a_key_changed_elsewhere_holds_here_at_the_next_refresh_not_before() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = Registry::open_in_dir(dir.path()).await.expect("registry");
        registry.ensure_default_policies().await.expect("policies");
        let auth = Authenticator::new(registry.clone(), vec!["localhost".into()])
            .await
            .expect("authenticator");
        let presence = Presence::default();
        let old = registry
            .policy("device")
            .await
            .expect("query")
            .expect("device policy");
        let token = SasToken::sign("localhost", &old.primary_key, Some("device"), u64::MAX / 2);
        let (tx, _rx) = mpsc::channel(1);
        let kick = CancellationToken::new();
        let session = SessionHandle::new(presence.next_session_id(), tx, kick.clone())
            .with_credential(SessionCredential {
                policy: Some("device".into()),
                key: old.primary_key.clone(),
            });
        presence.register("dev", session);
        let shutdown = CancellationToken::new();
        let interval = Duration::from_secs(30);
        let task = tokio::spawn(run(
            auth.clone(),
            presence.clone(),
            None,
            interval,
            shutdown.clone(),
        ));

        // Another node renews the key in the shared registry.
        registry
            .renew_policy_key("device", KeyRenewal::Primary)
            .await
            .expect("renewed");
        let now = crate::auth::unix_now();
        tokio::time::pause();
        tokio::time::advance(interval - Duration::from_millis(50)).await;
        tokio::task::yield_now().await;
        assert!(
            auth.authenticate_service(Some(&token), now).is_ok(),
            "until the refresh this node still knows the old key"
        );
        assert!(!kick.is_cancelled());
        tokio::time::advance(Duration::from_millis(100)).await;
        // The refresh now reads the database: let real time run for it.
        tokio::time::resume();
        for _ in 0..100 {
            if kick.is_cancelled() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            kick.is_cancelled(),
            "the session signed with the old key is closed"
        );
        assert!(
            auth.authenticate_service(Some(&token), now).is_err(),
            "and the old key is refused"
        );
        shutdown.cancel();
        task.await.expect("refresh task");
        registry.close().await;
    }
}
