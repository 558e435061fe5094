//! Which devices are connected, and a handle to reach each one's MQTT session.
//!
//! Presence lives in memory on the node that holds the connection. A second connection with
//! the same client id takes over: the first session is told to close, as Azure does. Only the
//! session that is current may mark the device disconnected, so a slow-closing old session
//! cannot overwrite the new one's state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use adit_proto::Key;
use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// Something the hub sends down a device's connection.
///
/// Pointer-sized: a session's queue allocates its first block of slots up front, so every
/// connected device pays for the slot size whether or not anything is ever sent.
#[derive(Debug, Clone)]
pub enum DeviceCommand {
    /// PUBLISH at QoS 0.
    Publish(Box<OutgoingPublish>),
}

/// A PUBLISH the hub sends a device.
#[derive(Debug, Clone)]
pub struct OutgoingPublish {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
}

/// Why a session is being closed from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickReason {
    /// Another connection with the same client id arrived.
    TakenOver,
    /// The device was disabled or deleted.
    Revoked,
    /// The key that signed the session's token was replaced (device keys or policy keys).
    CredentialsChanged,
}

/// What authenticated a session, so that a registry change can tell whether it invalidates
/// the session. `Debug` masks the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCredential {
    /// The shared access policy whose key signed the token; `None` for the device's own key.
    pub policy: Option<String>,
    /// The key that signed the token.
    pub key: Key,
}

/// One connected session, as seen from outside it.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    /// Unique per connection.
    pub session_id: u64,
    /// Commands for the session (bounded: a device that does not read slows only itself).
    pub commands: mpsc::Sender<DeviceCommand>,
    /// True while the device is subscribed to `$iothub/streams/POST/#`.
    pub streams_subscribed: Arc<AtomicBool>,
    kick: CancellationToken,
    reason: Arc<Mutex<Option<KickReason>>>,
    credential: Option<Arc<SessionCredential>>,
}

impl SessionHandle {
    /// A handle for a new session; `kick` is what the session watches.
    pub fn new(
        session_id: u64,
        commands: mpsc::Sender<DeviceCommand>,
        kick: CancellationToken,
    ) -> Self {
        Self {
            session_id,
            commands,
            streams_subscribed: Arc::new(AtomicBool::new(false)),
            kick,
            reason: Arc::default(),
            credential: None,
        }
    }

    /// Records what authenticated the session. A session without one is never ended by key
    /// changes (only by disable, delete, takeover or shutdown).
    pub fn with_credential(mut self, credential: SessionCredential) -> Self {
        self.credential = Some(Arc::new(credential));
        self
    }

    fn kick(&self, reason: KickReason) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(reason);
        self.kick.cancel();
    }

    /// Why the session was kicked, once it was.
    pub fn kick_reason(&self) -> Option<KickReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The connected sessions, by client id (`device` or `device/module`).
#[derive(Debug, Clone, Default)]
pub struct Presence {
    // std Mutex: every critical section is a map operation, never held across an await.
    sessions: Arc<Mutex<HashMap<String, SessionHandle>>>,
    next_id: Arc<AtomicU64>,
    // Wakes the stream requests waiting for one client id to connect or subscribe; an entry
    // lives while someone waits, so a connect wakes only the requests for that device.
    watchers: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
    // Counts credential changes (revocations of any kind); see `credential_changes`.
    credential_changes: Arc<AtomicU64>,
}

/// A stream request's watch on one client id; see [`Presence::watch`].
#[derive(Debug)]
pub struct Watch {
    presence: Presence,
    client_id: String,
    notify: Arc<Notify>,
}

impl Watch {
    /// Resolves at the next connection or subscription change of the watched client id.
    /// Enable it (`Notified::enable`) before looking at the state, so a change in between is
    /// not missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut map = self
            .presence
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Counted under the lock, where new watches are made: the map's and this one left
        // means nobody else waits.
        if Arc::strong_count(&self.notify) <= 2 {
            map.remove(&self.client_id);
        }
    }
}

impl Presence {
    /// A fresh session id.
    pub fn next_session_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts watching `client_id` for connections and subscriptions.
    pub fn watch(&self, client_id: &str) -> Watch {
        let notify = self
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(client_id.to_string())
            .or_default()
            .clone();
        Watch {
            presence: self.clone(),
            client_id: client_id.to_string(),
            notify,
        }
    }

