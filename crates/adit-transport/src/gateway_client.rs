//! Joining the streaming gateway: TLS to the host and port in the URL, then a WebSocket upgrade
//! with `Authorization: Bearer {token}`, as Azure's device and service SDKs do. The TCP
//! connection goes through the HTTP CONNECT proxy the [`ProxyConfig`] names for the host, if
//! any ([`crate::proxy`]), has keepalive on ([`crate::tcp`]), and the WebSocket pings as told
//! ([`Keepalive`]).
//!
//! Adit's own clients may offer the WebSocket subprotocol `adit.stream.v1`
//! ([`join_resumable`]); the hub then hands each half a resume credential with the upgrade,
//! which [`GatewayReattach`] uses to join the same stream again after its leg dropped.

mod reattach;

use std::sync::Arc;
use std::time::Duration;

use adit_stream_protocol::{Role, SUBPROTOCOL, Settings};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::mux_session::{DEFAULT_GRACE, MuxSession, ResumeOptions};
use crate::{Keepalive, ProxyConfig, WsIo};

pub use reattach::{GatewayReattach, RESUME_GRACE_HEADER, RESUME_TOKEN_HEADER, ResumeGrant};

/// How long connecting (TCP, TLS and upgrade) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest frame accepted from the gateway.
pub const MAX_FRAME: usize = 1024 * 1024;

/// Why the gateway could not be joined.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The URL is not `wss://host:port/...`.
    #[error("invalid gateway URL {0:?}")]
    BadUrl(String),
    /// TCP, TLS or the proxy failed (a proxy's refusal is a [`crate::ProxyError`] inside
    /// the `io::Error`).
    #[error("cannot connect to the gateway")]
    Connect(#[source] std::io::Error),
    /// The WebSocket upgrade was refused (for example, 401 for a bad or used token).
    #[error("gateway refused the WebSocket")]
    Upgrade(#[source] tokio_websockets::Error),
    /// It all took longer than [`CONNECT_TIMEOUT`].
    #[error("timed out joining the gateway")]
    Timeout,
    /// The token cannot be sent as an HTTP header (it is not shown).
    #[error("the gateway token is not a valid HTTP header value")]
    BadToken,
    /// The gateway joined the stream without `adit.stream.v1` (the other half did not offer
    /// it, or the hub does not speak it).
    #[error("the gateway joined the stream without adit.stream.v1")]
    NotMultiplexed,
    /// The gateway chose a WebSocket subprotocol this side did not offer.
    #[error("the gateway chose the WebSocket subprotocol {0:?}, which was not offered")]
    Subprotocol(String),
}

/// A gateway WebSocket seen as a byte stream: what the SDKs hand out as a stream.
pub type GatewayStream = WsIo<TlsStream<TcpStream>>;

/// Opens the gateway WebSocket at `url` (`wss://host:port/path`) with `token`; with
/// `keepalive`, the stream pings the gateway when quiet and fails if it stops answering;
/// through `proxy` when it names one for the gateway's host.
pub async fn connect_gateway(
    url: &str,
    token: &str,
    tls: Arc<ClientConfig>,
    keepalive: Option<Keepalive>,
    proxy: &ProxyConfig,
) -> Result<GatewayStream, GatewayError> {
    let (stream, _response) = join(url, token, tls, keepalive, proxy, Offer::Raw).await?;
    Ok(stream)
}

/// A gateway stream joined as `adit.stream.v1`, with what it takes to join it again: run a
/// resumable [`MuxSession`] over it with [`ResumableJoin::start`].
#[derive(Debug)]
pub struct ResumableJoin {
    stream: GatewayStream,
    reattach: Option<GatewayReattach>,
}

impl ResumableJoin {
    /// The credential for the next attach; `None` when the hub gave none (the session can
    /// then still be resumed by the peer, not by this side).
    pub fn resume(&self) -> Option<&ResumeGrant> {
        self.reattach.as_ref().and_then(GatewayReattach::grant)
    }

    /// Runs a session of `role` with default settings over the stream, resumable within the
    /// grace the hub gave, keeping [`adit_stream_protocol::replay::DEFAULT_CAPACITY`] for
    /// replay.
    pub fn start(self, role: Role) -> MuxSession {
        self.start_with(
            role,
            Settings::default(),
            adit_stream_protocol::replay::DEFAULT_CAPACITY,
        )
    }

    /// As [`ResumableJoin::start`] with these HELLO `settings` and a replay buffer of
    /// `replay_capacity` bytes.
    pub fn start_with(self, role: Role, settings: Settings, replay_capacity: usize) -> MuxSession {
        match self.reattach {
            Some(reattach) => {
                let options = ResumeOptions {
                    replay_capacity,
                    grace: reattach.grace().unwrap_or(DEFAULT_GRACE),
                };
                MuxSession::start_resumable(self.stream, reattach, role, settings, options)
            }
            None => MuxSession::start(self.stream, role, settings),
        }
    }

    /// The stream, and the [`GatewayReattach`] for it if the hub gave a credential.
    pub fn into_parts(self) -> (GatewayStream, Option<GatewayReattach>) {
        (self.stream, self.reattach)
    }
}

/// As [`connect_gateway`], offering the WebSocket subprotocol `adit.stream.v1`
/// (`Sec-WebSocket-Protocol`) and keeping the resume credential the hub answers with
/// (`adit-resume-token`, `adit-resume-grace`) for joining the same stream again.
///
/// # Errors
/// As [`connect_gateway`]; [`GatewayError::NotMultiplexed`] when the hub joined the stream
/// without the subprotocol, [`GatewayError::Subprotocol`] when it chose another.
pub async fn join_resumable(
    url: &str,
    token: &str,
    tls: Arc<ClientConfig>,
    keepalive: Option<Keepalive>,
    proxy: &ProxyConfig,
) -> Result<ResumableJoin, GatewayError> {
    let (stream, response) = join(
        url,
        token,
        tls.clone(),
        keepalive,
        proxy,
        Offer::Multiplexed,
    )
    .await?;
    if !chose_subprotocol(&response)? {
        return Err(GatewayError::NotMultiplexed);
    }
    let reattach = ResumeGrant::from_response(&response)
        .map(|grant| GatewayReattach::new(url, grant, tls, keepalive, proxy.clone()));
    Ok(ResumableJoin { stream, reattach })
}

/// Which subprotocols the upgrade request offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    /// None: a raw stream, as Azure's SDKs join.
    Raw,
    /// `adit.stream.v1`.
    Multiplexed,
}

