//! Relaying a stream that carries the Adit stream protocol (`adit.stream.v1`,
//! `docs/stream-protocol.md`): as [`relay`](super::relay) does, except that a leg that drops
//! (its connection ends without a Close, or it stops answering pings) does not end the stream.
//! The other half is parked for the grace: it is still read, so it keeps answering pings, and
//! what it sends meanwhile is dropped, since its side keeps every byte until the peer
//! acknowledges it. The half that dropped comes back with its resume token
//! ([`resume`](super::resume)); from then on the parked half's messages are dropped until its
//! RESUMED (or, should it have reattached meanwhile, its RESUME) passes, so the returning
//! side sees nothing older than the position it asked for.
//! Both sides replay from each other's position, and no byte is lost or repeated.
//!
//! The gateway relies on two rules of the protocol: every message carries whole frames, and
//! RESUME and RESUMED travel alone in their message. It reads nothing else of what it relays;
//! telling an answer to an earlier attempt from the right one is the sides' work (the attach
//! number both carry).
//!
//! Each leg runs as a reader task and a writer task; the reader sends straight to the other
//! leg's writer through a route this task swaps when a leg comes back, so the two directions
//! never wait for each other.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adit_stream_protocol::frame::{self, Frame};
use bytes::BytesMut;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_websockets::{CloseCode, Message, WebSocketStream};

use super::Role;
use super::close_frame;
use super::liveness::{self, Activity, Keepalive};
use super::relay::{ClosedBy, End, EndReason, RelayOutcome, Step, classify};
use super::resume::Reattached;
use super::traffic::Traffic;
use crate::server::ConnectionSlot;

/// Messages queued for a leg's writer before its senders wait.
const WRITER_QUEUE: usize = 8;

/// How long closing both legs at the end may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// One half as the relay gets it.
pub struct Leg<S> {
    /// Its WebSocket.
    pub ws: WebSocketStream<S>,
    /// Its connection's place under `--max-connections`, held while it is attached.
    pub slot: Option<ConnectionSlot>,
}

/// Where a leg's messages go: the other leg's writer, while it is attached.
#[derive(Default)]
struct Route {
    to: Option<mpsc::Sender<Message>>,
    /// Set when the destination just came back: messages are dropped until the sender's
    /// RESUMED (its answer) or RESUME (it came back too, which answers as well).
    awaiting_resume: bool,
}

/// How a leg ended, as its tasks report it.
#[derive(Debug)]
enum LegEnd {
    /// It sent a Close.
    Closed(Option<CloseCode>, String),
    /// Its connection ended without one, or a write to it failed.
    Dropped,
    /// It answered no ping in time.
    Unresponsive,
    /// It broke the WebSocket rules or went over the frame limit (not resumable).
    Invalid(CloseCode, String),
}

enum LegEvent {
    Ended {
        role: Role,
        epoch: u64,
        how: LegEnd,
    },
    /// It sent the zero-length end-of-input message: the session is ending, and a drop
    /// from now on ends the stream instead of parking it.
    EndOfInput {
        role: Role,
        epoch: u64,
    },
}

struct Attached {
    epoch: u64,
    writer: mpsc::Sender<Message>,
    /// Its reader and writer, aborted when the leg is dropped.
    tasks: JoinSet<()>,
    _slot: Option<ConnectionSlot>,
}

/// Settings of one resumable relay.
#[derive(Debug, Clone, Copy)]
pub struct ResumeSettings {
    /// Pings to each leg, and the pong deadline.
    pub keepalive: Keepalive,
    /// How long a dropped half is waited for.
    pub grace: Duration,
}

/// Whether `msg` is exactly one RESUME or RESUMED frame.
fn is_resume(msg: &Message) -> bool {
    let payload = msg.as_payload();
    if payload.len() != frame::HEADER_LEN + frame::RESUME_LEN {
        return false;
    }
    let mut buf = BytesMut::from(&payload[..]);
    matches!(
        frame::decode(&mut buf, frame::MAX_DATA),
        Ok(Some(Frame::Resume { .. } | Frame::Resumed { .. }))
    ) && buf.is_empty()
}

