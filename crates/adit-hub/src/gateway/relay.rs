//! Relaying frames between the two halves of a stream.
//!
//! Each direction is a loop that reads one message and sends it on, so a reader that does not
//! keep up stops its writer's socket from being read: backpressure runs end to end, per
//! stream, and memory per stream is bounded by the WebSocket buffers. When either side closes
//! (or drops, or stops answering pings), the other is closed at once, with the same close code
//! where there was one (see [`close_frame`](super::close_frame)).
//!
//! Zero-length frames are passed on like any other: Azure's C# samples send one at end of
//! input, and Adit's SDKs use one as a one-direction end-of-stream (half-close) marker.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_websockets::{CloseCode, Message, WebSocketStream};

use super::Role;
use super::close_frame;
use super::liveness::{self, Activity, Keepalive};
use super::lone_half::Left;
use super::traffic::Traffic;
use adit_transport::lingering_close::lingering_close;

/// Who ended a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedBy {
    /// The device closed, dropped or stopped answering its WebSocket.
    Device,
    /// The service closed, dropped or stopped answering its WebSocket.
    Service,
    /// The handshake deadline passed before both halves were connected.
    Deadline,
    /// The hub shut down.
    Hub,
}

impl ClosedBy {
    /// Lowercase name for logs and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Service => "service",
            Self::Deadline => "deadline",
            Self::Hub => "hub",
        }
    }

    fn of(role: Role) -> Self {
        match role {
            Role::Device => Self::Device,
            Role::Service => Self::Service,
        }
    }
}

/// How the side that ended a stream ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// It sent a WebSocket Close frame.
    CloseFrame,
    /// Its connection ended without a Close (EOF, reset, a write to it failed).
    Disconnected,
    /// It answered no ping within the pong timeout.
    PingTimeout,
    /// The hub shut down and its grace period ran out.
    HubShutdown,
    /// The device was disabled or deleted while the stream was open.
    Revoked,
    /// Both halves were not connected by the handshake deadline.
    HandshakeDeadline,
    /// It sent what the gateway does not relay: a message over the frame limit (it is closed
    /// with 1009) or a WebSocket protocol violation (1002).
    InvalidMessage,
    /// One half offered the Adit stream protocol and the other did not.
    ProtocolMismatch,
    /// (Adit stream protocol) it sent its end of input, then its connection ended: the
    /// session was ended on purpose.
    Finished,
}

impl EndReason {
    /// snake_case name for logs and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CloseFrame => "close_frame",
            Self::Disconnected => "disconnected",
            Self::PingTimeout => "ping_timeout",
            Self::HubShutdown => "hub_shutdown",
            Self::Revoked => "revoked",
            Self::HandshakeDeadline => "handshake_deadline",
            Self::InvalidMessage => "invalid_message",
            Self::ProtocolMismatch => "protocol_mismatch",
            Self::Finished => "finished",
        }
    }
}

/// How a stream's data phase went.
#[derive(Debug, Clone)]
pub struct RelayOutcome {
    /// True when both halves connected and bytes could flow.
    pub established: bool,
    /// Who ended it.
    pub closed_by: ClosedBy,
    /// How they ended it.
    pub reason: EndReason,
    /// The half that was connected when the handshake failed, if one was.
    pub lone_half: Option<Role>,
    /// Payload bytes from device to service: what the service leg's sink took. Exactly what
    /// the service received, unless the service leg itself failed or ended the stream (then
    /// what was in flight to it may be lost with it).
    pub bytes_device_to_service: u64,
    /// Payload bytes from service to device, counted the same way.
    pub bytes_service_to_device: u64,
    /// The close code received from the side that ended it, if it sent one (1005 when its
    /// Close had no body).
    pub close_code: Option<u16>,
    /// When both halves were connected.
    pub paired_at: Option<Instant>,
    /// How long the data phase lasted.
    pub relay_duration: Duration,
    /// Times a dropped half came back (streams that carry the Adit stream protocol).
    pub resumptions: u32,
    /// Time spent with a half away, waiting for it to come back.
    pub parked: Duration,
}

