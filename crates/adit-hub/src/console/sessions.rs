//! Console sessions and one-time sign-in links, held in this node's memory.
//!
//! A session is a random 256-bit id in the `__Host-adit_console` cookie, bound to the policy that
//! signed in and the key it proved (so replacing that key ends it). It lasts
//! [`SESSION_IDLE`] without use and [`SESSION_MAX`] at most. A sign-in link's token is good
//! once, for [`LINK_LIFETIME`]. Both are forgotten when they expire; neither is ever logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adit_proto::Key;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::time::Instant;

/// A session unused this long is over.
pub const SESSION_IDLE: Duration = Duration::from_secs(60 * 60);
/// No session outlives this, used or not.
pub const SESSION_MAX: Duration = Duration::from_secs(8 * 60 * 60);
/// A sign-in link is good this long after it was made.
pub const LINK_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Most sessions and links held at once; past it the oldest session goes first.
const MAX_SESSIONS: usize = 10_000;
/// Most sessions one policy holds at once; past it that policy's oldest goes first, so one
/// policy's sign-ins (a script, a leaked read-only key) cannot push out everyone else's.
pub const MAX_SESSIONS_PER_POLICY: usize = 100;

/// The shortest a sign-in link may last: a token that expires sooner makes none (a link that
/// dies before anyone can open it is no use).
pub const LINK_MIN: Duration = Duration::from_secs(30);

/// Why no sign-in link was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefused {
    /// The token that asked expires within [`LINK_MIN`].
    TokenExpiring,
    /// Too many links wait to be used, in all or of this policy.
    Full,
}

/// Who a session or link signs in: the policy and the key that proved it.
#[derive(Clone)]
pub struct Grant {
    /// The shared access policy.
    pub policy: String,
    /// The key the caller proved: the session ends when the policy no longer holds it.
    pub key: Key,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

struct Session {
    grant: Grant,
    created: Instant,
    last_used: Instant,
}

struct Link {
    grant: Grant,
    expires: Instant,
}

/// This node's console sessions and sign-in links.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    links: HashMap<String, Link>,
}

/// A fresh 256-bit random token, base64url without padding (43 characters).
fn token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session for `grant`; returns its id (the cookie's value).
    pub fn start(&self, grant: Grant) -> String {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.expire(now);
        let oldest = |inner: &Inner, of_policy: bool| {
            inner
                .sessions
                .iter()
                .filter(|(_, s)| !of_policy || s.grant.policy == grant.policy)
                .min_by_key(|(_, s)| s.created)
                .map(|(id, _)| id.clone())
        };
        let held = inner
            .sessions
            .values()
            .filter(|s| s.grant.policy == grant.policy)
            .count();
        let evict = if held >= MAX_SESSIONS_PER_POLICY {
            oldest(&inner, true)
        } else if inner.sessions.len() >= MAX_SESSIONS {
            oldest(&inner, false)
        } else {
            None
        };
        if let Some(id) = evict {
            inner.sessions.remove(&id);
        }
        let id = token();
        inner.sessions.insert(
            id.clone(),
            Session {
                grant,
                created: now,
                last_used: now,
            },
        );
        id
    }

    /// The session `id`'s grant and when it ends, if it is still valid; marks it used.
    pub fn touch(&self, id: &str) -> Option<(Grant, Instant)> {
        let now = Instant::now();
        let mut inner = self.lock();
        let s = inner.sessions.get_mut(id)?;
        if s.ends() <= now {
            inner.sessions.remove(id);
            return None;
        }
        s.last_used = now;
        Some((s.grant.clone(), s.ends()))
    }

    /// Whether session `id` is still valid, without counting this as a use (for what runs on
    /// after the request that started it: the live feed, a terminal).
    pub fn is_valid(&self, id: &str) -> bool {
        let now = Instant::now();
        self.lock().sessions.get(id).is_some_and(|s| s.ends() > now)
    }

    /// Ends session `id` (signing out).
    pub fn end(&self, id: &str) {
        self.lock().sessions.remove(id);
    }

    /// A one-time sign-in token for `grant` and how long it is good for: [`LINK_LIFETIME`],
    /// or `within` when that is sooner (the credential that asked for it expires then: a link
    /// outlives nothing it was made from). Refused when that is under [`LINK_MIN`], or while
    /// [`MAX_SESSIONS`] links, or [`MAX_SESSIONS_PER_POLICY`] of this policy's, wait to be used.
    pub fn link(&self, grant: Grant, within: Duration) -> Result<(String, Duration), LinkRefused> {
        let lifetime = LINK_LIFETIME.min(within);
        if lifetime < LINK_MIN {
            return Err(LinkRefused::TokenExpiring);
        }
        let now = Instant::now();
        let mut inner = self.lock();
        inner.expire(now);
        let policys = inner
            .links
            .values()
            .filter(|l| l.grant.policy == grant.policy)
            .count();
        if inner.links.len() >= MAX_SESSIONS || policys >= MAX_SESSIONS_PER_POLICY {
            return Err(LinkRefused::Full);
        }
        let t = token();
        inner.links.insert(
            t.clone(),
            Link {
                grant,
                expires: now + lifetime,
            },
        );
        Ok((t, lifetime))
    }

    /// Uses sign-in token `t`: its grant, once, if it has not expired.
    pub fn redeem(&self, t: &str) -> Option<Grant> {
        let now = Instant::now();
        let link = self.lock().links.remove(t)?;
        (now < link.expires).then_some(link.grant)
    }
}

