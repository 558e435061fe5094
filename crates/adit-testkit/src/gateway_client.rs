//! Service-side and device-side helpers for streams: initiating over HTTPS and joining the
//! gateway over WebSocket, as Azure's SDKs do.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_websockets::WebSocketStream;

use crate::TestHub;

/// A gateway WebSocket from the client side.
pub type GatewayWs = WebSocketStream<TlsStream<TcpStream>>;

/// What `POST /twins/{id}/streams/{name}` answered.
#[derive(Debug)]
pub struct InitiateReply {
    /// HTTP status.
    pub status: u16,
    /// `iothub-streaming-is-accepted`.
    pub accepted: Option<String>,
    /// `iothub-streaming-url`.
    pub url: Option<String>,
    /// `iothub-streaming-auth-token`.
    pub token: Option<String>,
    /// `iothub-errorcode`.
    pub error_code: Option<String>,
    /// The body.
    pub body: String,
}

impl TestHub {
    /// Initiates a stream as a service with the owner policy.
    pub async fn initiate(
        &self,
        device: &str,
        name: &str,
        connect_timeout: Option<f64>,
        response_timeout: Option<f64>,
    ) -> InitiateReply {
        self.initiate_as(
            &self.owner_token(),
            device,
            name,
            connect_timeout,
            response_timeout,
        )
        .await
    }

    /// Initiates a stream with a given `Authorization` value.
    pub async fn initiate_as(
        &self,
        authorization: &str,
        device: &str,
        name: &str,
        connect_timeout: Option<f64>,
        response_timeout: Option<f64>,
    ) -> InitiateReply {
        let mut req = crate::https_client(&self.ca_path)
            .post(format!(
                "{}/twins/{device}/streams/{name}?api-version=2020-09-30",
                self.base_url()
            ))
            .header("Authorization", authorization);
        if let Some(t) = connect_timeout {
            req = req.header("iothub-streaming-connect-timeout-in-seconds", t.to_string());
        }
        if let Some(t) = response_timeout {
            req = req.header(
                "iothub-streaming-response-timeout-in-seconds",
                t.to_string(),
            );
        }
        let resp = req.send().await.expect("request sent");
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        InitiateReply {
            status: resp.status().as_u16(),
            accepted: header("iothub-streaming-is-accepted"),
            url: header("iothub-streaming-url"),
            token: header("iothub-streaming-auth-token"),
            error_code: header("iothub-errorcode"),
            body: resp.text().await.unwrap_or_default(),
        }
    }
}

/// Opens a gateway WebSocket to `url` with `Authorization: Bearer {token}`, offering
/// `protocol` if given. `localhost` is dialled as 127.0.0.1 (test hubs bind IPv4 loopback).
pub async fn gateway_connect(
    url: &str,
    token: &str,
    ca_path: &Path,
    protocol: Option<&str>,
) -> Result<GatewayWs, String> {
    gateway_connect_with(
        url,
        token,
        ca_path,
        protocol,
        tokio_websockets::Config::default(),
    )
    .await
}

/// Like [`gateway_connect`], with this WebSocket configuration (a small `frame_size` sends
/// every message as that many continuation frames).
pub async fn gateway_connect_with(
    url: &str,
    token: &str,
    ca_path: &Path,
    protocol: Option<&str>,
    config: tokio_websockets::Config,
) -> Result<GatewayWs, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    let port = uri.port_u16().ok_or("URL has no explicit port")?;
    let host = uri.host().ok_or("URL has no host")?;
    let dial = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    let tcp = TcpStream::connect((dial, port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let tls = TlsConnector::from(Arc::new(crate::client_tls_config(ca_path)))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut builder = tokio_websockets::ClientBuilder::from_uri(uri)
        .config(config)
        .add_header(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
    if let Some(p) = protocol {
        builder = builder
            .add_header(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                http::HeaderValue::from_str(p).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
    }
    let (ws, _) = tokio::time::timeout(Duration::from_secs(20), builder.connect_on(tls))
        .await
        .map_err(|_| "upgrade timed out".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// The HTTP status a gateway upgrade gets with this token (without completing it), and the
/// `iothub-errorcode` header.
pub async fn gateway_status(
    url: &str,
    token: Option<&str>,
    ca_path: &Path,
) -> (u16, Option<String>) {
    let https = url.replacen("wss://", "https://", 1);
    let mut req = crate::https_client(ca_path)
        .get(https)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req.send().await.expect("request sent");
    let code = resp
        .headers()
        .get("iothub-errorcode")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (resp.status().as_u16(), code)
}