impl RelayOutcome {
    /// A handshake that never paired.
    pub fn handshake_failed(lone_half: Option<Role>) -> Self {
        Self {
            established: false,
            closed_by: ClosedBy::Deadline,
            reason: EndReason::HandshakeDeadline,
            lone_half,
            bytes_device_to_service: 0,
            bytes_service_to_device: 0,
            close_code: None,
            paired_at: None,
            relay_duration: Duration::ZERO,
            resumptions: 0,
            parked: Duration::ZERO,
        }
    }
}

impl RelayOutcome {
    /// A handshake that ended because its only half, `role`, left before its peer arrived.
    pub fn left_before_pairing(role: Role, left: &Left) -> Self {
        Self {
            closed_by: ClosedBy::of(role),
            reason: left.reason,
            close_code: left.close_code,
            ..Self::handshake_failed(Some(role))
        }
    }

    /// Both halves came, one offering the Adit stream protocol and the other not.
    pub fn protocol_mismatch() -> Self {
        Self {
            closed_by: ClosedBy::Hub,
            reason: EndReason::ProtocolMismatch,
            ..Self::handshake_failed(None)
        }
    }

    /// A handshake ended by the hub's shutdown.
    pub fn hub_shutdown_in_handshake() -> Self {
        Self {
            closed_by: ClosedBy::Hub,
            reason: EndReason::HubShutdown,
            ..Self::handshake_failed(None)
        }
    }
}

pub(super) enum End {
    /// The source sent a Close frame.
    Closed(Option<CloseCode>, String),
    /// The source went away without a Close (EOF or error).
    Dropped,
    /// The destination failed while we were sending to it.
    PeerFailed,
    /// The source sent a message over the limit or broke the WebSocket protocol: the code
    /// and reason it is closed with.
    Invalid(CloseCode, String),
}

/// What to do with one message from the source.
pub(super) enum Step {
    Forward(Message),
    Skip,
    Stop(End),
}

pub(super) fn classify(item: Option<Result<Message, tokio_websockets::Error>>) -> Step {
    match item {
        Some(Ok(msg)) if msg.is_close() => {
            let (code, reason) = msg
                .as_close()
                .map(|(c, r)| (Some(c), r.to_string()))
                .unwrap_or((None, String::new()));
            Step::Stop(End::Closed(code, reason))
        }
        // RFC 6455 8.1: a text message that is not UTF-8 fails the connection with 1007.
        // tokio-websockets passes a message whose last UTF-8 sequence is cut short when the
        // final fragment is empty (found by fuzz/run relay_frames), so the relay checks itself
        // rather than send the other half a frame its WebSocket must reject.
        Some(Ok(msg)) if msg.is_text() && std::str::from_utf8(&msg.as_payload()[..]).is_err() => {
            Step::Stop(End::Invalid(
                CloseCode::INVALID_FRAME_PAYLOAD_DATA,
                "text message is not valid UTF-8".to_string(),
            ))
        }
        Some(Ok(msg)) if msg.is_binary() || msg.is_text() => Step::Forward(msg),
        // Pings are answered by each side's WebSocket on its own; pongs only show liveness.
        Some(Ok(_)) => Step::Skip,
        // One frame over the limit, or fragments that add up past it (a continuation flood).
        Some(Err(tokio_websockets::Error::PayloadTooLong { max_len, .. })) => {
            Step::Stop(End::Invalid(
                CloseCode::MESSAGE_TOO_BIG,
                format!("message over the gateway's limit of {max_len} bytes"),
            ))
        }
        Some(Err(tokio_websockets::Error::Protocol(e))) => Step::Stop(End::Invalid(
            CloseCode::PROTOCOL_ERROR,
            format!("WebSocket protocol error: {e}"),
        )),
        Some(Err(_)) | None => Step::Stop(End::Dropped),
    }
}