/// Whether the upgrade `response` chose `adit.stream.v1`.
fn chose_subprotocol(response: &http::Response<()>) -> Result<bool, GatewayError> {
    match response.headers().get(http::header::SEC_WEBSOCKET_PROTOCOL) {
        None => Ok(false),
        Some(v) if v.as_bytes() == SUBPROTOCOL.as_bytes() => Ok(true),
        Some(v) => Err(GatewayError::Subprotocol(
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        )),
    }
}

async fn join(
    url: &str,
    token: &str,
    tls: Arc<ClientConfig>,
    keepalive: Option<Keepalive>,
    proxy: &ProxyConfig,
    offer: Offer,
) -> Result<(GatewayStream, http::Response<()>), GatewayError> {
    let (ws, response) =
        tokio::time::timeout(CONNECT_TIMEOUT, connect(url, token, tls, proxy, offer))
            .await
            .map_err(|_| GatewayError::Timeout)??;
    let stream = match keepalive {
        Some(k) => WsIo::with_keepalive(ws, k),
        None => WsIo::new(ws),
    };
    Ok((stream, response))
}

async fn connect(
    url: &str,
    token: &str,
    tls: Arc<ClientConfig>,
    proxy: &ProxyConfig,
    offer: Offer,
) -> Result<
    (
        tokio_websockets::WebSocketStream<TlsStream<TcpStream>>,
        http::Response<()>,
    ),
    GatewayError,
> {
    let bad = || GatewayError::BadUrl(url.to_string());
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("wss") {
        return Err(bad());
    }
    // A URL brackets an IPv6 literal (`wss://[::1]:8443/...`); the socket and the TLS server
    // name (`ServerName::IpAddress`, verified against the certificate's IP SANs) take it bare.
    let host = uri.host().ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_string();
    let port = uri.port_u16().unwrap_or(443);
    // Directly, it tries every address the name resolves to (localhost may be ::1 first);
    // through a proxy, the proxy resolves it.
    let tcp = crate::proxy::connect(proxy, &host, port)
        .await
        .map_err(GatewayError::Connect)?;
    let name = ServerName::try_from(host).map_err(|_| bad())?;
    let stream = TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(GatewayError::Connect)?;
    upgrade(stream, uri, token, offer).await
}

/// The WebSocket upgrade on an established (TLS) `stream`.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    uri: http::Uri,
    token: &str,
    offer: Offer,
) -> Result<(tokio_websockets::WebSocketStream<S>, http::Response<()>), GatewayError> {
    // The token is never put in an error, not even when it is what is wrong.
    let bearer = http::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| GatewayError::BadToken)?;
    let limits = tokio_websockets::Limits::default().max_payload_len(Some(MAX_FRAME));
    let mut builder = tokio_websockets::ClientBuilder::from_uri(uri)
        .add_header(http::header::AUTHORIZATION, bearer)
        .map_err(GatewayError::Upgrade)?;
    if offer == Offer::Multiplexed {
        builder = builder
            .add_header(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                http::HeaderValue::from_static(SUBPROTOCOL),
            )
            .map_err(GatewayError::Upgrade)?;
    }
    builder
        .limits(limits)
        .connect_on(stream)
        .await
        .map_err(GatewayError::Upgrade)
}

#[cfg(test)]
mod tests;