impl Session {
    /// When it ends if it is not used again.
    fn ends(&self) -> Instant {
        (self.last_used + SESSION_IDLE).min(self.created + SESSION_MAX)
    }
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        self.sessions.retain(|_, s| s.ends() > now);
        self.links.retain(|_, l| l.expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            policy: "iothubowner".into(),
            key: Key::from_bytes(&[7; 32]).expect("key"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_ends_after_an_hour_unused() {
        let s = Sessions::default();
        let id = s.start(grant());
        assert_eq!(id.len(), 43);
        tokio::time::advance(SESSION_IDLE - Duration::from_millis(1)).await;
        assert!(s.touch(&id).is_some(), "used just before the idle limit");
        tokio::time::advance(SESSION_IDLE - Duration::from_millis(1)).await;
        assert!(s.touch(&id).is_some(), "each use restarts the idle clock");
        tokio::time::advance(SESSION_IDLE).await;
        assert!(s.touch(&id).is_none(), "an hour unused: over");
        assert!(s.touch(&id).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn no_session_outlives_eight_hours_however_used() {
        let s = Sessions::default();
        let id = s.start(grant());
        let start = Instant::now();
        while start.elapsed() < SESSION_MAX - Duration::from_secs(30 * 60) {
            tokio::time::advance(Duration::from_secs(30 * 60)).await;
            assert!(s.touch(&id).is_some());
        }
        let (_, ends) = s.touch(&id).expect("still on");
        assert_eq!(ends, start + SESSION_MAX);
        tokio::time::advance(ends - Instant::now() - Duration::from_millis(1)).await;
        assert!(s.touch(&id).is_some(), "just before the limit");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(s.touch(&id).is_none(), "at the limit");
    }

    #[tokio::test(start_paused = true)]
    async fn a_sign_in_link_works_once_and_within_five_minutes() {
        let s = Sessions::default();
        let (t, lifetime) = s.link(grant(), Duration::MAX).expect("room");
        assert_eq!(lifetime, LINK_LIFETIME);
        assert_eq!(s.redeem(&t).map(|g| g.policy), Some("iothubowner".into()));
        assert!(s.redeem(&t).is_none(), "once");
        let (late, _) = s.link(grant(), Duration::MAX).expect("room");
        let (just, _) = s.link(grant(), Duration::MAX).expect("room");
        tokio::time::advance(LINK_LIFETIME - Duration::from_millis(1)).await;
        assert!(s.redeem(&just).is_some(), "just before it expires");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(s.redeem(&late).is_none(), "at five minutes");
        assert!(s.redeem("not-a-token").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_link_made_with_a_token_ends_when_the_token_does() {
        let s = Sessions::default();
        let within = Duration::from_secs(90);
        let (t, lifetime) = s.link(grant(), within).expect("room");
        assert_eq!(lifetime, within);
        let (other, _) = s.link(grant(), within).expect("room");
        tokio::time::advance(within - Duration::from_millis(1)).await;
        assert!(s.redeem(&other).is_some(), "just before the token's expiry");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(s.redeem(&t).is_none(), "at the token's expiry");
    }

    #[tokio::test(start_paused = true)]
    async fn links_need_a_token_with_time_left_and_one_policy_cannot_take_every_slot() {
        let s = Sessions::default();
        assert_eq!(
            s.link(grant(), LINK_MIN - Duration::from_millis(1))
                .map(|_| ()),
            Err(LinkRefused::TokenExpiring)
        );
        assert!(s.link(grant(), LINK_MIN).is_ok(), "at the minimum");
        for _ in 1..MAX_SESSIONS_PER_POLICY {
            s.link(grant(), Duration::MAX).expect("room");
        }
        assert_eq!(
            s.link(grant(), Duration::MAX).map(|_| ()),
            Err(LinkRefused::Full)
        );
        let other = Grant {
            policy: "service".into(),
            ..grant()
        };
        assert!(
            s.link(other, Duration::MAX).is_ok(),
            "another policy still can"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_policys_sessions_push_out_only_its_own_oldest() {
        let s = Sessions::default();
        let other = s.start(Grant {
            policy: "service".into(),
            ..grant()
        });
        let first = s.start(grant());
        tokio::time::advance(Duration::from_millis(1)).await;
        let mut kept = Vec::new();
        for _ in 1..MAX_SESSIONS_PER_POLICY {
            kept.push(s.start(grant()));
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert!(s.is_valid(&first), "at the quota, not past it");
        let newest = s.start(grant());
        assert!(!s.is_valid(&first), "past the quota its oldest goes");
        assert!(s.is_valid(&newest));
        assert!(kept.iter().all(|id| s.is_valid(id)));
        assert!(s.is_valid(&other), "another policy's session stays");
    }

    #[test]
    fn ended_sessions_are_gone_and_grants_never_print_their_key() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let s = Sessions::default();
            let id = s.start(grant());
            assert!(s.is_valid(&id));
            s.end(&id);
            assert!(s.touch(&id).is_none());
            assert!(!s.is_valid(&id));
        });
        let printed = format!("{:?}", grant());
        assert!(!printed.contains("BwcH"), "{printed}");
        assert!(printed.contains("iothubowner"));
    }
}
