//! The one multiplexed session `adit service-proxy` keeps to its device: opened when the first
//! connection comes, shared by every connection while any is open, closed after
//! [`IDLE_CLOSE`] without one, and opened again when it was lost. A device that does not speak
//! the Adit stream protocol (an Azure SDK device) gets a raw stream per connection instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use adit_service::{Error, ServiceClient, ServiceStream, Session, StreamOptions};
use adit_transport::mux_session::{MuxSession, MuxStream};
use bytes::Bytes;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a session with no connection is kept before it is closed.
pub const IDLE_CLOSE: Duration = Duration::from_secs(60);

/// One connection's way to the device.
pub enum Connection {
    /// A connection inside the shared session; `_open` counts it while it lives.
    Multiplexed(MuxStream, OpenGuard),
    /// A stream of its own (the device speaks raw bytes only; boxed: a TLS stream is large).
    Raw(Box<ServiceStream>),
}

/// Counts a connection of the session while it lives; the last one out starts the idle timer.
pub struct OpenGuard {
    pool: SessionPool,
    generation: u64,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if self.pool.inner.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            let (pool, generation) = (self.pool.clone(), self.generation);
            let shutdown = self.pool.inner.shutdown.clone();
            self.pool.inner.timers.spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(IDLE_CLOSE) => pool.close_if_idle(generation).await,
                    () = shutdown.cancelled() => {}
                }
            });
        }
    }
}

enum State {
    /// Nothing open; the next connection opens a session.
    Closed,
    /// The session, and which one it is (so an old idle timer leaves a newer one alone).
    Open(Arc<MuxSession>, u64),
    /// The device answered without the protocol: raw streams from now on.
    RawOnly,
}

struct Inner {
    service: ServiceClient,
    device: String,
    name: String,
    options: StreamOptions,
    state: Mutex<State>,
    open: AtomicUsize,
    /// The idle timers, ended by `shutdown`.
    timers: TaskTracker,
    shutdown: CancellationToken,
}

/// Shared by every connection of one `adit service-proxy`; cheap to clone.
#[derive(Clone)]
pub struct SessionPool {
    inner: Arc<Inner>,
}

impl SessionPool {
    /// A pool for streams named `name` to `device`; its timers end with `shutdown`.
    pub fn new(
        service: ServiceClient,
        device: String,
        name: String,
        options: StreamOptions,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                service,
                device,
                name,
                options,
                state: Mutex::new(State::Closed),
                open: AtomicUsize::new(0),
                timers: TaskTracker::new(),
                shutdown,
            }),
        }
    }

    /// A way to the device for one new connection: a connection in the session (opening the
    /// session first when none runs), or a raw stream when the device speaks no protocol.
    ///
    /// # Errors
    /// What opening the stream failed with (device offline, rejected, ...).
    pub async fn connect(&self) -> Result<Connection, Error> {
        let inner = &self.inner;
        // Held while a session opens, so connections arriving meanwhile share it.
        let mut state = inner.state.lock().await;
        for _ in 0..2 {
            match &*state {
                State::Open(session, generation) => {
                    if let Some(stream) = session.open(Bytes::new()).await {
                        inner.open.fetch_add(1, Ordering::AcqRel);
                        let guard = OpenGuard {
                            pool: self.clone(),
                            generation: *generation,
                        };
                        return Ok(Connection::Multiplexed(stream, guard));
                    }
                    // It ended (lost beyond its grace, or closed by the device): open anew.
                    tracing::info!(device = %inner.device, "the session to the device ended; opening a new one");
                    *state = State::Closed;
                }
                State::RawOnly => {
                    // Raw streams open side by side: no lock across the network.
                    drop(state);
                    let stream = inner
                        .service
                        .open_stream(&inner.device, &inner.name, &inner.options)
                        .await?;
                    return Ok(Connection::Raw(Box::new(stream)));
                }
                State::Closed => {
                    match inner
                        .service
                        .open_session(&inner.device, &inner.name, &inner.options)
                        .await?
                    {
                        Session::Multiplexed(session) => {
                            static GENERATION: std::sync::atomic::AtomicU64 =
                                std::sync::atomic::AtomicU64::new(0);
                            let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(device = %inner.device, "session opened (adit.stream.v1: connections multiplexed, resumable)");
                            *state = State::Open(Arc::new(session), generation);
                        }
                        Session::Raw(stream) => {
                            tracing::info!(device = %inner.device, "the device speaks raw streams only: one stream per connection");
                            *state = State::RawOnly;
                            return Ok(Connection::Raw(stream));
                        }
                    }
                }
            }
        }
        Err(Error::SessionEnded(
            "a new session ended as soon as it opened".into(),
        ))
    }

    /// Closes the session (when the proxy stops) and waits for the idle timers, which end
    /// with the shutdown token.
    pub async fn close(&self) {
        if let State::Open(session, _) = &*self.inner.state.lock().await {
            session.close();
        }
        self.inner.timers.close();
        self.inner.timers.wait().await;
    }

    async fn close_if_idle(&self, generation: u64) {
        let mut state = self.inner.state.lock().await;
        if let State::Open(session, g) = &*state
            && *g == generation
            && self.inner.open.load(Ordering::Acquire) == 0
        {
            tracing::info!(device = %self.inner.device, "no connection for {} s; closing the session", IDLE_CLOSE.as_secs());
            session.close();
            *state = State::Closed;
        }
    }
}