/// One direction: frames from `source` (whose liveness is `heard`) to `sink` (whose liveness
/// is `reached`), starting with `held`, what `source` sent before its peer arrived.
async fn pump<R, W>(
    source: &mut R,
    mut held: VecDeque<Message>,
    sink: &Mutex<W>,
    counted: (&Traffic, Role),
    heard: &Activity,
    reached: &Activity,
) -> End
where
    R: futures_util::Stream<Item = Result<Message, tokio_websockets::Error>> + Unpin,
    W: futures_util::Sink<Message, Error = tokio_websockets::Error> + Unpin,
{
    use futures_util::FutureExt as _;
    loop {
        let mut step = match held.pop_front() {
            Some(msg) => Step::Forward(msg),
            None => classify(source.next().await),
        };
        // From here until the batch is written the source is not read: its pongs wait. It
        // is not judged meanwhile, and unparking marks it heard (one clock read per batch).
        heard.park(true);
        // Wait for one message, then take every one already decoded without waiting, and
        // flush once: under load a TLS record and a syscall carry many frames, while a lone
        // small message still goes out at once. The sink is held only while writing, so the
        // keep-alive can ping between batches.
        let mut sink = sink.lock().await;
        let mut forwarded = false;
        loop {
            match step {
                Step::Stop(end) => {
                    let _ = sink.flush().await;
                    heard.park(false);
                    return end;
                }
                Step::Forward(msg) => {
                    // Counted once the destination's sink took it: a message it refused (it
                    // had failed, or was closing after its own peer broke the protocol) is
                    // not counted as relayed (found by fuzz/run relay_frames). What a sink
                    // took and then lost because its connection failed is counted: the
                    // counts are exact whenever the destination stayed healthy.
                    let len = msg.as_payload().len() as u64;
                    if sink.feed(msg).await.is_err() {
                        heard.park(false);
                        return End::PeerFailed;
                    }
                    counted.0.add(counted.1, len);
                    forwarded = true;
                }
                Step::Skip => {}
            }
            if let Some(msg) = held.pop_front() {
                step = Step::Forward(msg);
                continue;
            }
            // `next` is cancel-safe: a message not ready now stays queued for the next poll.
            match source.next().now_or_never() {
                Some(item) => step = classify(item),
                None => break,
            }
        }
        // Only a write that carried data shows the destination is reading; a pong from the
        // source says nothing about it.
        if forwarded {
            if sink.flush().await.is_err() {
                heard.park(false);
                return End::PeerFailed;
            }
            reached.mark();
        }
        heard.park(false);
    }
}

/// Closes a half that will never be paired, saying why.
pub async fn refuse<S>(mut ws: WebSocketStream<S>, reason: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let close = close_frame::own(CloseCode::POLICY_VIOLATION, reason);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = ws.send(close).await;
        let _ = ws.close().await;
    })
    .await;
}

/// How one leg's end is reported: who, why, and what to tell the other half.
fn verdict(ended: Role, end: End) -> Verdict {
    let other = match ended {
        Role::Device => Role::Service,
        Role::Service => Role::Device,
    };
    match end {
        End::Closed(code, reason) => Verdict::both(
            ClosedBy::of(ended),
            EndReason::CloseFrame,
            code.map(u16::from),
            close_frame::forwardable(code, &reason),
        ),
        End::Dropped => Verdict::both(
            ClosedBy::of(ended),
            EndReason::Disconnected,
            None,
            close_frame::own(CloseCode::GOING_AWAY, &format!("{ended} disconnected")),
        ),
        // A write to the other half failed: it is the one that went away.
        End::PeerFailed => Verdict::both(
            ClosedBy::of(other),
            EndReason::Disconnected,
            None,
            close_frame::own(CloseCode::GOING_AWAY, &format!("{other} disconnected")),
        ),
        // The offender is told why (1009, 1002); the other half that its peer broke the rules.
        End::Invalid(code, reason) => {
            tracing::info!(role = %ended, code = u16::from(code), %reason, "stream leg sent an invalid message; closing the stream");
            Verdict {
                closed_by: ClosedBy::of(ended),
                reason: EndReason::InvalidMessage,
                close_code: Some(u16::from(code)),
                close: close_frame::own(
                    CloseCode::GOING_AWAY,
                    &format!("{ended} sent an invalid message: {reason}"),
                ),
                to_offender: Some(close_frame::own(code, &reason)),
            }
        }
    }
}

/// How a relay ended, and the Close each half gets.
struct Verdict {
    closed_by: ClosedBy,
    reason: EndReason,
    close_code: Option<u16>,
    /// For both halves, or for the other half when `to_offender` is set.
    close: Message,
    /// For the half that ended the relay, when it is told something else.
    to_offender: Option<Message>,
}