fn other(role: Role) -> Role {
    match role {
        Role::Device => Role::Service,
        Role::Service => Role::Device,
    }
}

struct Relay {
    routes: [Arc<Mutex<Route>>; 2],
    /// Bytes handed on from each half, as the stream record's byte counts: what the hub
    /// carried (link frames and replays included), not what the far side used; messages
    /// dropped while a half was away are not counted.
    traffic: Traffic,
    events: mpsc::Sender<LegEvent>,
    legs: [Option<Attached>; 2],
    /// Cancelled once both halves of the first pairing are attached; readers wait for it.
    paired: CancellationToken,
    next_epoch: u64,
    keepalive: Keepalive,
}

impl Relay {
    fn route(&self, towards: Role) -> std::sync::MutexGuard<'_, Route> {
        self.routes[towards.index()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `role`'s tasks on `leg` and routes the other half's messages to it; a leg of
    /// that role still attached is stopped first, and waited for, so nothing it read can
    /// reach the other half after the new leg's RESUME. `held`: what this half sent before
    /// its peer arrived, sent on before anything newer.
    async fn attach<S>(&mut self, role: Role, leg: Leg<S>, returning: bool, held: VecDeque<Message>)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        self.detach(role).await;
        let to = self.route(other(role)).to.clone();
        if let Some(to) = to {
            for msg in held {
                let len = msg.as_payload().len() as u64;
                if to.send(msg).await.is_ok() {
                    self.traffic.add(role, len);
                }
            }
        }
        self.next_epoch += 1;
        let epoch = self.next_epoch;
        let (sink, stream) = leg.ws.split();
        let (writer, queue) = mpsc::channel(WRITER_QUEUE);
        let activity = Arc::new(Activity::new());
        let mut tasks = JoinSet::new();
        tasks.spawn(write_leg(
            role,
            epoch,
            sink,
            queue,
            activity.clone(),
            self.keepalive,
            self.events.clone(),
        ));
        let reader = read_leg(
            role,
            epoch,
            stream,
            activity,
            self.routes[other(role).index()].clone(),
            self.traffic.clone(),
            self.events.clone(),
        );
        // Not before both halves can be written to: a message read before the other half's
        // writer exists would be taken for one sent while it was away, and dropped (a HELLO
        // or an OPEN lost at the stream's start stalls or breaks the session).
        let paired = self.paired.clone();
        tasks.spawn(async move {
            paired.cancelled().await;
            reader.await;
        });
        {
            let mut route = self.route(role);
            route.to = Some(writer.clone());
            route.awaiting_resume = returning;
        }
        self.legs[role.index()] = Some(Attached {
            epoch,
            writer,
            tasks,
            _slot: leg.slot,
        });
    }

    /// Stops `role`'s leg and waits for its tasks to end.
    async fn detach(&mut self, role: Role) {
        self.route(role).to = None;
        if let Some(mut old) = self.legs[role.index()].take() {
            old.tasks.shutdown().await;
        }
    }

    fn is_current(&self, role: Role, epoch: u64) -> bool {
        self.legs[role.index()]
            .as_ref()
            .is_some_and(|a| a.epoch == epoch)
    }

    /// Sends each attached leg its Close (none to `skip`, a leg found dead) and waits for
    /// the writers to finish, bounded.
    async fn close(&mut self, device: Message, service: Message, skip: Option<Role>) {
        for role in [Role::Device, Role::Service] {
            self.route(role).to = None;
        }
        let mut closing = Vec::new();
        for (role, msg) in [(Role::Device, device), (Role::Service, service)] {
            let Some(leg) = self.legs[role.index()].take() else {
                continue;
            };
            if skip == Some(role) {
                continue;
            }
            let writer = leg.writer.clone();
            closing.push(async move {
                // The writer ends after sending a Close, dropping its queue.
                if writer.send(msg).await.is_ok() {
                    writer.closed().await;
                }
                drop(leg);
            });
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, futures_util::future::join_all(closing)).await;
    }
}

