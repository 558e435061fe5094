//! Throttling of failed authentication that never refuses a valid credential.
//!
//! Devices behind one NAT or corporate proxy share a source address, so an address is never
//! blocked as a whole. Every credential is checked, whatever its address did before: one that
//! verifies passes. What the throttle limits is the cost of failures (registry lookups, log
//! lines, records) and clients that retry in a tight loop. A failed attempt is held against:
//!
//! - **its identity at its address**, when the identity it claims exists (a device or module
//!   for MQTT, a shared access policy for REST) and its credential failed: wrong or expired
//!   signature, token for another identity, disabled device. Counted per (source address,
//!   identity); past [`ThrottleConfig::max_failures`] in a window, that identity's further
//!   failures from that address are answered "throttled" (CONNACK 3, 429) after
//!   [`ThrottleConfig::penalty`]. Other identities at the address, and the same identity with
//!   a valid credential, are untouched.
//! - **its address**, when no existing identity can be blamed: garbage, malformed tokens, a
//!   token for another hub, unknown devices or policies. Counted per source address; past
//!   [`ThrottleConfig::max_unknown`] in a window, such failures are answered "throttled" after
//!   the penalty, and the credential checks of that address run one at a time
//!   ([`AuthThrottle::admit`]), so a flood of CONNECTs for devices that do not exist costs at
//!   most one registry lookup at a time while valid devices there still get through.
//!
//! The penalty delays the answer to a throttled failure, never a check: a client that waits
//! for the answer before retrying (as SDKs and scripts do) is slowed to one attempt per
//! penalty, at the cost of one idle connection meanwhile, and nobody is refused for it.
//! Successes leave the counts alone: a client that shares a failing identity's address and
//! credential cannot reset the count for whoever keeps failing.
//! An address is an IPv4 address or an IPv6 /64 ([`source_key`]).
//! Throttled attempts are all counted (metrics), but logged and recorded only sparsely
//! ([`Verdict::is_reported`]). MQTT and REST each have their own throttle. Memory is bounded:
//! past [`MAX_ENTRIES`] tracked keys a map drops expired windows, and if all are live it is
//! cleared, which errs towards letting traffic through rather than growing.

mod window;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use window::Window;
pub use window::{REPORT_EVERY, Verdict};

/// Most keys each of the throttle's maps tracks (per identity, per address).
pub const MAX_ENTRIES: usize = 100_000;

/// Limits for [`AuthThrottle`].
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Failures allowed per identity per source address per window.
    pub max_failures: u32,
    /// Failures that name no existing identity allowed per source address per window.
    pub max_unknown: u32,
    /// The window.
    pub window: Duration,
    /// How long a throttled failure waits for its answer.
    pub penalty: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 20,
            max_unknown: 100,
            window: Duration::from_secs(60),
            penalty: Duration::from_secs(1),
        }
    }
}

/// Whom a failed attempt is held against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame<'a> {
    /// The identity it claimed, which exists (device or `device/module` client id, or a
    /// policy name).
    Identity(&'a str),
    /// Its source address: no existing identity can be blamed.
    Source,
}

impl Blame<'_> {
    /// `identity` or `source`, for metrics labels.
    pub fn label(self) -> &'static str {
        match self {
            Self::Identity(_) => "identity",
            Self::Source => "source",
        }
    }
}

/// An attempt's turn to have its credential checked: hold it during the check. From an
/// address past its budget of unknown-identity failures, one check runs at a time.
#[derive(Debug)]
pub struct Admission(Option<OwnedSemaphorePermit>);

impl Admission {
    /// True when the attempt waited its turn behind the other checks from its address.
    pub fn is_gated(&self) -> bool {
        self.0.is_some()
    }
}

#[derive(Debug)]
struct Source {
    unknown: Window,
    gate: Arc<Semaphore>,
}

#[derive(Debug, Default)]
struct State {
    // Keyed by a keyed hash of the identity, not the text: bounded size per entry.
    identities: HashMap<(IpAddr, u64), Window>,
    sources: HashMap<IpAddr, Source>,
}

/// Counts failed authentications per (address, identity) and per address; see the module
/// documentation. Cheap to clone (clones share their counts).
#[derive(Debug, Clone)]
pub struct AuthThrottle {
    config: ThrottleConfig,
    capacity: usize,
    hasher: RandomState,
    // std Mutex: the critical sections are hash lookups, never held across an await.
    state: Arc<Mutex<State>>,
}

