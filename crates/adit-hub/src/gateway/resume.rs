//! Resume credentials of streams that carry the Adit stream protocol (`adit.stream.v1`).
//!
//! Each half of such a stream gets, in its upgrade response, a resume token
//! ([`RESUME_TOKEN`]) bound to the stream and its role, and the grace ([`RESUME_GRACE`]) for
//! which the gateway keeps the other half parked if this one drops. Joining the stream's URL
//! again with that token reattaches the half to the running relay; the response to that
//! carries the next token. A token stays good until its successor is used: an attach whose
//! upgrade response was lost (the half never saw the new token) can be made again with the
//! old one, and once the half uses the new token, the old one is refused. The tokens live in
//! memory on the node that runs the relay, the one the stream's URL names; a hub restart
//! forgets them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::HeaderName;
use subtle::ConstantTimeEq as _;
use tokio::sync::mpsc;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_websockets::WebSocketStream;

use super::{Refused, Role, new_token};
use crate::server::ConnectionSlot;

/// Response header with the bearer token for this half's next attach (Adit's own).
pub const RESUME_TOKEN: HeaderName = HeaderName::from_static("adit-resume-token");

/// Response header with the grace, in whole seconds, for which the other half is kept
/// parked after this one drops (Adit's own).
pub const RESUME_GRACE: HeaderName = HeaderName::from_static("adit-resume-grace");

/// A half that came back, handed to the relay that runs its stream.
pub struct Reattached<S = TokioIo<Upgraded>> {
    /// Which half.
    pub role: Role,
    /// Its new WebSocket.
    pub ws: WebSocketStream<S>,
    /// Its connection's place under `--max-connections`.
    pub slot: Option<ConnectionSlot>,
}

/// One role's credentials.
struct RoleTokens {
    /// Good until `next` is used.
    current: String,
    /// Handed out with the last attach, not yet used.
    next: Option<String>,
}

struct Entry {
    tokens: [RoleTokens; 2],
    relay: mpsc::Sender<Reattached>,
}

/// The running resumable streams, by stream id.
#[derive(Clone, Default)]
pub struct ResumeTable {
    // std Mutex: map operations only, never held across an await.
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl ResumeTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a relay that starts now with the halves' current resume tokens (device,
    /// service); what comes back for it arrives on the returned receiver.
    pub fn register(&self, stream_id: &str, tokens: [String; 2]) -> mpsc::Receiver<Reattached> {
        let (relay, rx) = mpsc::channel(2);
        let tokens = tokens.map(|current| RoleTokens {
            current,
            next: None,
        });
        self.lock()
            .insert(stream_id.to_string(), Entry { tokens, relay });
        rx
    }

    /// Forgets a relay that ended: its tokens are refused from now on.
    pub fn remove(&self, stream_id: &str) {
        self.lock().remove(stream_id);
    }

    /// Checks `token` for `role` of `stream_id` (constant-time): the current token, or the
    /// one handed out with the last attach, which then becomes current. Returns a new next
    /// token and where to hand the half once upgraded.
    ///
    /// # Errors
    /// [`Refused::UnknownStream`] when no such stream runs here; [`Refused::BadToken`] for
    /// any other token, including one whose successor was used.
    pub fn admit(
        &self,
        stream_id: &str,
        role: Role,
        token: &str,
    ) -> Result<(String, mpsc::Sender<Reattached>), Refused> {
        let mut map = self.lock();
        let entry = map.get_mut(stream_id).ok_or(Refused::UnknownStream)?;
        let tokens = &mut entry.tokens[role.index()];
        let is_current = bool::from(tokens.current.as_bytes().ct_eq(token.as_bytes()));
        let is_next = tokens
            .next
            .as_ref()
            .is_some_and(|n| bool::from(n.as_bytes().ct_eq(token.as_bytes())));
        if !(is_current || is_next) {
            return Err(Refused::BadToken);
        }
        if is_next && let Some(used) = tokens.next.take() {
            tokens.current = used;
        }
        let next = new_token();
        tokens.next = Some(next.clone());
        Ok((next, entry.relay.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_token_is_good_until_its_successor_is_used_and_for_its_role_only() {
        let table = ResumeTable::default();
        let _rx = table.register("s", ["dev".into(), "svc".into()]);
        assert!(matches!(
            table.admit("s", Role::Service, "dev"),
            Err(Refused::BadToken)
        ));
        let (lost, _) = table.admit("s", Role::Device, "dev").expect("first use");
        // The upgrade response carrying `lost` never arrived: the old token still works.
        let (next, _) = table.admit("s", Role::Device, "dev").expect("retried");
        assert!(
            matches!(
                table.admit("s", Role::Device, &lost),
                Err(Refused::BadToken)
            ),
            "a successor replaced by a newer one is void"
        );
        let (after, _) = table
            .admit("s", Role::Device, &next)
            .expect("the new token");
        assert!(
            matches!(
                table.admit("s", Role::Device, "dev"),
                Err(Refused::BadToken)
            ),
            "once the successor was used, the old token is void"
        );
        assert!(
            table.admit("s", Role::Device, &next).is_ok(),
            "still current until `after` is used"
        );
        let _ = after;
        table.remove("s");
        assert!(matches!(
            table.admit("s", Role::Service, "svc"),
            Err(Refused::UnknownStream)
        ));
    }
}
