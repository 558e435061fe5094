//! Joining a local byte stream to a device stream, both directions, with half-close.

mod one_way;

use std::fmt;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use adit_transport::CloseCode;
use adit_transport::GatewayStream as ServiceStream;
use tokio::io::{AsyncRead, AsyncWrite};

#[cfg(feature = "full")]
use crate::cli::StreamArgs;
use one_way::{CopyError, OneWay};

/// How long closing the stream may take once piping is over: a peer that stopped answering
/// must not hold the process.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Stream options from the command line.
#[cfg(feature = "full")]
pub fn stream_options(args: &StreamArgs) -> anyhow::Result<adit_service::StreamOptions> {
    if !(0.0..=300.0).contains(&args.connect_timeout) {
        anyhow::bail!("--connect-timeout must be between 0 and 300 seconds");
    }
    let mut options = adit_service::StreamOptions::default();
    options.connect_timeout = Duration::from_secs_f64(args.connect_timeout);
    options.keepalive = args.keepalive.keepalive()?;
    Ok(options)
}

/// When piping is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Both directions have ended (each end passed on as a half-close), or the remote side
    /// closed the whole stream: what a TCP proxy wants, since TCP carries half-close.
    BothEnd,
    /// The remote side's direction has ended: what `adit connect` wants, as it cannot pass a
    /// half-close on to stdout without exiting, and its stdin may never end.
    // `adit connect`'s, which the device agent (built without `full`) does not have.
    #[cfg_attr(not(feature = "full"), allow(dead_code))]
    StreamEnds,
}

/// What ended piping early.
#[derive(Debug)]
pub enum Failure {
    /// The stream: the other side went away, the hub stopped answering pings, ...
    Stream(io::Error),
    /// The local side (socket reset, stdout closed).
    Local(io::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stream(e) => write!(f, "stream failed: {e}"),
            Self::Local(e) => write!(f, "local side failed: {e}"),
        }
    }
}

impl std::error::Error for Failure {}

/// Bytes moved, and how it ended.
#[derive(Debug)]
pub struct Piped {
    /// Local to stream, counted as written, also when piping ended with an error.
    pub sent: u64,
    /// Stream to local, likewise.
    pub received: u64,
    /// Wall time.
    pub seconds: f64,
    /// What ended it early, if anything did; `None` for a clean end.
    pub error: Option<Failure>,
}

/// Copies both ways until `until` says it is over (EOF in one direction is passed on as a
/// half-close), then closes the stream.
pub async fn pipe<R, W>(
    local_read: &mut R,
    local_write: &mut W,
    stream: &mut ServiceStream,
    until: Until,
) -> Piped
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let started = Instant::now();
    let (mut up, mut down) = (OneWay::new(), OneWay::new());
    // A local side that takes none of the stream's bytes for as long as the hub waits for a
    // pong has, by then, been given up by the hub too (we stop reading the stream, so its
    // pings go unanswered): end here as well, instead of holding both sockets until the local
    // side goes away. Off when keep-alive is off.
    let stall_limit = stream.keepalive().map(|k| k.interval() + k.timeout());
    let mut stalled: Option<(u64, Pin<Box<tokio::time::Sleep>>)> = None;
    let result = std::future::poll_fn(|cx| {
        let polled = poll_pipe(
            cx,
            local_read,
            local_write,
            stream,
            &mut up,
            &mut down,
            until,
        );
        if polled.is_ready() {
            return polled;
        }
        let Some(limit) = stall_limit.filter(|_| down.is_waiting_to_write()) else {
            stalled = None;
            return Poll::Pending;
        };
        // (Re)armed whenever the local side took something since the last look.
        if stalled
            .as_ref()
            .is_none_or(|(bytes, _)| *bytes != down.bytes)
        {
            stalled = Some((down.bytes, Box::pin(tokio::time::sleep(limit))));
        }
        let fired = stalled
            .as_mut()
            .is_some_and(|(_, timer)| timer.as_mut().poll(cx).is_ready());
        if fired {
            return Poll::Ready(Err(Failure::Local(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "it stopped reading (took nothing for {} s)",
                    limit.as_secs()
                ),
            ))));
        }
        Poll::Pending
    })
    .await;
    // Bounded: after a failure the peer may not answer the Close (and WsIo refuses at once
    // when keep-alive gave it up).
    // A failure on this side is told to the other as 1011 with the reason, so it does not
    // read as a finished stream.
    let (code, reason) = match &result {
        Ok(()) => (CloseCode::NORMAL_CLOSURE, String::new()),
        Err(e) => (CloseCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let closing = stream.close_with(code, &reason);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
    Piped {
        sent: up.bytes,
        received: down.bytes,
        seconds: started.elapsed().as_secs_f64(),
        error: result.err(),
    }
}

fn poll_pipe<R, W>(
    cx: &mut Context<'_>,
    local_read: &mut R,
    local_write: &mut W,
    stream: &mut ServiceStream,
    up: &mut OneWay,
    down: &mut OneWay,
    until: Until,
) -> Poll<Result<(), Failure>>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    // Each direction is polled on every wake-up; a finished one returns at once.
    match up.poll(cx, Pin::new(&mut *local_read), Pin::new(&mut *stream)) {
        Poll::Ready(Err(CopyError::Read(e))) => return Poll::Ready(Err(Failure::Local(e))),
        Poll::Ready(Err(CopyError::Write(e))) => return Poll::Ready(Err(Failure::Stream(e))),
        Poll::Ready(Ok(())) | Poll::Pending => {}
    }
    match down.poll(cx, Pin::new(&mut *stream), Pin::new(&mut *local_write)) {
        Poll::Ready(Err(CopyError::Read(e))) => return Poll::Ready(Err(Failure::Stream(e))),
        Poll::Ready(Err(CopyError::Write(e))) => return Poll::Ready(Err(Failure::Local(e))),
        Poll::Ready(Ok(())) | Poll::Pending => {}
    }
    let over = match until {
        Until::StreamEnds => down.is_done(),
        // A Close (not just the half-close frame) from the remote side ends both directions:
        // nothing more can be sent, so waiting for the local side's end would only hang.
        Until::BothEnd => {
            (up.is_done() && down.is_done()) || (down.is_done() && stream.peer_close().is_some())
        }
    };
    if over {
        Poll::Ready(Ok(()))
    } else {
        Poll::Pending
    }
}
