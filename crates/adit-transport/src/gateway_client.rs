//! Joining the streaming gateway: TLS to the host and port in the URL, then a WebSocket upgrade
//! with `Authorization: Bearer {token}`, as Azure's device and service SDKs do. The TCP
//! connection goes through the HTTP CONNECT proxy the [`ProxyConfig`] names for the host, if
//! any ([`crate::proxy`]), has keepalive on ([`crate::tcp`]), and the WebSocket pings as told
//! ([`Keepalive`]).

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::{Keepalive, ProxyConfig, WsIo};

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
    let ws = tokio::time::timeout(CONNECT_TIMEOUT, connect(url, token, tls, proxy))
        .await
        .map_err(|_| GatewayError::Timeout)??;
    Ok(match keepalive {
        Some(k) => WsIo::with_keepalive(ws, k),
        None => WsIo::new(ws),
    })
}

async fn connect(
    url: &str,
    token: &str,
    tls: Arc<ClientConfig>,
    proxy: &ProxyConfig,
) -> Result<tokio_websockets::WebSocketStream<TlsStream<TcpStream>>, GatewayError> {
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
    let bearer = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| bad())?;
    let limits = tokio_websockets::Limits::default().max_payload_len(Some(MAX_FRAME));
    let (ws, _response) = tokio_websockets::ClientBuilder::from_uri(uri)
        .add_header(http::header::AUTHORIZATION, bearer)
        .map_err(GatewayError::Upgrade)?
        .limits(limits)
        .connect_on(stream)
        .await
        .map_err(GatewayError::Upgrade)?;
    Ok(ws)
}
