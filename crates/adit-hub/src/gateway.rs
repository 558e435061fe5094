//! The streaming gateway: the data plane. Both halves of a stream (device and service) open a
//! WebSocket to `/bridges/{streamId}/{role}` with `Authorization: Bearer {token}`; once both are
//! there, binary frames are relayed both ways until either side closes.
//!
//! The gateway knows nothing of MQTT or of how a stream was requested. The orchestrator
//! ([`crate::streams`]) opens a rendezvous with [`Gateway::open`], hands out the URLs and
//! tokens, and learns how the stream ended from the [`RelayOutcome`] it gets back.
//!
//! Tokens are 256 random bits, bound to one stream and one role, usable once, and only until
//! the handshake deadline. They live in memory on the node that runs the rendezvous.

mod close_frame;
mod liveness;
mod lone_half;
pub mod relay;
mod resumable_relay;
mod resume;
mod traffic;
mod upgrade;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::SinkExt as _;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_websockets::WebSocketStream;

use crate::server::ConnectionSlot;

pub use liveness::Keepalive;
pub use relay::{ClosedBy, EndReason, RelayOutcome};
pub use resume::{RESUME_GRACE, RESUME_TOKEN};
pub use traffic::{RATE_WINDOW, Traffic, TrafficReading};
pub use upgrade::router;

/// A gateway WebSocket as the hub holds it.
pub type WsConn = WebSocketStream<TokioIo<Upgraded>>;

/// Which half of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The device side.
    Device,
    /// The service side.
    Service,
}

impl Role {
    /// The path segment: `device` or `service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Service => "service",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "device" => Some(Self::Device),
            "service" => Some(Self::Service),
            _ => None,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Device => 0,
            Self::Service => 1,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Largest WebSocket frame payload relayed (Azure's SDKs send up to 64 KiB).
    pub max_frame: usize,
    /// Pings to both halves of every stream, and the pong deadline.
    pub keepalive: Keepalive,
    /// How long a stream carrying the Adit stream protocol waits for a half that dropped to
    /// come back (`--resume-grace`). Raw streams end when either half drops.
    pub resume_grace: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_frame: 1024 * 1024,
            keepalive: Keepalive::default(),
            resume_grace: Duration::from_secs(60),
        }
    }
}

/// What the orchestrator gets for a new rendezvous.
#[derive(Debug)]
pub struct Rendezvous {
    /// Bearer token for the device half.
    pub device_token: String,
    /// Bearer token for the service half.
    pub service_token: String,
    /// Resolves when the stream ends (or its handshake fails).
    pub outcome: oneshot::Receiver<RelayOutcome>,
    /// What its relay carries, readable while it runs.
    pub traffic: Traffic,
}

/// What the two halves of a stream speak inside it, known once both are there.
enum Mode {
    /// Raw bytes, relayed as Azure's gateway does.
    Raw,
    /// The Adit stream protocol: resumable; halves that come back arrive here.
    Adit(mpsc::Receiver<resume::Reattached>),
    /// One half offered the Adit protocol and the other did not: a client's bug.
    Mismatch,
}

/// The other half, handed to the half that arrived first.
struct Peer {
    ws: WsConn,
    mode: Mode,
    // Its connection's place under --max-connections, held for as long as the relay runs.
    slot: Option<ConnectionSlot>,
    outcome: Option<oneshot::Sender<RelayOutcome>>,
    revoked: CancellationToken,
    traffic: Traffic,
    arrived: Instant,
}

struct Pending {
    tokens: [String; 2],
    used: [bool; 2],
    /// The service asked for the Adit stream protocol.
    asked: bool,
    /// Each half's resume token, once it was admitted offering that protocol.
    resume_tokens: [Option<String>; 2],
    deadline: Instant,
    waiting: Option<(Role, oneshot::Sender<Peer>)>,
    outcome: Option<oneshot::Sender<RelayOutcome>>,
    revoked: CancellationToken,
    traffic: Traffic,
}