/// Relays until a side ends the stream, a dropped half is not back within the grace, the hub
/// shuts down or the device is revoked; then closes both. `held` is what the first half sent
/// before its peer arrived; `returning` brings halves that reattach.
#[allow(clippy::too_many_arguments)]
pub async fn run<S>(
    device: Leg<S>,
    service: Leg<S>,
    held: (Role, VecDeque<Message>),
    paired_at: Instant,
    mut returning: mpsc::Receiver<Reattached<S>>,
    settings: ResumeSettings,
    traffic: Traffic,
    shutdown: &CancellationToken,
    revoked: &CancellationToken,
) -> RelayOutcome
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let started = Instant::now();
    let (events, mut events_rx) = mpsc::channel(16);
    let mut relay = Relay {
        routes: Default::default(),
        traffic,
        events,
        legs: [None, None],
        paired: CancellationToken::new(),
        next_epoch: 0,
        keepalive: settings.keepalive,
    };
    // The half that waited goes second: its held messages go out before its reader starts.
    let (first, held) = held;
    let mut held = Some(held);
    let (mut device, mut service) = (Some(device), Some(service));
    for role in [other(first), first] {
        let leg = match role {
            Role::Device => device.take(),
            Role::Service => service.take(),
        };
        if let Some(leg) = leg {
            let held = if role == first {
                held.take().unwrap_or_default()
            } else {
                VecDeque::new()
            };
            relay.attach(role, leg, false, held).await;
        }
    }
    relay.paired.cancel();
    let mut away: [Option<(Instant, EndReason)>; 2] = [None, None];
    // Who sent end of input first: the session is ending, on purpose.
    let mut ending: Option<Role> = None;
    let (mut resumptions, mut parked) = (0u32, Duration::ZERO);
    let ended: Ended = loop {
        let deadline = away
            .iter()
            .flatten()
            .map(|(since, _)| *since + settings.grace)
            .min();
        tokio::select! {
            event = events_rx.recv() => match event {
                // The relay holds a sender itself.
                None => break Ended::hub(),
                Some(LegEvent::EndOfInput { role, epoch }) => {
                    if relay.is_current(role, epoch) && ending.is_none() {
                        ending = Some(role);
                    }
                }
                Some(LegEvent::Ended { role, epoch, how }) => {
                    if !relay.is_current(role, epoch) {
                        continue;
                    }
                    match how {
                        LegEnd::Closed(code, reason) => break Ended::closed(role, code, &reason),
                        LegEnd::Invalid(code, reason) => break Ended::invalid(role, code, &reason),
                        LegEnd::Dropped | LegEnd::Unresponsive => {
                            let reason = if matches!(how, LegEnd::Unresponsive) {
                                EndReason::PingTimeout
                            } else {
                                EndReason::Disconnected
                            };
                            if let Some(by) = ending {
                                break Ended::finished(by);
                            }
                            if away[other(role).index()].is_some() {
                                break Ended::dropped(role, reason);
                            }
                            tracing::info!(%role, reason = reason.as_str(), grace_s = settings.grace.as_secs(), "stream leg dropped; the other half is parked while it comes back");
                            relay.detach(role).await;
                            away[role.index()] = Some((Instant::now(), reason));
                        }
                    }
                }
            },
            back = returning.recv() => {
                // The gateway holds a sender for as long as the relay runs.
                let Some(back) = back else { break Ended::hub() };
                let role = back.role;
                // Both halves were gone at once: neither can answer the other's RESUME.
                if let Some((_, reason)) = away[other(role).index()] {
                    tracing::info!(%role, "stream leg came back while the other was away; ending the stream");
                    relay.attach(role, Leg { ws: back.ws, slot: back.slot }, true, VecDeque::new()).await;
                    break Ended::dropped(other(role), reason);
                }
                if let Some((since, _)) = away[role.index()].take() {
                    parked += since.elapsed();
                }
                resumptions += 1;
                tracing::info!(%role, resumptions, "stream leg resumed");
                relay.attach(role, Leg { ws: back.ws, slot: back.slot }, true, VecDeque::new()).await;
            }
            () = sleep_until_some(deadline) => {
                let Some(role) = [Role::Device, Role::Service]
                    .into_iter()
                    .find(|r| away[r.index()].is_some_and(|(since, _)| since + settings.grace <= Instant::now()))
                else {
                    continue;
                };
                let reason = away[role.index()].map_or(EndReason::Disconnected, |(_, r)| r);
                if let Some((since, _)) = away[role.index()].take() {
                    parked += since.elapsed();
                }
                tracing::info!(%role, grace_s = settings.grace.as_secs(), "stream leg did not come back within the grace; ending the stream");
                break Ended::not_back(role, reason, settings.grace);
            }
            () = shutdown.cancelled() => break Ended::hub(),
            () = revoked.cancelled() => break Ended::revoked(),
        }
    };
    for (since, _) in away.iter().flatten() {
        parked += since.elapsed();
    }
    let skip = (ended.reason == EndReason::PingTimeout)
        .then_some(ended.role)
        .flatten();
    relay.close(ended.to_device, ended.to_service, skip).await;
    RelayOutcome {
        established: true,
        closed_by: ended.closed_by,
        reason: ended.reason,
        lone_half: None,
        bytes_device_to_service: relay.traffic.total(Role::Device),
        bytes_service_to_device: relay.traffic.total(Role::Service),
        close_code: ended.close_code,
        paired_at: Some(paired_at),
        relay_duration: started.elapsed(),
        resumptions,
        parked,
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// How the stream ended, and the Close each half gets.
struct Ended {
    role: Option<Role>,
    closed_by: ClosedBy,
    reason: EndReason,
    close_code: Option<u16>,
    to_device: Message,
    to_service: Message,
}

impl Ended {
    fn both(role: Option<Role>, closed_by: ClosedBy, reason: EndReason, msg: Message) -> Self {
        Self {
            role,
            closed_by,
            reason,
            close_code: None,
            to_device: msg.clone(),
            to_service: msg,
        }
    }

    fn by(role: Role) -> ClosedBy {
        match role {
            Role::Device => ClosedBy::Device,
            Role::Service => ClosedBy::Service,
        }
    }

    fn closed(role: Role, code: Option<CloseCode>, reason: &str) -> Self {
        Self {
            close_code: code.map(u16::from),
            ..Self::both(
                Some(role),
                Self::by(role),
                EndReason::CloseFrame,
                close_frame::forwardable(code, reason),
            )
        }
    }

    fn invalid(role: Role, code: CloseCode, reason: &str) -> Self {
        tracing::info!(%role, code = u16::from(code), %reason, "stream leg sent an invalid message; closing the stream");
        let mut ended = Self::both(
            Some(role),
            Self::by(role),
            EndReason::InvalidMessage,
            close_frame::own(
                CloseCode::GOING_AWAY,
                &format!("{role} sent an invalid message: {reason}"),
            ),
        );
        ended.close_code = Some(u16::from(code));
        let to_offender = close_frame::own(code, reason);
        match role {
            Role::Device => ended.to_device = to_offender,
            Role::Service => ended.to_service = to_offender,
        }
        ended
    }

    fn dropped(role: Role, reason: EndReason) -> Self {
        Self::both(
            Some(role),
            Self::by(role),
            reason,
            close_frame::own(CloseCode::GOING_AWAY, &format!("{role} disconnected")),
        )
    }

    /// `role` ended its input, then the connections went: the session ended on purpose.
    fn finished(role: Role) -> Self {
        Self::both(
            Some(role),
            Self::by(role),
            EndReason::Finished,
            close_frame::own(CloseCode::NORMAL_CLOSURE, ""),
        )
    }

    fn not_back(role: Role, reason: EndReason, grace: Duration) -> Self {
        Self::both(
            Some(role),
            Self::by(role),
            reason,
            close_frame::own(
                CloseCode::GOING_AWAY,
                &format!(
                    "the {role} side dropped and did not come back within {} s",
                    grace.as_secs()
                ),
            ),
        )
    }

    fn hub() -> Self {
        Self::both(
            None,
            ClosedBy::Hub,
            EndReason::HubShutdown,
            close_frame::own(CloseCode::GOING_AWAY, "hub shutting down"),
        )
    }

    fn revoked() -> Self {
        Self::both(
            None,
            ClosedBy::Hub,
            EndReason::Revoked,
            close_frame::own(CloseCode::POLICY_VIOLATION, "device disabled or deleted"),
        )
    }
}

/// Reads one leg and sends its messages on along its route.
async fn read_leg<S>(
    role: Role,
    epoch: u64,
    mut stream: futures_util::stream::SplitStream<WebSocketStream<S>>,
    activity: Arc<Activity>,
    route: Arc<Mutex<Route>>,
    traffic: Traffic,
    events: mpsc::Sender<LegEvent>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    loop {
        let item = stream.next().await;
        activity.mark();
        let msg = match classify(item) {
            Step::Skip => continue,
            Step::Forward(msg) => msg,
            Step::Stop(end) => {
                let how = match end {
                    End::Closed(code, reason) => LegEnd::Closed(code, reason),
                    End::Invalid(code, reason) => LegEnd::Invalid(code, reason),
                    End::Dropped | End::PeerFailed => LegEnd::Dropped,
                };
                let _ = events.send(LegEvent::Ended { role, epoch, how }).await;
                return;
            }
        };
        if msg.as_payload().is_empty() {
            let _ = events.send(LegEvent::EndOfInput { role, epoch }).await;
        }
        let to = {
            let mut route = route.lock().unwrap_or_else(|e| e.into_inner());
            if route.awaiting_resume {
                if !is_resume(&msg) {
                    continue;
                }
                route.awaiting_resume = false;
            }
            route.to.clone()
        };
        // The other half is away: its side replays what it missed.
        let Some(to) = to else { continue };
        let len = msg.as_payload().len() as u64;
        let sent = match to.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(msg)) => {
                // This leg is not read while its message waits: its pongs wait too.
                activity.park(true);
                let sent = to.send(msg).await.is_ok();
                activity.park(false);
                sent
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        };
        if sent {
            traffic.add(role, len);
        }
    }
}

/// Writes what the route brings to one leg, pings it when quiet, and reports it when it stops
/// answering or a write fails. Ends after writing a Close.
async fn write_leg<S>(
    role: Role,
    epoch: u64,
    sink: futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    mut queue: mpsc::Receiver<Message>,
    activity: Arc<Activity>,
    keepalive: Keepalive,
    events: mpsc::Sender<LegEvent>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let sink = tokio::sync::Mutex::new(sink);
    let pump = async {
        while let Some(msg) = queue.recv().await {
            let close = msg.is_close();
            let mut sink = sink.lock().await;
            if sink.send(msg).await.is_err() {
                return Some(LegEnd::Dropped);
            }
            activity.mark();
            if close {
                let _ = sink.close().await;
                return None;
            }
        }
        None
    };
    let how = tokio::select! {
        how = pump => how,
        () = liveness::watch(&activity, &sink, keepalive) => Some(LegEnd::Unresponsive),
    };
    if let Some(how) = how {
        let _ = events.send(LegEvent::Ended { role, epoch, how }).await;
    }
}

#[cfg(test)]
mod tests;
