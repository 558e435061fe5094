//! Regaining a lost link: the [`Reattach`] a caller gives [`super::MuxSession::start_resumable`],
//! and the retries within the resume grace.

use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, sleep_until, timeout_at};

use super::SessionError;

/// How long a side whose link failed keeps trying to regain one, unless told otherwise: the
/// hub parks the other half this long by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

/// Wait before the second attempt; it doubles after each failed one, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Longest wait between attempts, so a link that comes back is noticed within 2 s.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Opens a new link for the same stream and role after the last one failed (for a gateway
/// stream: joining the gateway again with the resume credential, see
/// [`crate::gateway_client::GatewayReattach`]).
pub trait Reattach: Send + 'static {
    /// The link, of the same type as the session's first.
    type Link: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// One attempt. After [`ReattachError::Retry`] the session tries again, 250 ms later and
    /// doubling to 2 s, until the resume grace has passed since the failure; after
    /// [`ReattachError::Gone`] it ends. The session drops an attempt still running at the
    /// grace's end.
    fn reattach(&mut self) -> impl Future<Output = Result<Self::Link, ReattachError>> + Send;
}

/// Why an attempt to reattach did not give a link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReattachError {
    /// Trouble on the way (network, TLS, a timeout): try again.
    #[error("{0}")]
    Retry(String),
    /// The hub says the stream is over (its resume credential refused, the stream unknown):
    /// stop now.
    #[error("{0}")]
    Gone(String),
}

/// How a session survives a dropped link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeOptions {
    /// Bytes sent and not yet acknowledged that this side keeps for replay; past it the
    /// session stops sending until an ACK comes (it never drops). Default
    /// [`adit_stream_protocol::replay::DEFAULT_CAPACITY`] (1 MiB).
    pub replay_capacity: usize,
    /// How long after a link failure this side may take to be resumed (reattached and the
    /// peer's RESUME received) before the session ends. Default [`DEFAULT_GRACE`] (60 s).
    pub grace: Duration,
}

impl Default for ResumeOptions {
    fn default() -> Self {
        Self {
            replay_capacity: adit_stream_protocol::replay::DEFAULT_CAPACITY,
            grace: DEFAULT_GRACE,
        }
    }
}

/// For sessions without a [`Reattach`]: never asked, as a failed link ends those.
#[derive(Debug)]
pub(super) struct NoReattach<T>(PhantomData<fn() -> T>);

impl<T> Reattach for NoReattach<T>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Link = T;

    async fn reattach(&mut self) -> Result<T, ReattachError> {
        Err(ReattachError::Gone("this session does not reattach".into()))
    }
}

/// A link failure not yet made good: since when, until when it may be, and why it happened.
#[derive(Debug)]
pub(super) struct Outage {
    pub(super) since: Instant,
    pub(super) deadline: Instant,
    grace: Duration,
    why: String,
}

impl Outage {
    pub(super) fn new(grace: Duration, why: String) -> Self {
        let since = Instant::now();
        Self {
            since,
            deadline: since + grace,
            grace,
            why,
        }
    }

    /// The session's end once the grace has passed, `last` saying what stood in the way.
    pub(super) fn expired(&self, last: &str) -> SessionError {
        SessionError::GraceExpired {
            grace: self.grace,
            why: format!("the link failed ({}); then: {last}", self.why),
        }
    }
}

/// Tries `reattach` at once, then again with backoff, until it gives a link or the outage's
/// deadline passes.
///
/// # Errors
/// [`SessionError::Gone`] when the hub says the stream is over; [`SessionError::GraceExpired`]
/// at the deadline, naming the last attempt's trouble.
pub(super) async fn regain<R: Reattach>(
    reattach: &mut R,
    outage: &Outage,
) -> Result<R::Link, SessionError> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let last = match timeout_at(outage.deadline, reattach.reattach()).await {
            Err(_) => return Err(outage.expired("an attempt to reattach was still running")),
            Ok(Ok(link)) => return Ok(link),
            Ok(Err(ReattachError::Gone(why))) => return Err(SessionError::Gone(why)),
            Ok(Err(ReattachError::Retry(why))) => why,
        };
        let next = Instant::now() + backoff;
        if next >= outage.deadline {
            sleep_until(outage.deadline).await;
            return Err(outage.expired(&format!("could not reattach: {last}")));
        }
        sleep_until(next).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