/// The rendezvous table and the relay tasks.
#[derive(Clone)]
pub struct Gateway {
    // std Mutex: map operations only, never held across an await.
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    config: GatewayConfig,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    metrics: crate::metrics::Metrics,
    resume: resume::ResumeTable,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What an admitted half is told in its upgrade response, and where it goes.
pub(crate) struct Admitted {
    /// It speaks the Adit stream protocol: the response names `adit.stream.v1`.
    adit: bool,
    /// Its token for coming back (the response's `adit-resume-token`).
    resume_token: Option<String>,
    /// For a half coming back: the relay it rejoins.
    returning: Option<mpsc::Sender<resume::Reattached>>,
}

/// Why a half was refused at the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No such stream, or its handshake is over.
    UnknownStream,
    /// The token is not this stream's token for this role.
    BadToken,
    /// The token was used already.
    Reused,
    /// The handshake deadline passed.
    Expired,
}

impl Refused {
    /// A short label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::UnknownStream => "unknown_stream",
            Self::BadToken => "bad_token",
            Self::Reused => "reused",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownStream => "no such stream (or its handshake is over)",
            Self::BadToken => "token is not valid for this stream and role",
            Self::Reused => "token was already used",
            Self::Expired => "stream handshake deadline has passed",
        })
    }
}

impl Gateway {
    /// A gateway whose tasks run on `tracker`; `shutdown` closes every stream (the hub
    /// cancels it when its shutdown grace is over).
    pub fn new(
        config: GatewayConfig,
        tracker: TaskTracker,
        shutdown: CancellationToken,
        metrics: crate::metrics::Metrics,
    ) -> Self {
        Self {
            pending: Arc::default(),
            config,
            tracker,
            shutdown,
            metrics,
            resume: resume::ResumeTable::default(),
        }
    }

    /// Resolves when the hub's shutdown grace is over and every stream is being closed.
    pub fn aborted(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.shutdown.cancelled()
    }

    /// Settings.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Opens a rendezvous for `stream_id` that both halves must join before `deadline`.
    /// Cancelling `revoked` ends the stream (its device was disabled or deleted). With
    /// `adit_protocol` (the service asked for `adit.stream.v1`), halves that offer that
    /// subprotocol get it, and a stream whose halves both did is resumable.
    pub fn open(
        &self,
        stream_id: &str,
        deadline: Instant,
        revoked: CancellationToken,
        adit_protocol: bool,
    ) -> Rendezvous {
        let (tx, rx) = oneshot::channel();
        let (device_token, service_token) = (new_token(), new_token());
        let traffic = Traffic::new();
        self.lock().insert(
            stream_id.to_string(),
            Pending {
                tokens: [device_token.clone(), service_token.clone()],
                used: [false, false],
                asked: adit_protocol,
                resume_tokens: [None, None],
                deadline,
                waiting: None,
                outcome: Some(tx),
                revoked,
                traffic: traffic.clone(),
            },
        );
        Rendezvous {
            device_token,
            service_token,
            outcome: rx,
            traffic,
        }
    }

