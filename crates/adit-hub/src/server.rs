//! TLS listeners: accept, bound the number of connections, finish the TLS handshake under a
//! deadline, then hand the stream to a protocol (HTTP/1.1 for the service API and WebSockets,
//! or MQTT). Every connection runs on the hub's `TaskTracker` and watches its shutdown token.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service as _;

/// Limits on the HTTPS listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpsLimits {
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// Time a client has to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time a client has to send a request's headers (stops slowloris).
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) accepted; larger gets 431. Bounds
    /// what an unauthenticated client can make the hub buffer until the header timeout.
    pub max_header_bytes: usize,
    /// On shutdown, how long in-flight requests and open streams get to finish before they
    /// are closed (streams with 1001 Going Away).
    pub shutdown_grace: Duration,
}

impl Default for HttpsLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// One admitted connection's place under the listener's limit. Cloned into the requests it
/// carries, so a connection upgraded to a WebSocket keeps its place for as long as the
/// WebSocket lives, not just until the upgrade.
#[derive(Debug, Clone)]
pub struct ConnectionSlot {
    _permit: Arc<OwnedSemaphorePermit>,
    accepted: Instant,
}

impl ConnectionSlot {
    /// When the connection was accepted: deadlines that include the TLS handshake count
    /// from here.
    pub fn accepted(&self) -> Instant {
        self.accepted
    }
}

/// How a TLS listener admits connections.
#[derive(Debug, Clone)]
pub struct Admission {
    /// One permit per connection; none left means the new connection is closed at once.
    pub slots: Arc<Semaphore>,
    /// Deadline for the TLS handshake.
    pub handshake_timeout: Duration,
}

/// Accepts TLS connections until `shutdown`, running `serve` for each on `tracker`.
pub async fn accept_tls<F, Fut>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    admission: Admission,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    serve: F,
) where
    F: Fn(Box<TlsStream<TcpStream>>, SocketAddr, ConnectionSlot) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let what = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    loop {
        let accepted = tokio::select! {
            // `accept` is cancel-safe: losing the race loses no connection.
            r = listener.accept() => r,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning, and keep serving.
                tracing::warn!(listener = %what, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A dual-stack listener (`--listen-addr ::`) reports IPv4 clients as ::ffff:a.b.c.d:
        // logs, records and the per-source throttle see them as the IPv4 addresses they are.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let Ok(permit) = admission.slots.clone().try_acquire_owned() else {
            tracing::warn!(listener = %what, %peer, "connection limit reached; closing new connection");
            continue;
        };
        let accepted = Instant::now();
        let (acceptor, serve, timeout) =
            (acceptor.clone(), serve.clone(), admission.handshake_timeout);
        tracker.spawn(async move {
            let _ = stream.set_nodelay(true);
            // The clients' timings: a peer that vanished without a FIN or RST is found after
            // about a minute of silence, even when no application data is due.
            if let Err(e) = adit_transport::tcp::set_keepalive(&stream) {
                tracing::debug!(%peer, error = %e, "cannot enable TCP keepalive");
            }
            let slot = ConnectionSlot {
                _permit: Arc::new(permit),
                accepted,
            };
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                // Boxed: a session's task is sized by what it holds inline, and async state
                // machines can hold a by-value argument more than once.
                Ok(Ok(tls)) => serve(Box::new(tls), peer, slot).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Serves HTTP/1.1 (with upgrades) on one TLS connection until it ends or `shutdown`.
pub async fn serve_http(
    tls: Box<TlsStream<TcpStream>>,
    peer: SocketAddr,
    slot: ConnectionSlot,
    router: Router,
    limits: HttpsLimits,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(slot.clone());
        router.clone().call(request)
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        r = connection.as_mut() => r,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(limits.shutdown_grace, connection.as_mut()).await {
                Ok(r) => r,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}
