//! Relaying frames between the two halves of a stream.
//!
//! Each direction is a loop that reads one message and sends it on, so a reader that does not
//! keep up stops its writer's socket from being read: backpressure runs end to end, per
//! stream, and memory per stream is bounded by the WebSocket buffers. When either side closes
//! (or drops), the other is closed at once, with the same close code where there was one.
//!
//! Zero-length frames are passed on like any other: Azure's C# samples send one at end of
//! input, and Adit's SDKs use one as a one-direction end-of-stream (half-close) marker.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_websockets::{CloseCode, Message};

use super::{Role, WsConn};

/// Who ended a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedBy {
    /// The device closed or dropped its WebSocket.
    Device,
    /// The service closed or dropped its WebSocket.
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
}

/// How a stream's data phase went.
#[derive(Debug, Clone)]
pub struct RelayOutcome {
    /// True when both halves connected and bytes could flow.
    pub established: bool,
    /// Who ended it.
    pub closed_by: ClosedBy,
    /// The half that was connected when the handshake failed, if one was.
    pub lone_half: Option<Role>,
    /// Payload bytes from device to service.
    pub bytes_device_to_service: u64,
    /// Payload bytes from service to device.
    pub bytes_service_to_device: u64,
    /// The close code received from the side that ended it, if it sent one.
    pub close_code: Option<u16>,
    /// When both halves were connected.
    pub paired_at: Option<Instant>,
    /// How long the data phase lasted.
    pub relay_duration: Duration,
}

impl RelayOutcome {
    /// A handshake that never paired.
    pub fn handshake_failed(lone_half: Option<Role>) -> Self {
        Self {
            established: false,
            closed_by: ClosedBy::Deadline,
            lone_half,
            bytes_device_to_service: 0,
            bytes_service_to_device: 0,
            close_code: None,
            paired_at: None,
            relay_duration: Duration::ZERO,
        }
    }
}

enum End {
    /// The source sent a Close frame.
    Closed(Option<CloseCode>, String),
    /// The source went away without a Close (EOF or error).
    Dropped,
    /// The destination failed while we were sending to it.
    PeerFailed,
}

/// What to do with one message from the source.
enum Step {
    Forward(Message),
    Skip,
    Stop(End),
}

fn classify(item: Option<Result<Message, tokio_websockets::Error>>) -> Step {
    match item {
        Some(Ok(msg)) if msg.is_close() => {
            let (code, reason) = msg
                .as_close()
                .map(|(c, r)| (Some(c), r.to_string()))
                .unwrap_or((None, String::new()));
            Step::Stop(End::Closed(code, reason))
        }
        Some(Ok(msg)) if msg.is_binary() || msg.is_text() => Step::Forward(msg),
        // Pings and pongs are answered by each side's WebSocket on its own.
        Some(Ok(_)) => Step::Skip,
        Some(Err(_)) | None => Step::Stop(End::Dropped),
    }
}

async fn pump<R, W>(source: &mut R, sink: &mut W, bytes: &mut u64) -> End
where
    R: futures_util::Stream<Item = Result<Message, tokio_websockets::Error>> + Unpin,
    W: futures_util::Sink<Message, Error = tokio_websockets::Error> + Unpin,
{
    use futures_util::FutureExt as _;
    loop {
        // Wait for one message, then take every one already decoded without waiting, and
        // flush once: under load a TLS record and a syscall carry many frames, while a lone
        // small message still goes out at once.
        let mut step = classify(source.next().await);
        loop {
            match step {
                Step::Stop(end) => {
                    let _ = sink.flush().await;
                    return end;
                }
                Step::Forward(msg) => {
                    *bytes += msg.as_payload().len() as u64;
                    if sink.feed(msg).await.is_err() {
                        return End::PeerFailed;
                    }
                }
                Step::Skip => {}
            }
            // `next` is cancel-safe: a message not ready now stays queued for the next poll.
            match source.next().now_or_never() {
                Some(item) => step = classify(item),
                None => break,
            }
        }
        if sink.flush().await.is_err() {
            return End::PeerFailed;
        }
    }
}

/// Closes a half that will never be paired, saying why.
pub async fn refuse(mut ws: WsConn, reason: &str) {
    let close = Message::close(Some(CloseCode::POLICY_VIOLATION), reason);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = ws.send(close).await;
        let _ = ws.close().await;
    })
    .await;
}

/// Relays until one side ends, then closes the other.
pub async fn run(
    device: WsConn,
    service: WsConn,
    paired_at: Instant,
    shutdown: &CancellationToken,
) -> RelayOutcome {
    let (mut device_tx, mut device_rx) = device.split();
    let (mut service_tx, mut service_rx) = service.split();
    let (mut d2s, mut s2d) = (0u64, 0u64);
    let started = Instant::now();
    let (closed_by, end) = tokio::select! {
        e = pump(&mut device_rx, &mut service_tx, &mut d2s) => (ClosedBy::Device, Some(e)),
        e = pump(&mut service_rx, &mut device_tx, &mut s2d) => (ClosedBy::Service, Some(e)),
        () = shutdown.cancelled() => (ClosedBy::Hub, None),
    };
    let (code, reason) = match &end {
        Some(End::Closed(code, reason)) => (*code, reason.clone()),
        Some(End::Dropped | End::PeerFailed) => {
            (Some(CloseCode::GOING_AWAY), "peer disconnected".to_string())
        }
        None => (Some(CloseCode::GOING_AWAY), "hub shutting down".to_string()),
    };
    // Close both; a side that is already gone fails quietly. Bounded, so a peer that never
    // reads cannot hold the task.
    let closing = async {
        let _ = device_tx.send(Message::close(code, &reason)).await;
        let _ = service_tx.send(Message::close(code, &reason)).await;
        let _ = device_tx.close().await;
        let _ = service_tx.close().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
    RelayOutcome {
        established: true,
        closed_by,
        lone_half: None,
        bytes_device_to_service: d2s,
        bytes_service_to_device: s2d,
        close_code: match end {
            Some(End::Closed(code, _)) => code.map(u16::from),
            _ => None,
        },
        paired_at: Some(paired_at),
        relay_duration: started.elapsed(),
    }
}