impl Verdict {
    fn both(
        closed_by: ClosedBy,
        reason: EndReason,
        close_code: Option<u16>,
        close: Message,
    ) -> Self {
        Self {
            closed_by,
            reason,
            close_code,
            close,
            to_offender: None,
        }
    }
}

/// Closes a peer that arrived just as the first half, `left`, went away: with the Close that
/// half sent where one may be sent on, as the relay would have.
pub async fn close_left_peer<S>(mut ws: WebSocketStream<S>, left_role: Role, left: &Left)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let close = match left.reason {
        EndReason::CloseFrame => {
            let code = left.close_code.and_then(|c| CloseCode::try_from(c).ok());
            close_frame::forwardable(code, &left.close_reason)
        }
        _ => close_frame::own(CloseCode::GOING_AWAY, &format!("{left_role} disconnected")),
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = ws.send(close).await;
        let _ = ws.close().await;
    })
    .await;
}

/// Relays until one side ends (or stops answering pings, or `shutdown`), then closes both.
/// `held` is what the first half to arrive sent while it waited, relayed first; `traffic`
/// counts what is relayed, as it is.
#[allow(clippy::too_many_arguments)]
pub async fn run<S>(
    device: WebSocketStream<S>,
    service: WebSocketStream<S>,
    held: (Role, VecDeque<Message>),
    paired_at: Instant,
    keepalive: Keepalive,
    traffic: &Traffic,
    shutdown: &CancellationToken,
    revoked: &CancellationToken,
) -> RelayOutcome
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (device_tx, mut device_rx): (SplitSink<_, Message>, SplitStream<_>) = device.split();
    let (service_tx, mut service_rx) = service.split();
    let (device_tx, service_tx) = (Mutex::new(device_tx), Mutex::new(service_tx));
    let (device_alive, service_alive) = (Activity::new(), Activity::new());
    let started = Instant::now();
    let (held_device, held_service) = match held {
        (Role::Device, h) => (h, VecDeque::new()),
        (Role::Service, h) => (VecDeque::new(), h),
    };
    let Verdict {
        closed_by,
        reason,
        close_code,
        close,
        to_offender,
    } = tokio::select! {
        e = pump(&mut device_rx, held_device, &service_tx, (traffic, Role::Device), &device_alive, &service_alive) => {
            verdict(Role::Device, e)
        }
        e = pump(&mut service_rx, held_service, &device_tx, (traffic, Role::Service), &service_alive, &device_alive) => {
            verdict(Role::Service, e)
        }
        () = liveness::watch(&device_alive, &device_tx, keepalive) => {
            unresponsive(Role::Device, keepalive)
        }
        () = liveness::watch(&service_alive, &service_tx, keepalive) => {
            unresponsive(Role::Service, keepalive)
        }
        () = shutdown.cancelled() => Verdict::both(
            ClosedBy::Hub,
            EndReason::HubShutdown,
            None,
            close_frame::own(CloseCode::GOING_AWAY, "hub shutting down"),
        ),
        () = revoked.cancelled() => Verdict::both(
            ClosedBy::Hub,
            EndReason::Revoked,
            None,
            close_frame::own(CloseCode::POLICY_VIOLATION, "device disabled or deleted"),
        ),
    };
    // Close both at once; a side that is already gone fails quietly. Bounded, so a peer that
    // never reads cannot hold the task; a leg found unresponsive is not even tried (its
    // Close would only wait out the bound), its connection is just dropped.
    let dead = (reason == EndReason::PingTimeout).then_some(closed_by);
    let close_one = |tx: Mutex<SplitSink<WebSocketStream<S>, Message>>,
                     rx: SplitStream<WebSocketStream<S>>,
                     msg: Message,
                     skip: bool,
                     refused: bool| async move {
        if skip {
            return;
        }
        let mut tx = tx.into_inner();
        let _ = tx.send(msg).await;
        let _ = tx.close().await;
        // An offender refused mid-message (1009) is still sending it: linger so the Close
        // reaches it instead of the reset that unread data would bring.
        if refused && let Ok(mut ws) = tx.reunite(rx) {
            lingering_close(ws.get_mut()).await;
        }
    };
    let close_for = |side: ClosedBy| match &to_offender {
        Some(m) if closed_by == side => m.clone(),
        _ => close.clone(),
    };
    let refused = |side: ClosedBy| to_offender.is_some() && closed_by == side;
    let closing = futures_util::future::join(
        close_one(
            device_tx,
            device_rx,
            close_for(ClosedBy::Device),
            dead == Some(ClosedBy::Device),
            refused(ClosedBy::Device),
        ),
        close_one(
            service_tx,
            service_rx,
            close_for(ClosedBy::Service),
            dead == Some(ClosedBy::Service),
            refused(ClosedBy::Service),
        ),
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
    RelayOutcome {
        established: true,
        closed_by,
        reason,
        lone_half: None,
        bytes_device_to_service: traffic.total(Role::Device),
        bytes_service_to_device: traffic.total(Role::Service),
        close_code,
        paired_at: Some(paired_at),
        relay_duration: started.elapsed(),
        resumptions: 0,
        parked: Duration::ZERO,
    }
}

