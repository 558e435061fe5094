//! Opening device streams (`POST /twins/{id}/streams/{name}`, then the gateway).

use std::sync::Arc;
use std::time::Duration;

use adit_proto::resource::COMPONENT;
use adit_proto::stream_name::check_stream_name;
use adit_proto::{DeviceId, ErrorCode, ModuleId};
use adit_stream_protocol::{Role, SUBPROTOCOL};
use adit_transport::gateway_client::join_resumable;
use adit_transport::mux_session::MuxSession;
use adit_transport::{GatewayStream, Keepalive, connect_gateway};
use percent_encoding::utf8_percent_encode;
use reqwest::Method;

use crate::http::Http;
use crate::{Error, ProxyConfig, ServiceCredentials, TlsOptions};

/// An open stream to a device, as `AsyncRead + AsyncWrite`. `shutdown()` ends this direction
/// only (the other keeps flowing); `close()` ends both. A stream the device side aborted reads
/// as an error, not as EOF.
pub type ServiceStream = GatewayStream;

/// Per-stream settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StreamOptions {
    /// Target a module of the device.
    pub module: Option<String>,
    /// How long the hub waits for an offline device to connect. Default: 0 (fail at once).
    pub connect_timeout: Duration,
    /// How long the hub waits for the device's answer. Default: 30 s.
    pub response_timeout: Duration,
    /// WebSocket pings on the stream's gateway leg; `None` turns them off. Default: a ping
    /// after 20 s without receiving anything, and failure (reads and writes end with
    /// `TimedOut`) 20 s after an unanswered ping.
    pub keepalive: Option<Keepalive>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            module: None,
            connect_timeout: Duration::ZERO,
            response_timeout: Duration::from_secs(30),
            keepalive: Some(Keepalive::default()),
        }
    }
}

/// Opens device streams on a hub.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    http: Http,
    base: String,
    credentials: ServiceCredentials,
    tls: Arc<rustls::ClientConfig>,
}

impl ServiceClient {
    /// A client for the hub in a service connection string (a policy with ServiceConnect).
    pub fn from_connection_string(
        connection_string: &str,
        tls: &TlsOptions,
    ) -> Result<Self, Error> {
        Self::new(
            ServiceCredentials::from_connection_string(connection_string)?,
            tls,
        )
    }

    /// A client with these credentials, connecting directly.
    pub fn new(credentials: ServiceCredentials, tls: &TlsOptions) -> Result<Self, Error> {
        Self::with_proxy(credentials, tls, ProxyConfig::direct())
    }

    /// A client with these credentials whose connections (the REST call and each stream's
    /// gateway leg) go through `proxy` (HTTP CONNECT; TLS stays end to end to the hub).
    pub fn with_proxy(
        credentials: ServiceCredentials,
        tls: &TlsOptions,
        proxy: ProxyConfig,
    ) -> Result<Self, Error> {
        let config = tls.client_config()?;
        // The HTTP timeout covers the hub's own waiting (connect + response timeouts, at most
        // 300 s each) with room to spare.
        let http = Http::new(config.clone(), Duration::from_secs(700), proxy)?;
        Ok(Self {
            http,
            base: format!("https://{}", credentials.host_name()),
            credentials,
            tls: Arc::new(config),
        })
    }

    /// Asks `device_id` for a stream named `name` and, if it accepts, joins the gateway.
    /// The id and module are percent-encoded in the path (`/twins/{id}/streams/{name}`); the
    /// name needs no encoding. Errors: [`Error::Config`] (before any request) for an invalid
    /// id or a name outside `adit_proto::stream_name`'s rule, saying which character and why.
    pub async fn open_stream(
        &self,
        device_id: &str,
        name: &str,
        options: &StreamOptions,
    ) -> Result<ServiceStream, Error> {
        let accepted = self.initiate(device_id, name, options, false).await?;
        Ok(connect_gateway(
            &accepted.url,
            &accepted.token,
            self.tls.clone(),
            options.keepalive,
            self.http.proxy(),
        )
        .await?)
    }

    /// Asks `device_id` for a stream named `name` that carries the Adit stream protocol
    /// (`adit.stream.v1`, `docs/stream-protocol.md`). When the device speaks it too (an Adit
    /// device, [`Session::Multiplexed`]), the stream is a session of many connections, each
    /// with its own flow control, that survives a dropped network on either side for the
    /// hub's resume grace. A device that does not (Azure's SDKs) accepts a raw stream,
    /// returned as [`Session::Raw`]. Errors as for [`ServiceClient::open_stream`].
    pub async fn open_session(
        &self,
        device_id: &str,
        name: &str,
        options: &StreamOptions,
    ) -> Result<Session, Error> {
        let accepted = self.initiate(device_id, name, options, true).await?;
        if !accepted.multiplexed {
            return Ok(Session::Raw(Box::new(
                connect_gateway(
                    &accepted.url,
                    &accepted.token,
                    self.tls.clone(),
                    options.keepalive,
                    self.http.proxy(),
                )
                .await?,
            )));
        }
        let joined = join_resumable(
            &accepted.url,
            &accepted.token,
            self.tls.clone(),
            options.keepalive,
            self.http.proxy(),
        )
        .await?;
        Ok(Session::Multiplexed(joined.start(Role::Service)))
    }