/// Makes room for one more key: drops the entries `keep` rejects, and everything if that is
/// not enough.
fn make_room<K, V>(map: &mut HashMap<K, V>, capacity: usize, keep: impl Fn(&V) -> bool) {
    if map.len() >= capacity {
        map.retain(|_, v| keep(v));
        if map.len() >= capacity {
            map.clear();
        }
    }
}

/// The address a source is counted under: IPv4 as it is (an IPv4-mapped IPv6 address as
/// the IPv4 one), IPv6 by its /64, since a single IPv6 host usually owns a whole /64 and
/// could otherwise start afresh from each of its addresses.
pub fn source_key(source: IpAddr) -> IpAddr {
    match source.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

impl AuthThrottle {
    /// A throttle with these limits.
    pub fn new(config: ThrottleConfig) -> Self {
        Self::with_capacity(config, MAX_ENTRIES)
    }

    fn with_capacity(config: ThrottleConfig, capacity: usize) -> Self {
        Self {
            config,
            capacity,
            hasher: RandomState::new(),
            state: Arc::default(),
        }
    }

    /// The limits.
    pub fn config(&self) -> ThrottleConfig {
        self.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&self, source: IpAddr, identity: &str) -> (IpAddr, u64) {
        (source_key(source), self.hasher.hash_one(identity))
    }

    /// Waits for the attempt's turn to be checked. Immediate, unless `source` is past its
    /// budget of unknown-identity failures: then its checks run one at a time. Never refuses.
    pub async fn admit(&self, source: IpAddr) -> Admission {
        let gate = {
            let (now, c) = (Instant::now(), self.config);
            let state = self.state();
            state
                .sources
                .get(&source_key(source))
                .filter(|s| s.unknown.is_full(now, c.window, c.max_unknown))
                .map(|s| s.gate.clone())
        };
        match gate {
            // The semaphore is never closed, so acquiring only waits.
            Some(gate) => Admission(gate.acquire_owned().await.ok()),
            None => Admission(None),
        }
    }

    /// Counts a failed attempt from `source` against `blame` and says how to answer it.
    pub fn record_failure(&self, source: IpAddr, blame: Blame<'_>) -> Verdict {
        let (now, c, capacity) = (Instant::now(), self.config, self.capacity);
        let mut state = self.state();
        match blame {
            Blame::Identity(identity) => {
                let key = self.key(source, identity);
                let map = &mut state.identities;
                if !map.contains_key(&key) {
                    make_room(map, capacity, |w| w.is_live(now, c.window));
                }
                map.entry(key).or_insert_with(|| Window::new(now)).fail(
                    now,
                    c.window,
                    c.max_failures,
                )
            }
            Blame::Source => {
                let source = source_key(source);
                let map = &mut state.sources;
                if !map.contains_key(&source) {
                    make_room(map, capacity, |s| s.unknown.is_live(now, c.window));
                }
                map.entry(source)
                    .or_insert_with(|| Source {
                        unknown: Window::new(now),
                        gate: Arc::new(Semaphore::new(1)),
                    })
                    .unknown
                    .fail(now, c.window, c.max_unknown)
            }
        }
    }

    /// Waits [`ThrottleConfig::penalty`] when `verdict` is throttled, else returns at once.
    /// Callers answer the attempt after it.
    pub async fn penalize(&self, verdict: Verdict) {
        if verdict.is_throttled() {
            tokio::time::sleep(self.config.penalty).await;
        }
    }

    /// True when a failure from `source` blamed on `blame` would now be answered "throttled".
    pub fn is_throttled(&self, source: IpAddr, blame: Blame<'_>) -> bool {
        let (now, c) = (Instant::now(), self.config);
        let state = self.state();
        match blame {
            Blame::Identity(identity) => state
                .identities
                .get(&self.key(source, identity))
                .is_some_and(|w| w.is_full(now, c.window, c.max_failures)),
            Blame::Source => state
                .sources
                .get(&source_key(source))
                .is_some_and(|s| s.unknown.is_full(now, c.window, c.max_unknown)),
        }
    }
}

#[cfg(test)]
mod tests;