fn unresponsive(role: Role, k: Keepalive) -> Verdict {
    let why = format!(
        "{role} stopped responding (no pong within {} s of a ping)",
        k.timeout().as_secs()
    );
    tracing::info!(%role, "stream leg unresponsive; closing the stream");
    Verdict::both(
        ClosedBy::of(role),
        EndReason::PingTimeout,
        None,
        close_frame::own(CloseCode::GOING_AWAY, &why),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// fuzz/crashes/relay_frames-fragmented-text-invalid-utf8, the device's bytes: a text
    /// message in three masked fragments, 0xF2 0xAC then an empty final one, so its last UTF-8
    /// sequence is cut short.
    const CUT_SHORT_TEXT: [u8; 23] = [
        0x01, 0x81, 0xff, 0xff, 0xff, 0x00, 0x0d, // text, not final: 0xF2
        0x00, 0x81, 0x2c, 0x01, 0x20, 0x00, 0x80, // continuation, not final: 0xAC
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, // final continuation, empty
        0x88, 0x80, 0x00, // (the Close that follows is cut off: the device just goes)
    ];

    #[tokio::test]
    async fn a_text_message_that_is_not_utf8_is_refused_with_1007_not_relayed() {
        let (mut device_client, device_hub) = tokio::io::duplex(1 << 16);
        let (service_client, service_hub) = tokio::io::duplex(1 << 16);
        let server = tokio_websockets::ServerBuilder::new();
        let (device, service) = (server.serve(device_hub), server.serve(service_hub));
        let relay = tokio::spawn(async move {
            let (shutdown, revoked) = (CancellationToken::new(), CancellationToken::new());
            run(
                device,
                service,
                (Role::Device, VecDeque::new()),
                Instant::now(),
                Keepalive::default(),
                &Traffic::new(),
                &shutdown,
                &revoked,
            )
            .await
        });
        device_client
            .write_all(&CUT_SHORT_TEXT[..20])
            .await
            .expect("write");
        let mut to_device = Vec::new();
        let _ = device_client.read_to_end(&mut to_device).await;
        let outcome = relay.await.expect("relay");
        assert_eq!(outcome.reason, EndReason::InvalidMessage);
        assert_eq!(outcome.closed_by, ClosedBy::Device);
        assert_eq!(outcome.bytes_device_to_service, 0, "nothing relayed");
        // The device got Close 1007 (an unmasked server frame: 0x88, length, code).
        assert_eq!(&to_device[..1], &[0x88]);
        assert_eq!(&to_device[2..4], &1007u16.to_be_bytes());
        // The service got nothing but one Close (an unmasked frame: 0x88, length, body).
        let mut service_client = service_client;
        let mut to_service = Vec::new();
        let _ = service_client.read_to_end(&mut to_service).await;
        assert_eq!(to_service.first(), Some(&0x88), "{to_service:?}");
        assert_eq!(
            to_service.len(),
            2 + usize::from(to_service[1]),
            "one frame only"
        );
    }
}