    /// The REST half of opening a stream: the device's answer, and where to join.
    async fn initiate(
        &self,
        device_id: &str,
        name: &str,
        options: &StreamOptions,
        ask_protocol: bool,
    ) -> Result<Accepted, Error> {
        let device = DeviceId::new(device_id).map_err(|e| Error::bad_id("device", device_id, e))?;
        check_stream_name(name).map_err(|e| Error::Config(e.to_string()))?;
        let mut path = format!("/twins/{}", utf8_percent_encode(device.as_str(), COMPONENT));
        if let Some(m) = &options.module {
            let m = ModuleId::new(m.as_str()).map_err(|e| Error::bad_id("module", m, e))?;
            path.push_str(&format!(
                "/modules/{}",
                utf8_percent_encode(m.as_str(), COMPONENT)
            ));
        }
        path.push_str(&format!(
            "/streams/{}",
            utf8_percent_encode(name, COMPONENT)
        ));
        let request = self
            .http
            .request(Method::POST, format!("{}{path}", self.base))
            .query(&[("api-version", crate::API_VERSION)])
            .header(
                reqwest::header::AUTHORIZATION,
                self.credentials.authorization(),
            )
            .header(
                "iothub-streaming-connect-timeout-in-seconds",
                options.connect_timeout.as_secs_f64().to_string(),
            )
            .header(
                "iothub-streaming-response-timeout-in-seconds",
                options.response_timeout.as_secs_f64().to_string(),
            );
        let request = if ask_protocol {
            request.header(STREAM_PROTOCOL, SUBPROTOCOL)
        } else {
            request
        };
        let response = crate::http::check(self.http.send(request).await?)
            .await
            .map_err(|e| match e.code() {
                Some(ErrorCode::DeviceNotFound) => Error::DeviceNotFound(device_id.to_string()),
                Some(ErrorCode::DeviceNotOnline) => Error::DeviceOffline(device_id.to_string()),
                Some(ErrorCode::GatewayTimeout) => Error::TimedOut(device_id.to_string()),
                Some(ErrorCode::ThrottlingException) => Error::Throttled,
                Some(ErrorCode::IotHubUnauthorizedAccess | ErrorCode::IotHubUnauthorized) => {
                    Error::Unauthorized(e.to_string())
                }
                _ => e,
            })?;
        let header = |n: &str| {
            response
                .headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        match header("iothub-streaming-is-accepted").as_deref() {
            Some(v) if v.eq_ignore_ascii_case("true") => {}
            Some(v) if v.eq_ignore_ascii_case("false") => {
                return Err(Error::Rejected(device_id.to_string()));
            }
            other => {
                return Err(Error::Decode(format!(
                    "iothub-streaming-is-accepted is {other:?}"
                )));
            }
        }
        let (Some(url), Some(token)) = (
            header("iothub-streaming-url"),
            header("iothub-streaming-auth-token"),
        ) else {
            return Err(Error::Decode(
                "accepted without a streaming URL and token".into(),
            ));
        };
        // Only what was asked for counts: a hub that names the protocol unasked is ignored.
        let multiplexed =
            ask_protocol && header(STREAM_PROTOCOL).is_some_and(|p| p.trim() == SUBPROTOCOL);
        Ok(Accepted {
            url,
            token,
            multiplexed,
        })
    }
}

/// A device's acceptance.
struct Accepted {
    url: String,
    token: String,
    /// Both sides agreed on `adit.stream.v1`.
    multiplexed: bool,
}

/// Adit's own header, sent to ask for the Adit stream protocol and answered when the device
/// agreed (`docs/stream-protocol.md`, Negotiation).
const STREAM_PROTOCOL: &str = "adit-stream-protocol";

/// What [`ServiceClient::open_session`] opened.
#[derive(Debug)]
pub enum Session {
    /// A multiplexed, resumable session: open connections with [`MuxSession::open`].
    Multiplexed(MuxSession),
    /// The device speaks raw bytes only: one stream (boxed: a TLS stream is large).
    Raw(Box<ServiceStream>),
}