    /// Drops a rendezvous that will not happen (rejected, timed out). A half already waiting
    /// sees its peer channel close and closes its WebSocket.
    pub fn cancel(&self, stream_id: &str) {
        self.lock().remove(stream_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks a half's token and marks it used (constant-time comparison); `offers_adit`:
    /// it offered the `adit.stream.v1` subprotocol. A token for a stream past its handshake
    /// is checked as a resume token.
    fn admit(
        &self,
        stream_id: &str,
        role: Role,
        token: &str,
        offers_adit: bool,
    ) -> Result<Admitted, Refused> {
        let mut map = self.lock();
        let Some(pending) = map.get_mut(stream_id) else {
            drop(map);
            if !offers_adit {
                return Err(Refused::UnknownStream);
            }
            let (next, relay) = self.resume.admit(stream_id, role, token)?;
            return Ok(Admitted {
                adit: true,
                resume_token: Some(next),
                returning: Some(relay),
            });
        };
        let expected = pending.tokens[role.index()].as_bytes();
        if !bool::from(expected.ct_eq(token.as_bytes())) {
            return Err(Refused::BadToken);
        }
        if pending.used[role.index()] {
            return Err(Refused::Reused);
        }
        if Instant::now() >= pending.deadline {
            return Err(Refused::Expired);
        }
        pending.used[role.index()] = true;
        let adit = pending.asked && offers_adit;
        let resume_token = adit.then(new_token);
        pending.resume_tokens[role.index()] = resume_token.clone();
        Ok(Admitted {
            adit,
            resume_token,
            returning: None,
        })
    }

    /// Runs one admitted half: meets the other, then relays (or gives up at the deadline).
    async fn join(self, stream_id: String, role: Role, ws: WsConn, slot: Option<ConnectionSlot>) {
        let arrived = Instant::now();
        let joined = {
            let mut map = self.lock();
            match map.get_mut(&stream_id) {
                None => None,
                Some(p) => match p.waiting.take() {
                    Some((_, to_first)) => {
                        let outcome = p.outcome.take();
                        let revoked = p.revoked.clone();
                        let traffic = p.traffic.clone();
                        // Registered before the rendezvous goes, so a half that drops at
                        // once can already come back.
                        let mode = match &p.resume_tokens {
                            [Some(d), Some(s)] => {
                                Mode::Adit(self.resume.register(&stream_id, [d.clone(), s.clone()]))
                            }
                            [None, None] => Mode::Raw,
                            _ => Mode::Mismatch,
                        };
                        map.remove(&stream_id);
                        Some(Err((to_first, outcome, revoked, traffic, mode)))
                    }
                    None => {
                        let (tx, rx) = oneshot::channel();
                        p.waiting = Some((role, tx));
                        Some(Ok((rx, p.deadline)))
                    }
                },
            }
        };
        match joined {
            // Cancelled between admission and upgrade.
            None => relay::refuse(ws, "stream cancelled").await,
            // Second to arrive: hand the socket to the first, whose task relays.
            Some(Err((to_first, outcome, revoked, traffic, mode))) => {
                if let Err(peer) = to_first.send(Peer {
                    ws,
                    mode,
                    slot,
                    outcome,
                    revoked,
                    traffic,
                    arrived,
                }) {
                    self.resume.remove(&stream_id);
                    relay::refuse(peer.ws, "peer left").await;
                }
            }
            // First to arrive: wait for the peer until the deadline, reading this half
            // meanwhile (see `lone_half`).
            Some(Ok((mut from_second, deadline))) => {
                let mut ws = ws;
                let mut held = VecDeque::new();
                let waited = tokio::select! {
                    p = &mut from_second => p.map_err(|_| Unpaired::Deadline),
                    () = tokio::time::sleep_until(deadline) => Err(Unpaired::Deadline),
                    () = self.shutdown.cancelled() => Err(Unpaired::HubStopping),
                    left = lone_half::watch(&mut ws, &mut held) => Err(Unpaired::Left(left)),
                };
                let peer = match waited {
                    Ok(peer) => peer,
                    Err(Unpaired::Left(left)) => {
                        self.lone_half_left(&stream_id, role, from_second, ws, left)
                            .await;
                        return;
                    }
                    Err(unpaired) => {
                        let outcome = self
                            .lock()
                            .remove(&stream_id)
                            .and_then(|mut p| p.outcome.take());
                        let (ended, why) = if matches!(unpaired, Unpaired::HubStopping) {
                            (
                                RelayOutcome::hub_shutdown_in_handshake(),
                                "hub shutting down",
                            )
                        } else {
                            (
                                RelayOutcome::handshake_failed(Some(role)),
                                "stream handshake deadline passed",
                            )
                        };
                        if let Some(tx) = outcome {
                            let _ = tx.send(ended);
                        }
                        relay::refuse(ws, why).await;
                        return;
                    }
                };
                let paired_at = peer.arrived.max(arrived);
                let Peer {
                    ws: peer_ws,
                    mode,
                    slot: peer_slot,
                    outcome: to_report,
                    revoked,
                    traffic,
                    ..
                } = peer;
                let ((device, device_slot), (service, service_slot)) = match role {
                    Role::Device => ((ws, slot), (peer_ws, peer_slot)),
                    Role::Service => ((peer_ws, peer_slot), (ws, slot)),
                };
                let outcome = match mode {
                    Mode::Raw => {
                        let outcome = relay::run(
                            device,
                            service,
                            (role, held),
                            paired_at,
                            self.config.keepalive,
                            &traffic,
                            &self.shutdown,
                            &revoked,
                        )
                        .await;
                        drop((device_slot, service_slot));
                        outcome
                    }
                    Mode::Adit(returning) => {
                        let outcome = resumable_relay::run(
                            resumable_relay::Leg {
                                ws: device,
                                slot: device_slot,
                            },
                            resumable_relay::Leg {
                                ws: service,
                                slot: service_slot,
                            },
                            (role, held),
                            paired_at,
                            returning,
                            resumable_relay::ResumeSettings {
                                keepalive: self.config.keepalive,
                                grace: self.config.resume_grace,
                            },
                            traffic,
                            &self.shutdown,
                            &revoked,
                        )
                        .await;
                        self.resume.remove(&stream_id);
                        outcome
                    }
                    Mode::Mismatch => {
                        let why =
                            "one half of the stream offered adit.stream.v1 and the other did not";
                        tracing::info!(stream = %stream_id, "{why}; closing both");
                        futures_util::future::join(
                            relay::refuse(device, why),
                            relay::refuse(service, why),
                        )
                        .await;
                        RelayOutcome::protocol_mismatch()
                    }
                };
                tracing::debug!(
                    stream = %stream_id,
                    established = outcome.established,
                    closed_by = outcome.closed_by.as_str(),
                    reason = outcome.reason.as_str(),
                    close_code = outcome.close_code,
                    bytes_d2s = outcome.bytes_device_to_service,
                    bytes_s2d = outcome.bytes_service_to_device,
                    "relay ended"
                );
                if let Some(tx) = to_report {
                    let _ = tx.send(outcome);
                }
            }
        }
    }
}

/// Why the first half to arrive stopped waiting without a peer.
enum Unpaired {
    /// The handshake deadline passed (or the rendezvous was cancelled).
    Deadline,
    /// The hub is shutting down.
    HubStopping,
    /// The half itself closed or dropped.
    Left(lone_half::Left),
}

impl Gateway {
    /// Ends a stream whose first half left before its peer arrived: the rendezvous is closed
    /// now (a later peer is refused as for an unknown stream), and the record says who left
    /// and how. A peer that arrived at the same moment is closed as the relay would close it.
    async fn lone_half_left(
        &self,
        stream_id: &str,
        role: Role,
        from_second: oneshot::Receiver<Peer>,
        mut ws: WsConn,
        left: lone_half::Left,
    ) {
        tracing::debug!(
            stream = %stream_id,
            %role,
            reason = left.reason.as_str(),
            "stream half left before its peer arrived"
        );
        let removed = self.lock().remove(stream_id);
        let outcome = match removed {
            Some(mut pending) => pending.outcome.take(),
            // The peer took the rendezvous as this half left: it is on its way.
            None => match from_second.await {
                Ok(peer) => {
                    relay::close_left_peer(peer.ws, role, &left).await;
                    peer.outcome
                }
                Err(_) => None,
            },
        };
        if let Some(tx) = outcome {
            let _ = tx.send(RelayOutcome::left_before_pairing(role, &left));
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            let refused = left.to_sender.is_some();
            if let Some(close) = left.to_sender {
                let _ = ws.send(close).await;
            }
            let _ = ws.close().await;
            // Refused mid-message (1009): it is still sending; linger so the Close reaches it.
            if refused {
                adit_transport::lingering_close::lingering_close(ws.get_mut()).await;
            }
        })
        .await;
    }
}

/// A deadline `timeout` from now.
pub fn deadline_in(timeout: Duration) -> Instant {
    Instant::now() + timeout
}