    /// Wakes the watches on `client_id` (it connected or subscribed); others sleep on.
    pub fn notify(&self, client_id: &str) {
        // Under the lock (notify_waiters does not block), so a watch dropped meanwhile cannot
        // see an extra reference and leave its entry behind.
        let map = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(client_id) {
            n.notify_waiters();
        }
    }

    /// Client ids with a stream request waiting for them (for tests and metrics).
    pub fn watched(&self) -> usize {
        self.watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// How many credential changes (disable, delete, key changes) have been applied so far.
    /// A CONNECT reads it before authenticating and again after [`Presence::register`]: a
    /// change applied in between scanned the sessions before this one was there, so a
    /// different count means "authenticate again against the new state". Each change is
    /// counted before its scan, so one that misses the new session is always seen by it.
    pub fn credential_changes(&self) -> u64 {
        self.credential_changes.load(Ordering::SeqCst)
    }

    /// Makes `handle` the current session for `client_id`, kicking any previous one.
    pub fn register(&self, client_id: &str, handle: SessionHandle) {
        let previous = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(client_id.to_string(), handle);
        if let Some(old) = previous {
            old.kick(KickReason::TakenOver);
        }
        self.notify(client_id);
    }

    /// Removes the session if it is still the current one; returns whether it was.
    pub fn unregister(&self, client_id: &str, session_id: u64) -> bool {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if map
            .get(client_id)
            .is_some_and(|h| h.session_id == session_id)
        {
            map.remove(client_id);
            true
        } else {
            false
        }
    }

    /// Closes `client_id`'s session `session_id` because the device connected to another
    /// node, if that session is still the current one here; returns whether it was.
    pub fn take_over(&self, client_id: &str, session_id: u64) -> bool {
        let map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(client_id) {
            Some(h) if h.session_id == session_id => {
                h.kick(KickReason::TakenOver);
                true
            }
            _ => false,
        }
    }

    /// The client ids with a session on this node now.
    pub fn client_ids(&self) -> Vec<String> {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// The current session of `client_id`.
    pub fn session(&self, client_id: &str) -> Option<SessionHandle> {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(client_id)
            .cloned()
    }

    /// Closes every session of `device_id` (the device and its modules).
    pub fn revoke_device(&self, device_id: &str) {
        self.credential_changes.fetch_add(1, Ordering::SeqCst);
        let map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let module_prefix = format!("{device_id}/");
        for (client, handle) in map.iter() {
            if client == device_id || client.starts_with(&module_prefix) {
                handle.kick(KickReason::Revoked);
            }
        }
    }

    /// Closes the sessions of `device_id` (the device and its modules) that authenticated with
    /// the device's own key when that key is no longer one of `valid` (the device's keys
    /// after a change). Returns how many were closed.
    pub fn revoke_stale_device_keys(&self, device_id: &str, valid: &[&Key]) -> usize {
        let module_prefix = format!("{device_id}/");
        self.revoke_where(|client, credential| {
            (client == device_id || client.starts_with(&module_prefix))
                && credential.policy.is_none()
                && !valid.contains(&&credential.key)
        })
    }

    /// Closes the sessions that authenticated with a key of `policy` that is no longer one of
    /// `valid` (the policy's keys after a change, none when it is gone). Returns how many.
    pub fn revoke_stale_policy_keys(&self, policy: &str, valid: &[&Key]) -> usize {
        self.revoke_where(|_, credential| {
            credential.policy.as_deref() == Some(policy) && !valid.contains(&&credential.key)
        })
    }

    /// Judges every session older than `before` (a session id taken before `stored` was read)
    /// by its device's stored state, in one pass: `stored` maps a device id to its record
    /// (`None`: deleted); devices not in it are left alone. A session of a deleted or disabled
    /// device is closed as revoked, one signed with a device key it no longer has as changed.
    /// Sessions registered since `before` authenticated against newer state and are skipped,
    /// so a stale read never closes them. Returns the devices whose sessions were revoked.
    pub fn resync_devices(
        &self,
        stored: &HashMap<String, Option<crate::registry::DeviceRecord>>,
        before: u64,
    ) -> Vec<String> {
        let mut revoked = Vec::new();
        let mut changed = false;
        let map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        for (client, handle) in map.iter() {
            if handle.session_id >= before {
                continue;
            }
            let device = client.split('/').next().unwrap_or_default();
            let Some(record) = stored.get(device) else {
                continue;
            };
            match record {
                Some(r) if r.status != crate::registry::DeviceStatus::Disabled => {
                    if let Some(credential) = &handle.credential
                        && credential.policy.is_none()
                        && !r.keys().contains(&&credential.key)
                    {
                        handle.kick(KickReason::CredentialsChanged);
                        changed = true;
                    }
                }
                _ => {
                    handle.kick(KickReason::Revoked);
                    changed = true;
                    revoked.push(device.to_string());
                }
            }
        }
        drop(map);
        if changed {
            self.credential_changes.fetch_add(1, Ordering::SeqCst);
        }
        revoked.sort();
        revoked.dedup();
        revoked
    }

    fn revoke_where(&self, stale: impl Fn(&str, &SessionCredential) -> bool) -> usize {
        self.credential_changes.fetch_add(1, Ordering::SeqCst);
        let map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let mut revoked = 0;
        for (client, handle) in map.iter() {
            if let Some(credential) = &handle.credential
                && stale(client, credential)
            {
                handle.kick(KickReason::CredentialsChanged);
                revoked += 1;
            }
        }
        revoked
    }

    /// How many sessions are connected.
    pub fn len(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// True when no session is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(p: &Presence) -> (SessionHandle, CancellationToken) {
        let (tx, _rx) = mpsc::channel(1);
        let kick = CancellationToken::new();
        (
            SessionHandle::new(p.next_session_id(), tx, kick.clone()),
            kick,
        )
    }

    #[test]
    fn takeover_kicks_the_old_session_and_only_the_current_one_unregisters() {
        let p = Presence::default();
        let (first, first_kick) = handle(&p);
        let (second, second_kick) = handle(&p);
        p.register("d", first.clone());
        p.register("d", second.clone());
        assert!(first_kick.is_cancelled());
        assert_eq!(first.kick_reason(), Some(KickReason::TakenOver));
        assert!(!second_kick.is_cancelled());
        assert!(!p.unregister("d", first.session_id));
        assert_eq!(p.len(), 1);
        assert!(p.unregister("d", second.session_id));
        assert!(p.is_empty());
    }

    #[tokio::test]
    async fn a_connect_wakes_only_the_requests_waiting_for_that_device() {
        let p = Presence::default();
        let for_a = p.watch("a");
        let for_b = p.watch("b");
        let also_a = p.watch("a");
        {
            let (wake_a, wake_b, wake_a2) = (for_a.changed(), for_b.changed(), also_a.changed());
            tokio::pin!(wake_a, wake_b, wake_a2);
            wake_a.as_mut().enable();
            wake_b.as_mut().enable();
            wake_a2.as_mut().enable();
            let (h, _k) = handle(&p);
            p.register("a", h);
            use futures_util::FutureExt as _;
            assert!(wake_a.now_or_never().is_some());
            assert!(wake_a2.now_or_never().is_some());
            assert!(wake_b.now_or_never().is_none(), "b's request slept on");
        }
        assert_eq!(p.watched(), 2);
        drop((for_a, also_a));
        assert_eq!(p.watched(), 1, "a's entry goes with its last watch");
        drop(for_b);
        assert_eq!(p.watched(), 0);
    }

    fn key(byte: u8) -> Key {
        Key::from_bytes(&[byte; 32]).expect("32 bytes is a valid key")
    }

    fn with(p: &Presence, policy: Option<&str>, k: Key) -> (SessionHandle, CancellationToken) {
        let (h, kick) = handle(p);
        let credential = SessionCredential {
            policy: policy.map(str::to_string),
            key: k,
        };
        (h.with_credential(credential), kick)
    }

    fn record(
        id: &str,
        status: crate::registry::DeviceStatus,
        keys: [u8; 2],
    ) -> crate::registry::DeviceRecord {
        crate::registry::DeviceRecord {
            device_id: adit_proto::DeviceId::new(id).expect("valid"),
            generation_id: "1".into(),
            etag: "e".into(),
            status,
            status_reason: None,
            status_updated_ms: 0,
            auth: crate::registry::AuthKind::Sas {
                primary: Some(key(keys[0])),
                secondary: Some(key(keys[1])),
            },
            iot_edge: false,
            device_scope: None,
            parent_scopes: Vec::new(),
            connection_state: crate::registry::ConnectionState::Connected,
            connection_state_updated_ms: None,
            last_activity_ms: None,
            connection_node: None,
        }
    }

    #[test]
    fn a_resync_judges_only_sessions_older_than_its_read() {
        use crate::registry::DeviceStatus::{Disabled, Enabled};
        let p = Presence::default();
        let (rekeyed, k_rekeyed) = with(&p, None, key(1));
        let (kept, k_kept) = with(&p, None, key(2));
        let (disabled, k_disabled) = with(&p, None, key(1));
        let (module, k_module) = with(&p, None, key(1));
        let (unlisted, k_unlisted) = with(&p, None, key(1));
        p.register("r", rekeyed);
        p.register("k", kept);
        p.register("x", disabled);
        p.register("x/m", module);
        p.register("u", unlisted);
        let before = p.next_session_id();
        // Registered after the read: it authenticated against newer state than `stored`.
        let (fresh, k_fresh) = with(&p, None, key(1));
        p.register("f", fresh);
        let stored = HashMap::from([
            ("r".to_string(), Some(record("r", Enabled, [8, 9]))),
            ("k".to_string(), Some(record("k", Enabled, [8, 2]))),
            ("x".to_string(), Some(record("x", Disabled, [1, 2]))),
            ("f".to_string(), None),
        ]);
        let changes = p.credential_changes();
        assert_eq!(p.resync_devices(&stored, before), ["x"]);
        assert_eq!(p.credential_changes(), changes + 1, "one bump for the pass");
        assert!(
            k_rekeyed.is_cancelled(),
            "signed with a key the device no longer has"
        );
        assert!(!k_kept.is_cancelled(), "its key is still the secondary");
        assert!(
            k_disabled.is_cancelled() && k_module.is_cancelled(),
            "disabled: the device and its modules"
        );
        assert!(!k_unlisted.is_cancelled(), "not in the read: left alone");
        assert!(
            !k_fresh.is_cancelled(),
            "newer than the read: left alone, even if deleted there"
        );

        let quiet = HashMap::from([("k".to_string(), Some(record("k", Enabled, [8, 2])))]);
        let changes_now = p.credential_changes();
        assert!(p.resync_devices(&quiet, before).is_empty());
        assert_eq!(
            p.credential_changes(),
            changes_now,
            "nothing closed: no bump"
        );
    }

    #[test]
    fn device_key_change_kicks_only_sessions_signed_with_a_replaced_device_key() {
        let p = Presence::default();
        let (old_primary, k1) = with(&p, None, key(1));
        let (secondary, k2) = with(&p, None, key(2));
        let (via_policy, k3) = with(&p, Some("device"), key(1));
        let (module, k4) = with(&p, None, key(1));
        let (other, k5) = with(&p, None, key(1));
        p.register("d", old_primary.clone());
        p.register("d2", secondary);
        p.register("d3", via_policy);
        p.register("d/m", module);
        p.register("dx", other);
        // d's primary replaced by 9, secondary kept.
        assert_eq!(p.revoke_stale_device_keys("d", &[&key(9), &key(2)]), 2);
        assert!(k1.is_cancelled() && k4.is_cancelled());
        assert_eq!(
            old_primary.kick_reason(),
            Some(KickReason::CredentialsChanged)
        );
        assert!(!k5.is_cancelled(), "another device is untouched");
        assert_eq!(p.revoke_stale_device_keys("d2", &[&key(9), &key(2)]), 0);
        assert!(!k2.is_cancelled(), "the kept secondary key still holds");
        assert_eq!(p.revoke_stale_device_keys("d3", &[&key(9)]), 0);
        assert!(
            !k3.is_cancelled(),
            "a policy-signed session is not the device key's"
        );
    }

    #[test]
    fn policy_key_change_kicks_only_that_policys_stale_sessions() {
        let p = Presence::default();
        let (a, ka) = with(&p, Some("device"), key(1));
        let (b, kb) = with(&p, Some("device"), key(2));
        let (c, kc) = with(&p, Some("other"), key(1));
        let (d, kd) = with(&p, None, key(1));
        p.register("a", a);
        p.register("b", b);
        p.register("c", c);
        p.register("d", d);
        let before = p.credential_changes();
        assert_eq!(p.revoke_stale_policy_keys("device", &[&key(2), &key(3)]), 1);
        assert_eq!(
            p.credential_changes(),
            before + 1,
            "every change is counted"
        );
        assert!(ka.is_cancelled());
        assert!(!kb.is_cancelled() && !kc.is_cancelled() && !kd.is_cancelled());
    }

    #[test]
    fn revoke_kicks_device_and_modules_only() {
        let p = Presence::default();
        let (d, dk) = handle(&p);
        let (m, mk) = handle(&p);
        let (other, ok) = handle(&p);
        p.register("d", d);
        p.register("d/m", m);
        p.register("dx", other);
        p.revoke_device("d");
        assert_eq!(p.credential_changes(), 1);
        assert!(dk.is_cancelled() && mk.is_cancelled());
        assert!(!ok.is_cancelled());
    }
}
